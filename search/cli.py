"""Command line: ``python run_search.py [COMMAND]`` (also installed as ``run-search``).

With no command it runs the embedded default: generate the built-in synthetic traffic signs once,
search the combined space for about five minutes on two CPU cores, retrain the best model, score it
on the synthetic test split and write the dashboard.

Heavy imports (Keras, Optuna) happen inside the commands so that ``--help`` and argument errors
answer at once.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .config import OBJECTIVES, PRECISIONS, PRUNERS, SAMPLERS, SearchConfig
from .errors import UserError

DEFAULT_OUT = Path("runs")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line and exit status 2, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def _objectives(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    if not parts or parts[0] != "accuracy" or any(p not in OBJECTIVES for p in parts) or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(f"expected 'accuracy' or 'accuracy,params', got {text!r}")
    return parts


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite under runs/<study>/study.db); "
                                     "e.g. postgresql://user@host/db for several machines")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for run outputs (default runs/)")


def _add_search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, required=True, help="folder with train.p [valid.p] [test.p]")
    p.add_argument("--space", default="all", choices=("cnn", "lenet", "all"))
    p.add_argument("--trials", type=_positive_int, default=30,
                   help="the study's target of finished trials; a study that already reached it is "
                        "extended by this many (default 30)")
    p.add_argument("--timeout", type=_positive_float, help="seconds for the search phase; trials are "
                   "capped at a quarter of it each")
    p.add_argument("--epochs", type=_positive_int, default=10, help="most epochs per trial (default 10)")
    p.add_argument("--patience", type=_positive_int, default=3, help="early-stopping patience (default 3)")
    p.add_argument("--final-epochs", type=_positive_int, help="most epochs of the final retrain "
                                                              "(default 2 x --epochs)")
    p.add_argument("--study", help="study name (default <space>-<data folder name>)")
    _add_storage(p)
    p.add_argument("--sampler", default="tpe", choices=SAMPLERS)
    p.add_argument("--local-share", type=_share, default=0.5,
                   help="share of sampled trials that try a neighbour of the best trial so far, one or "
                        "two settings changed (default 0.5; 0: the sampler alone)")
    p.add_argument("--pruner", default="hyperband", choices=PRUNERS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--objective", type=_objectives, default=("accuracy",),
                   help="'accuracy' or 'accuracy,params' (Pareto front; disables pruning)")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="worker processes on this machine sharing the study")
    p.add_argument("--precision", default="float32", choices=PRECISIONS)
    p.add_argument("--n-classes", type=_positive_int, help="class count (default: signnames.csv or 43)")
    p.add_argument("--valid-fraction", type=float, default=0.2,
                   help="share of train.p held out (stratified) when there is no valid.p")
    p.add_argument("--heartbeat", type=_positive_float, default=20.0,
                   help="seconds between trial heartbeats; a trial silent for 3 is marked failed")
    p.add_argument("--max-failures", type=_positive_int, default=5,
                   help="consecutive failed trials that stop the search")
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--no-retrain", action="store_true", help="skip the final retrain and test score")
    p.add_argument("--no-named-points", action="store_true",
                   help="do not start a new study with the space's named points (tutorial models...)")
    p.add_argument("--dashboard-every", type=int, default=5,
                   help="regenerate the dashboard after every N finished trials (0: only at the end)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="run_search.py", description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="With no command: the embedded default search on synthetic signs.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND")
    _add_search_args(sub.add_parser("search", help="run or resume a search"))
    p = sub.add_parser("retrain", help="retrain a study's best configuration and score it on test.p")
    p.add_argument("--study", required=True)
    p.add_argument("--data-dir", type=Path, help="data folder (default: the study's)")
    p.add_argument("--final-epochs", type=_positive_int)
    _add_storage(p)
    p = sub.add_parser("export", help="print or write a study's best configuration")
    p.add_argument("--study", required=True)
    p.add_argument("--format", choices=("json", "yaml"), default="json")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: print)")
    _add_storage(p)
    p = sub.add_parser("studies", help="list the studies in a storage")
    _add_storage(p)
    p = sub.add_parser("dashboard", help="write a study's self-contained HTML dashboard")
    p.add_argument("--study", required=True)
    p.add_argument("-o", "--output", type=Path, help="HTML file (default runs/<study>/dashboard.html)")
    _add_storage(p)
    sub.add_parser("spaces", help="list every model family: parameters, ranges, defaults, named points")
    data = sub.add_parser("data", help="make, convert and check data folders")
    dsub = data.add_subparsers(dest="data_command", parser_class=OneLineParser, metavar="DATA_COMMAND",
                               required=True)
    p = dsub.add_parser("synth", help="write the built-in synthetic traffic signs")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-train", type=_positive_int, default=5000)
    p.add_argument("--n-valid", type=_positive_int, default=1500)
    p.add_argument("--n-test", type=_positive_int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=_positive_int, default=32)
    p = dsub.add_parser("convert-gtsrb", help="convert the official GTSRB folders to train/valid/test.p")
    p.add_argument("src", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=_positive_int, default=32)
    p.add_argument("--crop", action="store_true", help="crop to the sign's bounding box first")
    p.add_argument("--valid-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p = dsub.add_parser("check", help="print the sanity report of a data folder (exit 2 if invalid)")
    p.add_argument("dir", type=Path)
    p.add_argument("--html", type=Path, help="also write the data section of the dashboard here")
    p.add_argument("--n-classes", type=_positive_int)
    return parser


def config_from_args(args: argparse.Namespace, argv: Sequence[str]) -> SearchConfig:
    return SearchConfig(
        data_dir=args.data_dir, space=args.space, trials=args.trials, timeout=args.timeout,
        epochs=args.epochs, patience=args.patience, final_epochs=args.final_epochs, study=args.study,
        storage=args.storage, sampler=args.sampler, local_share=args.local_share, pruner=args.pruner,
        seed=args.seed, out=args.out,
        objectives=args.objective, workers=args.workers, precision=args.precision,
        n_classes=args.n_classes, valid_fraction=args.valid_fraction, heartbeat=args.heartbeat,
        max_failures=args.max_failures, retrain=not args.no_retrain, named_points=not args.no_named_points,
        dashboard_every=args.dashboard_every,
        worker_index=args.worker_index, command=command_line(argv), extra={"argv": list(argv)})


def command_line(argv: Sequence[str]) -> str:
    return "python run_search.py " + shlex.join(argv) if argv else "python run_search.py"


def _quiet_backends() -> None:
    """Keep the terminal for our own progress lines: backend chatter goes, errors still raise."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _quiet_backends()
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    if args.command != "data":
        _import_backend_quietly()
    from . import commands

    resume = None
    try:
        if args.command is None:
            return commands.default_job(argv)
        if args.command == "search":
            cfg = config_from_args(args, argv)
            # A worker started by --workers leaves the resume command to its parent.
            resume = None if "--worker-index" in argv else cfg.command
            return commands.search(cfg)
        handler = getattr(commands, (args.data_command if args.command == "data" else args.command)
                          .replace("-", "_"))
        return handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted: every completed trial is kept in the study"
              + (f"; resume with:\n  {resume}" if resume else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
