"""Import TensorFlow without its C++ start-up chatter on stderr (oneDNN notes, CUDA probes).

TF 2.21 logs those lines through absl before ``TF_CPP_MIN_LOG_LEVEL`` can apply, so the CLIs'
one-line errors would drown in them. stderr is captured while TensorFlow loads and probes its
devices, and replayed if the import fails.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules or os.environ.get("DEEPFAKE_TF_VERBOSE"):
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. some test runners)
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), fd)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
            tf.reduce_sum(tf.zeros((1,))).numpy()  # the first op initialises devices (and the CUDA probe logs)
        except BaseException:
            os.dup2(saved, fd)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)
