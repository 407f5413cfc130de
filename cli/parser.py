"""The argument parser, generated from ``SearchConfig``: its defaults and help are the settings' own.

Settings are parsed with ``argparse.SUPPRESS`` as their default, so the namespace holds only what
the user typed: those are the overrides of a stored study's settings (``settings.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search.config import (
    CHECKS,
    DEFAULT_OUT,
    EXPORT_FORMATS,
    MAX_CLASSES,
    MAX_SEED,
    SearchConfig,
    check_storage,
    check_study_name,
    parse_list,
    too_large,
)
from search.data.synth import DEFAULT_SIZES
from search.redaction import redact

EXIT_USAGE = 2  # a user error: one line, nothing already saved lost
EXIT_INTERRUPTED = 130  # Ctrl-C (or SIGTERM): every completed trial kept
NOT_OPTIONS = ("command",)
STORAGE_ENV = "HPSEARCH_STORAGE"  # the storage URL when neither --storage nor --storage-env is given


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line and exit status 2, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(redact(f"error: {self.prog}: {message} (see {self.prog} --help)"), file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _base_type(annotation: Any) -> type:
    if typing.get_origin(annotation) is tuple:
        return tuple
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return _base_type(args[0]) if args else annotation


def _converter(f: dataclasses.Field, base: type) -> Callable[[str], Any]:
    """Text to value, with the setting's own range check as the argparse error."""
    check, most = f.metadata.get("check"), f.metadata.get("most")
    if base is tuple:  # comma-separated lists (objectives, export formats)

        def listed(text: str) -> tuple[str, ...]:
            parts = parse_list(text)
            problem = CHECKS[check](parts) if check else None
            if problem:
                raise argparse.ArgumentTypeError(f"{problem}, got {text!r}")
            return parts

        return listed

    def convert(text: str) -> Any:
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {base.__name__}, got {text!r}") from None
        problem = CHECKS[check](value) if check else None
        if problem and check == "positive" and base is int:
            problem = "must be a positive integer"
        problem = problem or too_large(value, most)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text!r}")
        return value

    convert.__name__ = base.__name__
    return convert


def add_settings(p: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """One option per ``SearchConfig`` field (or the ``names`` given), default SUPPRESS."""
    hints = typing.get_type_hints(SearchConfig)
    for f in dataclasses.fields(SearchConfig):
        if f.name in NOT_OPTIONS or (names is not None and f.name not in names):
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, tuple):
            default = ",".join(default)
        shown = f" (default {default})" if default not in (None, "", ()) and not isinstance(default, bool) else ""
        help_text = f.metadata.get("help", "") + shown
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        if f.name == "storage":
            _add_storage(p, help_text)
            continue
        if flag.startswith("--no-"):
            p.add_argument(
                flag,
                dest=f.name,
                action="store_const",
                const=False,
                default=argparse.SUPPRESS,
                help=help_text[0].upper() + help_text[1:] + ": off",
            )
            continue
        base = _base_type(hints[f.name])
        p.add_argument(
            flag,
            dest=f.name,
            type=_converter(f, base),
            default=argparse.SUPPRESS,
            choices=f.metadata.get("choices"),
            help=help_text,
            metavar=None if f.metadata.get("choices") else _metavar(f.name, base),
        )


def _metavar(name: str, base: type) -> str:
    if name == "timeout" or name == "heartbeat":
        return "SEC"
    return {int: "N", float: "X", Path: "DIR", tuple: "A,B"}.get(base, name.upper())


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the user typed (a namespace parsed with ``add_settings``)."""
    names = {f.name for f in dataclasses.fields(SearchConfig)} - set(NOT_OPTIONS)
    return {k: v for k, v in vars(args).items() if k in names}


def _checked(check: Callable[[str], str | None], name: str) -> Callable[[str], str]:
    """An argparse type that refuses what ``check`` refuses, with its message."""

    def convert(text: str) -> str:
        problem = check(text)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text!r}")
        return text

    convert.__name__ = name
    return convert


def _add_storage(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--storage URL``, or ``--storage-env NAME``: the URL read from an environment variable, so a
    password stays out of the command line (which every local user can read with ``ps``)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--storage", default=argparse.SUPPRESS, metavar="URL", help=help_text, type=_storage_url)
    group.add_argument(
        "--storage-env",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help=f"read the storage URL from environment variable NAME (default: ${STORAGE_ENV} "
        "when it is set and --storage is not given)",
    )
    p.set_defaults(takes_storage=True)


def _storage_url(text: str) -> str:
    """``--storage``'s type; the refusal does not echo the text, which may hold a password."""
    if check_storage(text):
        raise argparse.ArgumentTypeError(
            "expected a storage URL such as sqlite:///path/study.db or postgresql://user@host/db"
        )
    return text


