"""Finding a detector's layers by name and reading their outputs, nested models included.

Layers are named as in the model, and layers of a nested model (a ``keras.Model`` used as a layer, as a
transfer-learning base is) as ``"inner_model/layer"`` (``"a/b/layer"`` deeper down); a bare name that is
unique anywhere in the model resolves too.

:func:`forward` runs the model's *own* graph (the same layer objects, weights and call order) while
keeping the output of one layer, recursing into nested functional or Sequential models where needed, so
the tensor it returns is exactly the one the rest of the model consumed: gradients taken with respect to
it are the model's. No symbolic graph is rebuilt, so the model's layers gain no extra nodes (their
``.output`` keeps working). :func:`compiled` caches it as a ``tf.function`` per (model, layer, input size).

It drives the graph through Keras 3's ``Functional._run_through_graph`` (what ``Functional.call`` itself
uses) and ``_standardize_inputs``: private API, pinned by ``tests/test_gradcam.py``, which checks that
the captured run reproduces the model's output exactly.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras

from models.detectors.base import P_FAKE, n_outputs, output_index, select_output

CONV_TYPES = tuple(
    getattr(keras.layers, n)
    for n in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")
    if hasattr(keras.layers, n)
)
NORM_TYPES = (keras.layers.BatchNormalization,)
POOL_TYPES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
FEATURE_TYPES = CONV_TYPES + NORM_TYPES + POOL_TYPES


@dataclass(frozen=True)
class LayerRef:
    """A layer inside a model: ``path`` holds the nested models leading to it, then the layer itself."""

    name: str  # qualified: "layer" or "inner_model/layer"
    path: tuple  # (nested_model, ..., layer)

    @property
    def layer(self):
        return self.path[-1]


def _is_container(layer) -> bool:
    """A nested model whose graph we can walk (functional or Sequential); subclassed models stay opaque."""
    return isinstance(layer, keras.Model) and (_graph_of(layer) is not None or isinstance(layer, keras.Sequential))


def _graph_of(model):
    """The Functional graph that executes ``model``, or None (Sequential without one, subclassed)."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if hasattr(model, "_run_through_graph") and hasattr(model, "_nodes_by_depth"):
        return model
    return None


def walk(model, prefix: str = "", _parents: tuple = ()) -> Iterator[LayerRef]:
    """Every layer of ``model`` in model order, nested models' layers after the nested model itself."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        ref = LayerRef(prefix + layer.name, _parents + (layer,))
        yield ref
        if _is_container(layer):
            yield from walk(layer, prefix + layer.name + "/", _parents + (layer,))


def _is_choice(layer, types: tuple) -> bool:
    """Of one of ``types`` and, as far as Keras can say, producing a 4-D (batch, h, w, c) feature map."""
    return isinstance(layer, types) and output_rank(layer) in (4, None)


def list_layers(model, types: tuple) -> list[str]:
    """Qualified names of the layers of the given types with 4-D outputs, in model order."""
    return [ref.name for ref in walk(model) if _is_choice(ref.layer, types)]


def output_rank(layer) -> int | None:
    """The rank of the layer's output (batch included), or None where Keras cannot say (a shared layer)."""
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, TypeError):
        return None


def find_layer(model, name: str, types: tuple, kind: str, any_spatial: bool = False) -> LayerRef:
    """Resolve ``name`` (qualified, or a bare name unique in the model) to a layer of one of ``types``.

    With ``any_spatial`` a layer of another type is accepted too when its output is a 4-D feature map.
    Raises ValueError naming the choosable layers when the name is unknown, ambiguous or of another type.
    """
    refs = list(walk(model))
    choices = [r.name for r in refs if _is_choice(r.layer, types)]
    listing = ", ".join(choices) or "none"
    if name.startswith(model.name + "/"):
        name = name[len(model.name) + 1 :]
    matches = [r for r in refs if r.name == name] or [r for r in refs if r.layer.name == name]
    if not matches:
        raise ValueError(f"no layer {name!r} in model {model.name!r}; {kind} layers: {listing}")
    if len(matches) > 1:
        names = ", ".join(r.name for r in matches)
        raise ValueError(f"layer name {name!r} is ambiguous ({names}); {kind} layers: {listing}")
    ref = matches[0]
    if not _is_choice(ref.layer, types) and not (any_spatial and output_rank(ref.layer) == 4):
        also = " or a 4-D feature map" if any_spatial else ""
        raise ValueError(
            f"layer {ref.name!r} is a {type(ref.layer).__name__}, not a spatial {kind} layer{also}; {kind} layers: {listing}"
        )
    return ref


