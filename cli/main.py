"""Command line: ``python run_search.py [COMMAND]`` (also installed as ``run-search``).

With no command it runs the embedded default: generate the built-in synthetic traffic signs once,
search the combined space for about five minutes on two CPU cores, retrain the best model, score it
on the synthetic test split and write the dashboard.

Heavy imports happen inside the commands, and the Keras backend starts only once a command's
settings and data are checked (``backend.py``), so ``--help``, argument errors and bad data files
answer at once.
"""

from __future__ import annotations

import errno
import shlex
import signal
import sys
from collections.abc import Callable, Sequence

from search.errors import UserError
from search.redaction import redact, redact_argument

from .backend import quiet_backends
from .parser import EXIT_INTERRUPTED, EXIT_USAGE, build_parser
from .settings import apply_storage_env

# What the machine or the user's paths cause, not a bug: one line naming the file, exit 2.
USER_OS_ERRORS = frozenset(
    {
        errno.ENOSPC,
        errno.EFBIG,
        errno.EDQUOT,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.EEXIST,
        errno.ENOENT,
        errno.ENAMETOOLONG,
        errno.ELOOP,
    }
)


def command_line(argv: Sequence[str]) -> str:
    """The command as recorded in the study and the reports: every URL's password hidden."""
    return "python run_search.py " + shlex.join(map(redact_argument, argv)) if argv else "python run_search.py"


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_guarded(work: Callable[[], int], resume: str | None = None) -> int:
    """Run a command: a user error is one line and exit 2; Ctrl-C keeps what is saved, exit 130."""
    try:
        return work()
    except UserError as exc:
        print(redact(f"error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("error: out of memory (an input far larger than expected?)", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(redact(f"error: {where}{exc.strerror or exc}"), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every completed trial is kept in the study"
            + (f"; resume with:\n  {resume}" if resume else ""),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def prepare_process() -> None:
    """Quiet backends before any of them starts, and SIGTERM (a scheduler's stop) as Ctrl-C."""
    quiet_backends()
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    prepare_process()
    storage_problem = run_guarded(lambda: apply_storage_env(args))
    if storage_problem:
        return storage_problem
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
    return run_guarded(lambda: handler(args, command), resume=command if args.verb in ("search", "join") else None)
