"""Models: every installed detector compared on the test split, from cached evaluation results."""

import math

import pandas as pd
import streamlit as st

from models.analysis.calibration import (
    current_operating_point,
    restore_operating_point,
    save_operating_point,
    threshold_for_recall,
)
from models.analysis.plots import confusion_figure, history_figure, reliability_figure, roc_figure, threshold_figure
from models.analysis.zoo import (
    by_model,
    confusion,
    crosssource_references,
    crosssource_rows,
    eval_stamp,
    history,
    kind_rows,
    load_crosssource,
    load_scores,
    measure_latency,
    model_metas,
    operating_points,
    reliability_curves,
    roc_data,
    scores_stamps,
    source_rows,
    split_rates,
    split_sweeps,
    stale_models,
    summary_rows,
    training_summary,
)
from models.detectors.labels import threshold_of
from pages._shared import ensure_navigation, get_detector, installed_models, model_select

ensure_navigation()

st.title("Models")
st.caption("Every installed detector on the same held-out test split. Metrics are computed from cached per-image "
           "scores (`make eval`), at each model's own operating point.")

names = installed_models()

PCT = st.column_config.NumberColumn(format="%.3f")


@st.cache_data(show_spinner=False)
def _scores(name: str, split: str, stamp: float):
    return load_scores(name, split)


def scores(name: str, split: str = "test"):
    return _scores(name, split, eval_stamp(name, split))


@st.cache_data(show_spinner=False, max_entries=64)
def figure_png(kind: str, key: tuple, _build) -> bytes:
    """A figure as PNG, drawn once per ``key`` (everything the figure depends on); ``_build`` is not hashed."""
    from explain.render import png

    return png(_build())


def show(kind: str, key: tuple, build, width="stretch") -> None:
    st.image(figure_png(kind, key, build), width=width)


@st.cache_resource(show_spinner=False)
def latency(name: str) -> dict:
    return measure_latency(get_detector(name))


def operating_point_controls(pick: str, current: float, value: float, target: float) -> None:
    """Save the slider's threshold in two steps (confirm old -> new, or cancel), then offer to undo it."""
    state = st.session_state

    def confirm():
        previous = current_operating_point(pick)
        try:
            save_operating_point(pick, value, target_recall=target, split="val", by="page")
        except (OSError, ValueError) as exc:
            state["models_saved"] = {"pick": pick, "error": f"Could not save the operating point: {exc}"}
        else:
            get_detector.clear()
            state["models_saved"] = {"pick": pick, "old": current, "new": value, "previous": previous}
        state.pop("models_confirm", None)

    def undo(saved):
        try:
            restore_operating_point(saved["pick"], saved["previous"])
        except (OSError, ValueError) as exc:
            state["models_saved"] = {"pick": saved["pick"], "error": f"Could not undo: {exc}"}
        else:
            get_detector.clear()
            state["models_saved"] = {"pick": saved["pick"], "undone": saved["old"]}

    st.button("Save as operating point", type="primary", key="models_save_threshold",
              on_click=lambda: state.update({"models_confirm": pick, "models_saved": None}),
              help="Asks to confirm first. Stored in the model's metadata JSON and used for every verdict in the app "
                   "and CLIs.")
    if state.get("models_confirm") == pick:
        st.warning(f"Every verdict of {pick} in the app and CLIs will use the new threshold.")
        yes, no = st.columns(2)
        yes.button(f"Confirm: threshold {current:.3f} → {value:.3f}", type="primary", key="models_confirm_threshold",
                   on_click=confirm)
        no.button("Cancel", key="models_cancel_threshold", on_click=lambda: state.pop("models_confirm", None))
    saved = state.get("models_saved")
    if not saved or saved["pick"] != pick:
        return
    if "error" in saved:
        st.error(saved["error"])
    elif "undone" in saved:
        st.info(f"Undone: {pick} is back at threshold {saved['undone']:.3f}.")
    else:
        st.success(f"Saved ({saved['old']:.3f} → {saved['new']:.3f}): {pick} now calls an image fake at "
                   f"P(fake) ≥ {saved['new']:.3f}.")
        st.button("Undo", key="models_undo_threshold", on_click=undo, args=(saved,),
                  help=f"Puts back the operating point {pick} had before ({saved['old']:.3f}).")


