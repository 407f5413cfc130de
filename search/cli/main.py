"""Command line: ``python run_search.py [COMMAND]`` (also installed as ``run-search``).

With no command it runs the embedded default: generate the built-in synthetic traffic signs once,
search the combined space for about five minutes on two CPU cores, retrain the best model, score it
on the synthetic test split and write the dashboard.

Heavy imports happen inside the commands, and the Keras backend starts only once a command's
settings and data are checked (``backend.py``), so ``--help``, argument errors and bad data files
answer at once.
"""
from __future__ import annotations

import shlex
import signal
import sys
from collections.abc import Callable, Sequence

from ..errors import UserError
from .backend import quiet_backends
from .parser import EXIT_USAGE, build_parser

EXIT_INTERRUPTED = 130


def command_line(argv: Sequence[str]) -> str:
    return "python run_search.py " + shlex.join(argv) if argv else "python run_search.py"


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


def prepare_process() -> None:
    """Quiet backends before any of them starts, and SIGTERM (a scheduler's stop) as Ctrl-C."""
    quiet_backends()
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    prepare_process()
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
