"""Command line: ``python run_search.py [COMMAND]`` (also installed as ``run-search``).

With no command it runs the embedded default: generate the built-in synthetic traffic signs once,
search the combined space for about five minutes on two CPU cores, retrain the best model, score it
on the synthetic test split and write the dashboard.

Heavy imports (Keras, Optuna) happen inside the commands so that ``--help`` and argument errors
answer at once.
"""
from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import UserError
from .parser import EXIT_USAGE, build_parser

EXIT_INTERRUPTED = 130
# Commands that only read a study (results/ needs neither Keras nor a backend): they answer at once,
# without the seconds a backend takes to start.
NO_KERAS = ("data", "export", "studies", "dashboard")


def command_line(argv: Sequence[str]) -> str:
    return "python run_search.py " + shlex.join(argv) if argv else "python run_search.py"


def _quiet_backends() -> None:
    """Keep the terminal for our own progress lines: backend chatter goes, errors still raise."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    # JAX's persistent compilation cache: a repeated architecture (a resumed study, another worker, the
    # final retrain of a searched model) loads its compiled program instead of compiling it again.
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache" / "gtsrb-search" / "jax"))


def _import_backend_quietly() -> None:
    """Import Keras and touch a device with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ start-up writes log lines (CUDA probing, absl notices) straight to fd 2, past
    every Python logging setting; they would bury the one-line errors and progress this tool
    prints. Python-level import errors still raise and are reported after stderr is restored.
    """
    if "keras" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras

        keras.ops.convert_to_numpy(keras.ops.zeros((1,)))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_guarded(work: Callable[[], int], resume: str | None = None) -> int:
    """Run a command: a user error is one line and exit 2; Ctrl-C keeps what is saved, exit 130."""
    try:
        return work()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted: every completed trial is kept in the study"
              + (f"; resume with:\n  {resume}" if resume else ""), file=sys.stderr)
        return EXIT_INTERRUPTED


def prepare_process(*, keras_needed: bool) -> None:
    """Quiet backends, SIGTERM as Ctrl-C, and Keras imported with its start-up chatter hidden."""
    _quiet_backends()
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    if keras_needed:
        _import_backend_quietly()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    prepare_process(keras_needed=args.verb not in NO_KERAS)
    command = command_line(argv)
    if args.verb is None:
        from .commands import default_job

        return run_guarded(lambda: default_job(argv), resume=command)
    if args.verb == "data":
        from . import data_commands

        handler = getattr(data_commands, args.data_command.replace("-", "_"))
        return run_guarded(lambda: handler(args))
    from . import commands

    handler = getattr(commands, args.verb.replace("-", "_"))
    return run_guarded(lambda: handler(args, command),
                       resume=command if args.verb in ("search", "join") else None)
