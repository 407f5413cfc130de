"""What each study command does, once its arguments are parsed (``main.py``).

The command line is where the engine meets the person and ``results/``: it resolves the settings
(``settings.py``), passes the progress printer and the dashboard refresh into the engine as
callbacks (``reporting.py``), and runs the final model.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.config import DEFAULT_OUT, SearchConfig
from search.data import Dataset
from search.data.prepare import load_checked, save_data_reports
from search.errors import UserError
from search.formatting import format_duration
from search.progress import Progress
from search.schema import RunFile, best_trial, redact, sqlite_url, write_text

from .backend import start_backend
from .parser import EXIT_INTERRUPTED, given_settings
from .paths import output_file, writing
from .reporting import print_summary, search_events, write_dashboard_safely
from .settings import Resolved, resolve

if TYPE_CHECKING:
    from search.data.sanity import SanityReport
    from search.engine.run import Run
    from search.engine.workers import WorkerCommand

DEFAULT_DATA_ROOT = DEFAULT_OUT / "data"
# The embedded default: sized to finish in about five minutes on two CPU cores (see BENCHMARKS.md).
EMBEDDED_TRAIN_IMAGES = 6000  # the synthetic training images of the embedded default (other splits: data synth's)
# The embedded default's settings on top of SearchConfig's defaults (each key a SearchConfig field).
DEFAULT_SEARCH: dict[str, Any] = {
    "space": "all",
    "trials": 40,
    "timeout": 300.0,
    "epochs": 6,
    "final_epochs": 10,
    "study": "default",
}


def search(args: argparse.Namespace, command: str) -> int:
    """Search (or resume), then retrain the best configuration, score it on test and report."""
    started = time.monotonic()
    progress = Progress(0)
    return run_job(resolve(given_settings(args), command, progress.say, store=True), progress, started)


def checked_data(resolved: Resolved, say: Callable[[str], None]) -> tuple[Dataset, SanityReport]:
    """The data loaded and checked, against the study's own when the study exists; nothing written."""
    from search.engine.study import check_same_data

    dataset, report = load_checked(resolved.cfg, say)
    if resolved.attrs is not None:
        check_same_data(resolved.attrs, resolved.cfg, dataset.content_hash)
    return dataset, report


def run_job(resolved: Resolved, progress: Progress, started: float) -> int:
    """The whole job within ``--timeout`` from ``started``: the search stops early enough to pay
    for the final stage (``final/budget.py``). The data is checked before the backend starts, and
    the study and the run folder are written only once the data, the space and the settings passed."""
    cfg = resolved.cfg
    dataset, report = checked_data(resolved, progress.say)
    start_backend(cfg.precision)
    from search.engine.run import open_run

    run = open_run(cfg, dataset, storage=resolved.storage, say=progress.say, warm=resolved.warm)
    resolved.record(run.study, progress.say)
    save_data_reports(cfg, dataset, report)
    _search(run, progress, started)
    if cfg.retrain:
        from search.final import retrain_best

        try:
            retrain_best(
                run.study,
                run.dataset,
                cfg,
                progress.events(),
                deadline=started + cfg.timeout if cfg.timeout else None,
                space=run.space,
            )
        except KeyboardInterrupt:
            progress.say(
                f"\nretrain interrupted; the search itself is saved. Retrain later with:\n"
                f"  python run_search.py retrain --study {cfg.study_name} --out {cfg.out}"
                + (f" --storage {redact(cfg.storage)}" if cfg.storage else "")
            )
            return EXIT_INTERRUPTED
    path = write_dashboard_safely(run.study, cfg.run_dir, progress)
    if path:
        progress.say(f"dashboard: {path}")
    wall = time.monotonic() - started
    progress.say(
        f"job wall time {format_duration(wall)}"
        + (f" of a {format_duration(cfg.timeout)} budget ({wall / cfg.timeout:.0%})" if cfg.timeout else "")
    )
    return 0