metas = model_metas(names)
thresholds = {n: threshold_of(m) for n, m in metas.items()}
test_scores = {n: s for n in names if (s := scores(n)) is not None}
stamps = scores_stamps(test_scores)
missing = [n for n in names if n not in test_scores]
if missing:
    st.warning(f"No cached test scores for {', '.join(missing)}: run `make eval` (or `python -m models.evaluate "
               f"--all --data $DEEPFAKE_DATA --split test --save`). Their metrics are left blank.")
stale = stale_models(test_scores)
if stale:
    st.warning(f"The model file of {', '.join(stale)} is newer than its cached scores: run `make eval`.")

with st.sidebar:
    measure = st.toggle("Measure latency on this machine", value=True, key="models_latency",
                        help="Times one single-image prediction per model (median of 10) and a batch of 64. "
                             "Measured once per server start.")
lat = {}
if measure:
    with st.spinner("Timing each model on this machine…"):
        lat = {n: latency(n) for n in names}

st.subheader("Summary")
summary = pd.DataFrame(summary_rows(latency=lat))
st.dataframe(summary, hide_index=True, column_config={
    "params": st.column_config.NumberColumn(format="%d"),
    "ms / image": st.column_config.NumberColumn(format="%.1f"),
    "ms / image (batch 64)": st.column_config.NumberColumn(format="%.2f"),
    "threshold": st.column_config.NumberColumn(format="%.2f"),
    **{c: PCT for c in ("accuracy", "precision", "recall", "F1", "ROC AUC")},
})
st.caption("Fake is the positive class: precision = share of 'fake' verdicts that are fake, recall = share of fakes "
           "caught. Latency includes preprocessing; 'batch 64' is per image when scoring many at once.")

tabs = st.tabs(["Per source", "Per kind", "ROC", "Confusion", "Training curves", "Threshold & calibration",
                "Cross-source"])

with tabs[0]:
    if test_scores:
        rows = source_rows(test_scores, thresholds)
        metric = st.radio("Show", ["AUC within source", "accuracy", "fakes caught", "reals passed"],
                          horizontal=True, key="models_source_metric")
        wide = by_model(rows, ["source", "kind", "n real", "n fake"], metric)
        st.dataframe(wide, hide_index=True, column_config={n: PCT for n in test_scores})
        st.caption(
            "**AUC within source** ranks each source's fakes against the *same source's* reals. A model that learned "
            "a shortcut (recognising which collection an image comes from, its resolution, compression or framing) "
            "can score well overall yet near 0.5 here. Sources without reals (basemax) have no within-source AUC; "
            "the Cross-source tab shows what happens on a source a model never saw.")

with tabs[1]:
    if test_scores:
        rows = kind_rows(test_scores, thresholds)
        wide = by_model(rows, ["kind", "n"], "accuracy")
        st.dataframe(wide, hide_index=True, column_config={n: PCT for n in test_scores})
        st.caption("Per kind of fake: the share caught at each model's threshold (for 'real': the share of reals "
                   "passed). Kinds come from the data README: GAN faces, LFW face swaps, photoshopped ciplab edits.")
        auc = by_model([r for r in rows if r["kind"] != "real"], ["kind"], "ROC AUC vs reals")
        st.dataframe(auc, hide_index=True, column_config={n: PCT for n in test_scores})
        st.caption("ROC AUC of each kind of fake against all test reals (threshold-free).")

with tabs[2]:
    if test_scores:
        curves = roc_data(test_scores)
        ops = operating_points(test_scores, thresholds)
        show("roc", (stamps, tuple(sorted(thresholds.items()))), lambda: roc_figure(curves, ops), width="content")

with tabs[3]:
    if test_scores:
        show("confusion", (stamps, tuple(sorted(thresholds.items()))), width="content",
             build=lambda: confusion_figure({n: confusion(s, thresholds[n]) for n, s in test_scores.items()},
                                            thresholds))

with tabs[4]:
    trained = [n for n in names if history(metas[n])]
    if not trained:
        st.info("No installed model records per-epoch training curves.")
    else:
        pick = model_select(trained, key="models_history_model")
        meta = metas[pick]
        show("history", (pick, meta.get("created")), lambda: history_figure(history(meta), pick))
        run = training_summary(meta)
        st.caption(f"Best epoch {run['best_epoch']} of {run['epochs_run']} run; "
                   f"early stopping on {run['monitor']}. Command: `{run['command']}`")
    untrained = [n for n in names if n not in trained]
    if untrained:
        st.caption(f"Not trained by epochs (no curves): {', '.join(untrained)}.")