def _add_locating(p: argparse.ArgumentParser, *, study_required: bool) -> None:
    p.add_argument(
        "--study",
        required=study_required,
        default=argparse.SUPPRESS,
        type=_checked(check_study_name, "study name"),
        help="study name" + ("" if study_required else " (default <space>-<data folder name>)"),
    )
    _add_storage(
        p,
        "Optuna storage URL (default: sqlite under <out>/<study>/study.db); "
        "e.g. postgresql://user@host/db for several machines",
    )
    p.add_argument(
        "--out", type=Path, default=argparse.SUPPRESS, help=f"folder for run outputs (default {DEFAULT_OUT}/)"
    )


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="run_search.py",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="With no command: the embedded default search on synthetic signs.",
    )
    sub = parser.add_subparsers(dest="verb", parser_class=OneLineParser, metavar="COMMAND")
    _add_study_commands(sub)
    _add_reading_commands(sub)
    _add_export_model(sub)
    _add_predict(sub)
    p = sub.add_parser("studies", help="list the studies in a storage")
    _add_storage(p, "Optuna storage URL (default: every study.db under --out)")
    p.add_argument(
        "--out", type=Path, default=argparse.SUPPRESS, help=f"folder for run outputs (default {DEFAULT_OUT}/)"
    )
    sub.add_parser("spaces", help="list every model family: parameters, ranges, defaults, named points")
    _add_data_commands(sub)
    return parser


def _add_study_commands(sub: argparse._SubParsersAction) -> None:
    """The commands that train: search, join and retrain, each with the settings they take."""
    p = sub.add_parser(
        "search", help="run or resume a search (a resumed study keeps its settings; options given again override them)"
    )
    add_settings(p)
    p = sub.add_parser(
        "join",
        help="one more worker on an existing study, with the study's own settings (for job arrays: Slurm, Kubernetes)",
    )
    _add_locating(p, study_required=True)
    add_settings(p, names=("data_dir", "space"))
    p = sub.add_parser(
        "retrain",
        help="build the final model again from the study's best configurations "
        "(its stored settings) and score it on test.p",
    )
    add_settings(p)


def _add_reading_commands(sub: argparse._SubParsersAction) -> None:
    """export and dashboard: read a study, print or write what it holds."""
    for name, help_text in (
        ("export", "print or write a study's best configuration"),
        ("dashboard", "write a study's self-contained HTML dashboard"),
    ):
        p = sub.add_parser(name, help=help_text)
        _add_locating(p, study_required=True)
        if name == "export":
            p.add_argument("--format", choices=("json", "yaml"), default="json")
        default = " (default: print)" if name == "export" else " (default <out>/<study>/dashboard.html)"
        p.add_argument("-o", "--output", type=Path, help="file to write" + default)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="the finished study's model on new photos: the top sign names and their probabilities "
        "(runs best_model.onnx in onnxruntime)",
    )
    p.add_argument(
        "--study", required=True, type=_checked(check_study_name, "study name"), help="study whose model answers"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for run outputs (default {DEFAULT_OUT}/)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders of them")
    p.add_argument("--top-k", type=_int_in(1, MAX_CLASSES), default=3, help="classes per photo (default 3)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")


def _add_export_model(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-model",
        help="write the final model (best_model.keras) as a deployable "
        "SavedModel, ONNX or TFLite file and score it in its runtime",
    )
    _add_locating(p, study_required=True)
    p.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        required=True,
        help="written beside best_model.keras as best_model_savedmodel/, best_model.onnx, "
        "best_model[_float16|_int8].tflite",
    )
    p.add_argument(
        "--quantize",
        choices=("float16", "int8"),
        help="TFLite post-training quantisation (int8 calibrates on 200 images of train.p)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="data folder for the int8 calibration images and the test.p score (default: the study's own)",
    )


def _int_in(least: int, most: int) -> Callable[[str], int]:
    """An argparse type for a whole number in ``[least, most]``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"must be between {least} and {most}, got {text}")
        return value

    convert.__name__ = "int"
    return convert


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    problem = CHECKS["fraction"](value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}, got {text}")
    return value


MAX_IMAGES = 2_000_000  # synthetic images per split: 6 GiB of 32x32 pixels, far past any test or demo
MAX_SIZE = 512  # image side in pixels; the spaces are built for 32
MIN_SIZE = 8


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="make, convert and check data folders")
    dsub = data.add_subparsers(dest="data_command", parser_class=OneLineParser, metavar="DATA_COMMAND", required=True)
    p = dsub.add_parser("synth", help="write the built-in synthetic traffic signs")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-train", type=_int_in(1, MAX_IMAGES), default=DEFAULT_SIZES.n_train)
    p.add_argument("--n-valid", type=_int_in(1, MAX_IMAGES), default=DEFAULT_SIZES.n_valid)
    p.add_argument("--n-test", type=_int_in(1, MAX_IMAGES), default=DEFAULT_SIZES.n_test)
    p.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0)
    p.add_argument("--size", type=_int_in(MIN_SIZE, MAX_SIZE), default=32)
    p = dsub.add_parser("convert-gtsrb", help="convert the official GTSRB folders to train/valid/test.p")
    p.add_argument("src", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=_int_in(MIN_SIZE, MAX_SIZE), default=32)
    p.add_argument("--crop", action="store_true", help="crop to the sign's bounding box first")
    p.add_argument("--valid-fraction", type=_fraction, default=SearchConfig.valid_fraction)
    p.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0)
    p = dsub.add_parser("check", help="print the sanity report of a data folder (exit 2 if invalid)")
    p.add_argument("dir", type=Path)
    p.add_argument("--html", type=Path, help="also write the data section of the dashboard here")
    p.add_argument("--n-classes", type=_int_in(2, MAX_CLASSES))