def _search(run: Run, progress: Progress, started: float) -> None:
    """The search part of the job, in this process or in ``--workers`` children, and its summary."""
    from search.engine.loop import search
    from search.final.budget import reserve_seconds

    cfg = run.cfg
    progress.target, progress.timeout, progress.epochs = cfg.trials, cfg.timeout, cfg.epochs
    progress.start = started
    start = time.monotonic()
    events = search_events(cfg, progress)
    if cfg.workers > 1:
        from search.engine.workers import run_workers

        outcome = run_workers(run, worker_launcher(cfg, started), events)
    else:
        outcome = search(run, events=events, started=started, reserve=lambda study: reserve_seconds(study, cfg))
    print_summary(outcome.study, progress)
    best = best_trial(outcome.study)
    progress.say(f"best trial: #{best.number} val_acc {best.values[0]:.4f}" if best else "best trial: none completed")
    progress.say(f"search stopped ({outcome.stop_reason}) after {format_duration(time.monotonic() - start)}")


def worker_launcher(parent: SearchConfig, started: float) -> WorkerCommand:
    """How ``--workers`` starts worker ``index``: its arguments, and the serialised settings for its
    standard input (a storage URL's password must not be on a command line, which ``ps`` shows to
    every local user). A worker's budget is what is left of the parent's, and it leaves the parent's
    final stage its reserve."""

    def command(child: SearchConfig, index: int) -> tuple[list[str], str]:
        if parent.timeout is not None:
            child = dataclasses.replace(child, timeout=max(parent.timeout - (time.monotonic() - started), 1.0))
        argv = [sys.executable, "-m", "cli.worker", str(index), "reserve" if parent.retrain else "no-reserve"]
        return argv, child.dumps(secrets=True)

    return command


def default_job(argv: Sequence[str]) -> int:
    """``python run_search.py`` with no arguments: synthetic data, a short search, the final model."""
    from search.data.synth import DEFAULT_SIZES, SYNTH_VERSION, write_synthetic_dataset

    data_dir = DEFAULT_DATA_ROOT / f"synth-v{SYNTH_VERSION}"
    if not (data_dir / "train.p").exists():
        print(f"generating the built-in synthetic traffic signs in {data_dir} (once)", flush=True)
        sizes = dataclasses.replace(DEFAULT_SIZES, n_train=EMBEDDED_TRAIN_IMAGES)
        write_synthetic_dataset(data_dir, **dataclasses.asdict(sizes), seed=0)
    started = time.monotonic()  # the budget starts once the data exists (made once per machine)
    progress = Progress(0)
    resolved = resolve({"data_dir": data_dir, **DEFAULT_SEARCH}, "python run_search.py", progress.say, store=True)
    return run_job(resolved, progress, started)


def join(args: argparse.Namespace, command: str) -> int:
    """One more worker on a study, with the study's settings; never past the study's target."""
    from search.engine.study import stored_progress, worker_id

    progress = Progress(0)
    resolved = resolve(given_settings(args), command, progress.say, store=False, must_exist=True)
    assert resolved.storage is not None
    finished, target = stored_progress(resolved.storage, resolved.cfg.study_name)
    if finished >= target:
        progress.say(
            f"study {resolved.cfg.study_name!r} has reached its target ({finished} of {target} trials "
            "finished): nothing to do"
        )
        return 0
    dataset, report = checked_data(resolved, progress.say)
    start_backend(resolved.cfg.precision)
    from search.engine.loop import search
    from search.engine.run import open_run

    cfg = resolved.cfg.with_overrides({"retrain": False, "dashboard_every": 0, "workers": 1})[0]
    index = 1 + zlib.crc32(worker_id().encode()) % 9973  # a sampler seed of its own
    run = open_run(cfg, dataset, storage=resolved.storage, worker_index=index, say=progress.say, warm=resolved.warm)
    resolved.record(run.study, progress.say)
    save_data_reports(cfg, dataset, report)
    progress.target, progress.timeout = target, cfg.timeout
    outcome = search(run, events=search_events(cfg, progress), extend=False)
    progress.say(f"worker stopped ({outcome.stop_reason}): {outcome.finished} of {target} trials finished")
    return 0


def retrain(args: argparse.Namespace, command: str) -> int:
    """The final stage again, with the study's stored settings (and the data split they made)."""
    given = given_settings(args)
    if "study" not in given:
        raise UserError("retrain: --study NAME is required")
    progress = Progress(0)
    resolved = resolve(given, command, progress.say, store=False, must_exist=True)
    dataset, _ = checked_data(resolved, lambda _text: None)
    start_backend(resolved.cfg.precision)
    from search.engine.study import load_space
    from search.final import retrain_best

    space = load_space(resolved.cfg.space)
    study = resolved.open_study()
    resolved.record(study, progress.say)
    retrain_best(study, dataset, resolved.cfg, progress.events(), space=space)
    write_dashboard_safely(study, resolved.cfg.run_dir, progress)
    return 0


