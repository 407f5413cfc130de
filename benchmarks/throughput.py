"""Training throughput: the tool's trial path (``search.engine.engines.train_model``) against plain ``model.fit``.

    python benchmarks/throughput.py
    python benchmarks/throughput.py --models cnn:tutorial,lenet:tutorial --epochs 5 --repeat 3

Smoke run on synthetic data (a minute or two on 2 cores):

    python benchmarks/throughput.py --data-dir /tmp/bsynth --models lenet:tutorial --epochs 2 --repeat 1

For each model (``space:point``, a named point of the space) both paths build the same compiled
model from the same values, on the same uint8 arrays, with the point's batch size and the same
number of epochs. The tool path is ``train_model`` exactly as a trial calls it (its callbacks,
``steps_per_execution``, eval batch size 1024; early stopping cannot trigger). The plain path is what
the tutorial does: ``model.fit(x, y, batch_size, epochs, validation_data, shuffle=True)``.

Timing comes from one callback in both paths: an epoch's training phase runs from
``on_epoch_begin`` to the validation pass's ``on_test_begin``; the whole epoch to ``on_epoch_end``.
The first epoch of every fit (graph tracing, compilation) is the warm-up and is reported apart; the
medians are over the remaining epochs of all repeats. Repeats alternate which path goes first, so
drift in a shared machine's load hits both alike. The overhead ratio is tool / plain seconds per
epoch (above 1: the tool is slower).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

DEFAULT_MODELS = "cnn:tutorial,lenet:tutorial,cnn:strong"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    _bench.add_common_args(p)
    _bench.add_models_arg(p, DEFAULT_MODELS)
    p.add_argument(
        "--epochs", type=int, default=4, help="epochs per fit, the first one is warm-up (default 4, at least 2)"
    )
    p.add_argument("--repeat", type=int, default=2, help="fits per path and model (default 2)")
    p.add_argument(
        "--steps-per-execution",
        type=int,
        default=None,
        help="for the tool path (default: the search's default, SearchConfig)",
    )
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (the first epoch is warm-up)")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def _timer_class():  # the callback needs keras, which is imported late
    from search.engine.trainer import EpochHook

    class EpochTimer(EpochHook):
        """Per-epoch clock: training phase (begin -> validation starts) and whole epoch."""

        def __init__(self) -> None:
            super().__init__(lambda epoch, val: False)
            self.epochs: list[dict[str, float]] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epochs.append({"begin": time.perf_counter()})

        def on_test_begin(self, logs: dict | None = None) -> None:
            if self.epochs and "val_begin" not in self.epochs[-1]:
                self.epochs[-1]["val_begin"] = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            super().on_epoch_end(epoch, logs)
            rec = self.epochs[-1]
            rec["end"] = time.perf_counter()
            rec["val_accuracy"] = float((logs or {}).get("val_accuracy", float("nan")))

        def summary(self) -> list[dict[str, float]]:
            out = []
            for rec in self.epochs:
                val_begin = rec.get("val_begin", rec.get("end"))
                out.append(
                    {
                        "train_s": val_begin - rec["begin"],
                        "epoch_s": rec["end"] - rec["begin"],
                        "val_accuracy": rec["val_accuracy"],
                    }
                )
            return out

    return EpochTimer


def fit_once(path: str, space, values: dict, dataset, *, epochs: int, spe: int) -> tuple[list[dict], int]:
    """One fresh model trained by ``path`` ("tool" or "plain"); per-epoch timings and the params."""
    import keras

    from search.engine.engines import train_model
    from spaces import ValuesHyperParameters, training_settings

    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(0)
    model = space.build(ValuesHyperParameters(dict(values)), dataset.input_shape, dataset.n_classes)
    timer = _timer_class()()
    if path == "tool":
        train_model(
            model, dataset, dict(values), epochs=epochs, patience=epochs, hooks=[timer], steps_per_execution=spe
        )
    else:
        model.fit(
            dataset.train.features,
            dataset.train.labels,
            batch_size=training_settings(values).batch_size,
            epochs=epochs,
            validation_data=(dataset.valid.features, dataset.valid.labels),
            shuffle=True,
            callbacks=[timer],
            verbose=0,
        )
    params = int(model.count_params())
    del model
    return timer.summary(), params


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin(args.data_dir)
    from search.config import SearchConfig

    spe = args.steps_per_execution or SearchConfig(data_dir=Path(".")).steps_per_execution
    models = _bench.named_models(args.models)
    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid)
    n_train = len(dataset.train)
    print(
        f"data: {n_train} train / {len(dataset.valid)} valid images {dataset.input_shape}, "
        f"{dataset.n_classes} classes; {args.epochs} epochs x {args.repeat} repeats per path; "
        f"tool steps_per_execution={spe}",
        flush=True,
    )

    results: list[dict] = []
    out: Path | None = None
    for name, space, values in models:
        runs: dict[str, list[list[dict]]] = {"tool": [], "plain": []}
        params = 0
        for r in range(args.repeat):
            order = ("tool", "plain") if r % 2 == 0 else ("plain", "tool")
            for path in order:
                epochs, params = fit_once(path, space, values, dataset, epochs=args.epochs, spe=spe)
                runs[path].append(epochs)
                steady = [e["train_s"] for e in epochs[1:]]
                print(
                    f"  {name:<16} {path:<5} repeat {r + 1}: first epoch {epochs[0]['epoch_s']:.1f}s, "
                    f"then {_bench.median(steady):.2f}s training "
                    f"({n_train / _bench.median(steady):.0f} img/s), val_acc {epochs[-1]['val_accuracy']:.3f}",
                    flush=True,
                )
        row = {
            "model": name,
            "params": params,
            "batch_size": int(values.get("batch_size", 0)),
            "n_train": n_train,
            "runs": runs,
        }
        for path in ("tool", "plain"):
            steady = [e for run in runs[path] for e in run[1:]]
            row[path] = {
                "train_s_median": _bench.median(e["train_s"] for e in steady),
                "epoch_s_median": _bench.median(e["epoch_s"] for e in steady),
                "first_epoch_s_median": _bench.median(run[0]["epoch_s"] for run in runs[path]),
                "images_per_s": n_train / _bench.median(e["train_s"] for e in steady),
            }
        row["overhead_train"] = row["tool"]["train_s_median"] / row["plain"]["train_s_median"]
        row["overhead_epoch"] = row["tool"]["epoch_s_median"] / row["plain"]["epoch_s_median"]
        results.append(row)
        # Written after every model, so that a run cut short keeps what it measured.
        text = _summary(results, args)
        complete = len(results) == len(models)
        out = _bench.write_results(
            "throughput",
            args.results_dir,
            results=results,
            table=text,
            settings={**vars(args), "steps_per_execution": spe, "complete": complete},
            started=started,
            path=out,
        )
    print(f"\nresults: {out}\n{text}")
    return 0


def _summary(results: list[dict], args: argparse.Namespace) -> str:
    headers = [
        "model",
        "params",
        "batch",
        "tool img/s",
        "plain img/s",
        "overhead (train)",
        "tool epoch s",
        "plain epoch s",
        "overhead (epoch+val)",
        "1st epoch tool/plain s",
    ]
    rows = [
        [
            r["model"],
            f"{r['params']:,}",
            r["batch_size"],
            f"{r['tool']['images_per_s']:.0f}",
            f"{r['plain']['images_per_s']:.0f}",
            f"{r['overhead_train']:.3f}",
            r["tool"]["epoch_s_median"],
            r["plain"]["epoch_s_median"],
            f"{r['overhead_epoch']:.3f}",
            f"{r['tool']['first_epoch_s_median']:.1f} / {r['plain']['first_epoch_s_median']:.1f}",
        ]
        for r in results
    ]
    return _bench.table(
        headers,
        rows,
        title=f"Training throughput, median of epochs 2..{args.epochs} over "
        f"{args.repeat} repeat(s); overhead = tool / plain seconds",
    )


if __name__ == "__main__":
    raise SystemExit(main())