with tabs[5]:
    pick = model_select(names, key="models_threshold_model")
    val, test = scores(pick, "val"), test_scores.get(pick)
    if val is None or test is None:
        st.warning(f"Cached val and test scores are needed: run `make eval` ({pick} lacks "
                   f"{' and '.join(s for s, v in (('val', val), ('test', test)) if v is None)}).")
    else:
        current = thresholds[pick]
        left, right = st.columns([1, 2])
        with left:
            target = st.number_input("Target recall on fakes", 0.50, 0.99, 0.90, 0.01, key="models_target_recall",
                                     help="The study cared most about catching fakes. The suggestion is the highest "
                                          "threshold that reaches this recall on the validation split.")
            # floored to the slider's 0.001 step: rounding up could drop a fake below the target recall
            suggested = math.floor(threshold_for_recall(val.y, val.p, target) * 1000) / 1000
            st.markdown(f"Suggested operating point: **{suggested:.3f}** (chosen on val, checked on test)")
            key = f"models_threshold_{pick}"
            st.button("Use the suggestion", key="models_use_suggestion",
                      on_click=lambda: st.session_state.update({key: float(suggested)}))
            st.session_state.setdefault(key, float(round(current, 3)))
            threshold = st.slider("Threshold on P(fake)", 0.01, 0.99, step=0.001, key=key, format="%.3f")
            rates = pd.DataFrame(split_rates({"val": val, "test": test}, threshold))
            st.dataframe(rates, hide_index=True, column_config={c: PCT for c in rates.columns if c != "split"})
            st.caption(f"Saved operating point: **{current:.3f}**. FPR = share of real faces called fake.")
            operating_point_controls(pick, current, float(threshold), target)
        with right:
            sweeps = split_sweeps({"val": val, "test": test})
            show("threshold", (pick, stamps, threshold, suggested),
                 lambda: threshold_figure(sweeps, threshold, suggested))
        st.markdown("##### Calibration")
        cal = metas[pick].get("calibration")
        curves = reliability_curves(test, cal)
        c1, c2 = st.columns([1, 1])
        with c1:
            show("reliability", (pick, stamps, str(cal)),
                 lambda: reliability_figure(curves, f"{pick}: reliability on test"))
        with c2:
            if cal:
                st.markdown(
                    f"P(fake) is **Platt-scaled** on the validation split (n = {cal.get('n', '?')}): "
                    f"`sigmoid({cal['a']:.3f} · logit(raw) + {cal['b']:.3f})`. A calibrated score means that among "
                    "images scored around 0.8, about 80% are fake. Calibration never changes the ranking, so the "
                    "ROC AUC is unchanged.")
            else:
                st.info(f"{pick} is not calibrated: its P(fake) is the raw model output. "
                        f"Run `python -m models.calibration {pick} --data $DEEPFAKE_DATA`.")

with tabs[6]:
    table = load_crosssource()
    if not table:
        st.info("No cross-source study yet: run `python -m models.crosssource --arch spectrum` (seconds) and "
                "`--arch v1` (the default recipe on a reduced budget; about an hour here).")
    else:
        rows = pd.DataFrame(crosssource_rows(table))
        st.dataframe(rows, hide_index=True, column_config={
            **{c: PCT for c in ("AUC seen", "AUC held out", "caught seen", "caught held out")},
            "AUC change": st.column_config.NumberColumn(format="%+.3f"),
            "epochs": st.column_config.NumberColumn(format="%d")})
        st.caption(
            "Leave-one-source-out: for each source, a model is trained without that source (its fakes and reals "
            "left out of train and val) and compared with one trained on all sources under the same budget. "
            "'Seen' and 'held out' are the same test images. A big drop means the recipe learned something specific "
            "to that source rather than a general trace of manipulation: expect the detector to do about as badly "
            "on a new generator.")
        refs = crosssource_references(table)
        if refs:
            st.caption("Test ROC AUC of each recipe's all-sources model under this budget (the shipped models may be "
                       "trained longer): " + "; ".join(refs) + ".")