def _open(args: argparse.Namespace):  # -> optuna.Study
    from search.engine.study import open_existing

    return open_existing(args.study, getattr(args, "storage", None), _out(args))


def _out(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "out", DEFAULT_OUT))


def export(args: argparse.Namespace, command: str) -> int:
    from results.export import best_config, format_config

    if args.output:
        output_file(args.output, "-o/--output")
    study = _open(args)
    try:
        text = format_config(best_config(study, _out(args) / args.study), args.format)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.output:
        with writing(args.output, "the configuration"):
            write_text(args.output, text)
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def studies(args: argparse.Namespace, command: str) -> int:
    from results.export import studies_table

    out = _out(args)
    storage = getattr(args, "storage", None)
    urls = [storage] if storage else [sqlite_url(db) for db in sorted(out.glob("*/study.db"))]
    if not urls:
        print(f"no studies under {out}/ (pass --storage URL for a database elsewhere)")
        return 0
    for url in urls:
        try:
            print(studies_table(url))
        except Exception as exc:
            raise UserError(f"cannot read storage {redact(url)}: {redact(str(exc).splitlines()[0])}") from None
    return 0


def dashboard(args: argparse.Namespace, command: str) -> int:
    from results.dashboard import write_dashboard

    if args.output:
        output_file(args.output, "-o/--output")
    study = _open(args)
    run_dir = _out(args) / args.study
    with writing(args.output or run_dir / RunFile.DASHBOARD, "the dashboard"):
        path = write_dashboard(study, run_dir, args.output)
    print(f"wrote {path}")
    return 0


def spaces(args: argparse.Namespace, command: str) -> int:
    start_backend()
    import spaces as space_registry

    for name in space_registry.SPACES:
        print(space_registry.describe_space(name))
        print()
    return 0


def export_model(args: argparse.Namespace, command: str) -> int:
    """One deployable artifact of ``best_model.keras``, scored on ``test.p`` in its own runtime."""
    run_dir = _out(args) / args.study
    model_path = run_dir / RunFile.BEST_MODEL
    if not model_path.is_file():
        raise UserError(
            f"no final model {model_path}: run retrain first (python run_search.py retrain --study {args.study})"
        )
    if args.quantize and args.format != "tflite":
        raise UserError(f"--quantize applies to --format tflite only, not {args.format}")
    data_dir = Path(args.data_dir or SearchConfig.from_study_attrs(_open(args).user_attrs).data_dir)
    start_backend()
    import spaces  # noqa: F401  (registers the custom layers of the .keras file)
    from search.data import find_split_file, load_split
    from search.final.deploy import export_and_score
    from search.final.export import representative_images

    rep = representative_images(data_dir) if args.quantize == "int8" else None
    test_path = find_split_file(data_dir, "test") if data_dir.is_dir() else None
    if test_path is None:
        print(f"no test file in {data_dir}: the artifact is not scored")
    export_and_score(
        run_dir,
        [args.format],
        load_split(test_path) if test_path else None,
        print,
        quantize=args.quantize,
        representative=rep,
        command=command,
    )
    print(f"report: {run_dir / RunFile.EXPORT_REPORT}")
    return 0


def predict(args: argparse.Namespace, command: str) -> int:
    """Top-k sign names and probabilities for each photo, from the study's ONNX model (no TensorFlow)."""
    from search.data.photos import photo_files
    from search.predict import Predictor

    predictor = Predictor(Path(args.out) / args.study)
    answers = predictor.predict(photo_files(args.paths), top_k=args.top_k)
    print(format_predictions(answers, args.format), end="")
    return 0


def format_predictions(answers: list, fmt: str) -> str:
    """``table`` (one line per photo), ``csv`` (one row per photo and rank) or ``json`` (a list)."""
    if fmt == "json":
        return json.dumps([a.to_json() for a in answers], indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "rank", "class_id", "name", "probability"])
        for answer in answers:
            for rank, (class_id, name, prob) in enumerate(answer.top, 1):
                writer.writerow([answer.path, rank, class_id, name, f"{prob:.6f}"])
        return buffer.getvalue()
    return "".join(
        f"{answer.path}: " + "; ".join(f"{name} {prob:.1%}" for _, name, prob in answer.top) + "\n"
        for answer in answers
    )