def _call_layer(layer, args, kwargs):
    """Call a layer as Functional.call does at inference: training=False where the layer takes it."""
    if getattr(layer, "_call_has_training_arg", False):
        kwargs = {**kwargs, "training": False}
    return layer(*args, **kwargs)


def _run(model, x, path: tuple, captured: list):
    """Run ``model`` on ``x`` as its own call would, appending the output of ``path``'s layer to ``captured``."""
    target = path[0]

    def run_op(op, args, kwargs):
        if op is not target or captured:  # a shared layer: keep its first call only
            return _call_layer(op, args, kwargs)
        if len(path) == 1:
            out = _call_layer(op, args, kwargs)
            captured.append(out)
            return out
        inner = args[0] if args else next(iter(kwargs.values()))
        return _run(op, inner, path[1:], captured)

    graph = _graph_of(model)
    if graph is None:  # Sequential without a functional graph: its call applies the layers in turn
        out = x
        for layer in model.layers:
            out = run_op(layer, (out,), {})
        return out
    inputs = graph._standardize_inputs(x)
    outputs = graph._run_through_graph(inputs, operation_fn=lambda op: lambda *a, **k: run_op(op, a, k))
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        outputs = outputs[0]
    return outputs


def forward(model, ref: LayerRef, x):
    """One pass of ``model`` on ``x``: ``(layer_output, p_fake_output)`` (eager or inside tf.function).

    For a model with several outputs (``p_fake`` and ``mask``) the second element is the ``p_fake`` output."""
    if _graph_of(model) is None and not isinstance(model, keras.Sequential):
        raise ValueError(f"model {model.name!r} is not functional or Sequential; cannot read its layers")
    captured: list = []
    out = _run(model, x, ref.path, captured)
    if not captured:
        raise ValueError(f"layer {ref.name!r} is not on the path from the model's input to its output")
    return captured[0], select_output(out, model, P_FAKE)


def feeding_layers(model, output: str = P_FAKE) -> set[str] | None:
    """Names of the top-level layers the output ``output`` depends on; None for a one-output model (all do)."""
    if n_outputs(model) < 2:
        return None
    index = output_index(model, output)
    stack, seen, names = [model.outputs[0 if index is None else index]], set(), set()
    while stack:
        history = getattr(stack.pop(), "_keras_history", None)
        if history is None or id(history[0]) in seen:
            continue
        op = history[0]
        seen.add(id(op))
        names.add(op.name)
        node = op._inbound_nodes[history[1]] if getattr(op, "_inbound_nodes", None) else None
        stack.extend(getattr(node, "input_tensors", ()) or ())
    return names


def p_fake_layers(model, types: tuple) -> list[str]:
    """:func:`list_layers` restricted to layers that feed the ``p_fake`` output (all, for one output)."""
    names = list_layers(model, types)
    feeding = feeding_layers(model)
    return names if feeding is None else [n for n in names if n.split("/", 1)[0] in feeding]


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def compiled(model, ref: LayerRef, input_size: int, kind: str, build: Callable) -> Callable:
    """A cached ``tf.function`` per (model, layer, input size, kind).

    ``build(get_model, ref)`` makes the Python function; ``get_model()`` returns the model (held weakly, so
    the cache does not keep unloaded models alive).
    """
    import tensorflow as tf

    key = (ref.name, int(input_size), kind)
    with _LOCK:
        per_model = _CACHE.setdefault(model, {})
        fn = per_model.get(key)
        if fn is None:
            spec = tf.TensorSpec([None, input_size, input_size, 3], tf.float32)
            fn = tf.function(build(weakref.ref(model), ref), input_signature=[spec])
            per_model[key] = fn
    return fn


def activations_fn(get_model, ref: LayerRef):
    """``x -> (layer_output, model_output)``."""
    return lambda x: forward(get_model(), ref, x)


def spatial_map(tensor, name: str):
    """The first image's (h, w, c) float32 feature map; ValueError when the layer's output is not 4-D."""
    import numpy as np

    arr = np.asarray(tensor)
    if arr.ndim != 4:
        raise ValueError(f"layer {name!r} outputs shape {tuple(arr.shape)}, not a (batch, h, w, c) feature map")
    return arr[0].astype(np.float32)
