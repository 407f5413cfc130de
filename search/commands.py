"""What each command does, once its arguments are parsed (see ``cli.py``)."""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from .config import SearchConfig
from .errors import UserError
from .progress import Progress, format_duration

DEFAULT_DATA_ROOT = Path("runs") / "data"
# The embedded default: sized to finish in about five minutes on two CPU cores (see BENCHMARKS.md).
DEFAULT_SYNTH = {"n_train": 6000, "n_valid": 1500, "n_test": 2000, "seed": 0}
DEFAULT_SEARCH = {"space": "all", "trials": 40, "timeout": 180.0, "epochs": 6, "final_epochs": 10,
                  "study": "default"}


def _set_precision(policy: str) -> None:
    import keras

    keras.mixed_precision.set_global_policy(policy)


def search(cfg: SearchConfig) -> int:
    """Search (or resume), then retrain the best configuration, score it on test and report."""
    from .runner import print_summary, run_search, write_dashboard_safely

    _set_precision(cfg.precision)
    progress = Progress(cfg.trials, timeout=cfg.timeout)
    start = time.monotonic()
    if cfg.workers > 1:
        from .workers import run_workers

        outcome = run_workers(cfg, progress)
    else:
        outcome = run_search(cfg, progress=progress)
    print_summary(outcome.study, progress)
    _say_best(outcome.study, progress)
    progress.say(f"search stopped ({outcome.stop_reason}) after {format_duration(time.monotonic() - start)}")
    if cfg.retrain:
        from .final import retrain_best
        from .study import redact

        try:
            retrain_best(outcome.study, outcome.dataset, cfg, progress)
        except KeyboardInterrupt:
            progress.say(f"\nretrain interrupted; the search itself is saved. Retrain later with:\n"
                         f"  python run_search.py retrain --study {cfg.study_name} --out {cfg.out}"
                         + (f" --storage {redact(cfg.storage)}" if cfg.storage else ""))
            return 130
    path = write_dashboard_safely(outcome.study, cfg.run_dir, progress)
    if path:
        progress.say(f"dashboard: {path}")
    return 0


def _say_best(study, progress: Progress) -> None:  # noqa: ANN001
    from .final import best_trial

    try:
        best = best_trial(study)
    except UserError:
        progress.say("best trial: none completed")
        return
    progress.say(f"best trial: #{best.number} val_acc {best.values[0]:.4f}")


def default_job(argv: Sequence[str]) -> int:
    """``python run_search.py`` with no arguments: synthetic data, a short search, the final model."""
    from .synth import SYNTH_VERSION, write_synthetic_dataset

    data_dir = DEFAULT_DATA_ROOT / f"synth-v{SYNTH_VERSION}"
    if not (data_dir / "train.p").exists():
        print(f"generating the built-in synthetic traffic signs in {data_dir} (once)", flush=True)
        write_synthetic_dataset(data_dir, **DEFAULT_SYNTH)
    cfg = SearchConfig(data_dir=data_dir, command="python run_search.py", **DEFAULT_SEARCH)  # type: ignore[arg-type]
    return search(cfg)


def _open_existing_study(name: str, storage: str | None, out: Path):  # -> optuna.Study
    import optuna

    from .study import redact

    url = storage or f"sqlite:///{(out / name / 'study.db').resolve()}"
    if storage is None and not (out / name / "study.db").exists():
        raise UserError(f"no study {name!r}: {out / name / 'study.db'} does not exist")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise UserError(f"no study {name!r} in {redact(url)}") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy errors for unreachable storages
        raise UserError(f"cannot open storage {redact(url)}: {str(exc).splitlines()[0]}") from None


def retrain(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .final import retrain_best
    from .runner import write_dashboard_safely

    study = _open_existing_study(args.study, args.storage, args.out)
    attrs = study.user_attrs
    data_dir = args.data_dir or Path(attrs.get("data_dir", ""))
    cfg = SearchConfig(data_dir=data_dir, space=attrs.get("space", "all"), study=args.study,
                       storage=args.storage, out=args.out, epochs=int(attrs.get("epochs", 10)),
                       seed=int(attrs.get("seed", 0)), final_epochs=args.final_epochs)
    dataset = load_dataset(data_dir, seed=cfg.seed)
    if attrs.get("data_hash") and attrs["data_hash"] != dataset.content_hash:
        raise UserError(f"data in {data_dir} differs from the data study {args.study!r} was searched on")
    progress = Progress(0)
    retrain_best(study, dataset, cfg, progress)
    write_dashboard_safely(study, cfg.run_dir, progress)
    return 0


def export(args: argparse.Namespace) -> int:
    from results.export import best_config, format_config

    study = _open_existing_study(args.study, args.storage, args.out)
    try:
        text = format_config(best_config(study, args.out / args.study), args.format)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.output:
        from .files import write_text

        write_text(args.output, text)
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def studies(args: argparse.Namespace) -> int:
    from results.export import studies_table

    urls = [args.storage] if args.storage else [
        f"sqlite:///{db.resolve()}" for db in sorted(Path(args.out).glob("*/study.db"))]
    if not urls:
        print(f"no studies under {args.out}/ (pass --storage URL for a database elsewhere)")
        return 0
    for url in urls:
        try:
            print(studies_table(url))
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"cannot read storage {url}: {str(exc).splitlines()[0]}") from None
    return 0


def dashboard(args: argparse.Namespace) -> int:
    from results.dashboard import write_dashboard

    study = _open_existing_study(args.study, args.storage, args.out)
    path = write_dashboard(study, args.out / args.study, args.output)
    print(f"wrote {path}")
    return 0


def spaces(args: argparse.Namespace) -> int:
    import spaces as space_registry

    for name in space_registry.SPACES:
        print(space_registry.describe_space(name))
        print()
    return 0


def synth(args: argparse.Namespace) -> int:
    from .synth import write_synthetic_dataset

    summary = write_synthetic_dataset(args.out, n_train=args.n_train, n_valid=args.n_valid,
                                      n_test=args.n_test, seed=args.seed, image_size=args.size)
    print(f"wrote synthetic traffic signs to {args.out}: {summary}")
    return 0


def convert_gtsrb(args: argparse.Namespace) -> int:
    from .gtsrb import convert_gtsrb as convert

    def show(done: int, total: int) -> None:
        if total and (done == total or done % 500 == 0):
            print(f"\rreading images {done}/{total}", end="\n" if done == total else "", flush=True)

    summary = convert(args.src, args.out, size=args.size, valid_fraction=args.valid_fraction,
                      seed=args.seed, crop=args.crop, progress=show)
    counts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
    print(f"wrote {args.out}: {counts} images; {summary['tracks']['valid']} of "
          f"{summary['tracks']['train'] + summary['tracks']['valid']} tracks held out for valid "
          f"({summary['seconds']:.1f}s)")
    return 0


def check(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .overview import data_overview
    from .sanity import sanity_report

    dataset = load_dataset(args.dir, n_classes=args.n_classes)
    test = dataset.load_test()
    print(sanity_report(dataset, test).text())
    if args.html:
        from results.dashboard import write_data_report

        path = write_data_report(data_overview(dataset, test), args.html, title=f"Data: {args.dir}")
        print(f"wrote {path}")
    return 0
