"""The Keras backend's start, kept out of the way of the command line's own output and errors.

A backend takes seconds to start (TensorFlow about five on two cores), so commands start it only
after their settings and data have been checked: a mistyped flag or a bad ``test.p`` is answered
at once, not after the backend's start-up.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path


def quiet_backends() -> None:
    """Keep the terminal for our own progress lines: backend chatter goes, errors still raise."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    # JAX's persistent compilation cache: a repeated architecture (a resumed study, another worker, the
    # final retrain of a searched model) loads its compiled program instead of compiling it again.
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache" / "gtsrb-search" / "jax"))


def _print(text: str) -> None:
    print(text, flush=True)


def start_backend(precision: str | None = None, say: Callable[[str], None] | None = None) -> str | None:
    """Import Keras and touch a device with file descriptor 2 pointed at /dev/null, then set the
    dtype policy ``precision`` resolves to (``auto``: ``search/engine/precision.py``) and ``say`` it.
    Returns the policy set (None when ``precision`` is None).

    TensorFlow's C++ start-up writes log lines (CUDA probing, absl notices) straight to fd 2, past
    every Python logging setting; they would bury the one-line errors and progress this tool
    prints. Python-level import errors still raise and are reported after stderr is restored.
    Call it before importing the engine, the final stage or ``spaces``: they import Keras.
    The resolved policy is never written back over ``auto`` in the settings: a study resumed on
    another machine resolves it again there.
    """
    if "keras" not in sys.modules:
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            import keras

            keras.ops.convert_to_numpy(keras.ops.zeros((1,)))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    if precision is None:
        return None
    from search.engine.precision import apply_precision, choose_precision

    chosen = choose_precision(precision)
    apply_precision(chosen.policy)
    (say or _print)(chosen.describe(precision))
    return chosen.policy
