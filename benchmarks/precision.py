"""Seconds per epoch and validation accuracy of one named point in float32 and in mixed_bfloat16.

    python benchmarks/precision.py
    python benchmarks/precision.py --model cnn:lean2 --epochs 3 --repeat 1 --seeds 1,2

Smoke run on synthetic data:

    python benchmarks/precision.py --data-dir /tmp/bsynth --model lenet:tutorial --epochs 1 --repeat 1

This is the measurement behind ``--precision auto`` (search/engine/precision.py). Each run builds the
model as a trial does: the policy is set, ``fresh_session()`` clears Keras (and keeps the policy), the
named point is built with the run's seed (``--seeds``: weights and batch order) and trained by
``search.engine.engines.train_model`` for ``--epochs`` epochs (early stopping cannot trigger). The
precisions alternate, and each (seed, repeat) pair reverses the order of the one before (float32, bf16,
bf16, float32...), so drift in a shared machine's load hits both alike. One seed's accuracies say
little about a difference of a few images; several seeds show the spread.
Seconds per epoch are the whole epoch, validation included, over every epoch (the first one traces
the train step, as in a search); the last epoch's are also shown apart, and so are the process's CPU
seconds per epoch (less disturbed than wall seconds when other work shares the cores). The ratio is
float32 / mixed_bfloat16 seconds per epoch (above 1: bfloat16 is faster). Each run also records the
compute dtype of the model's first convolution or dense layer, proof that the policy was in effect.
The backend is ``KERAS_BACKEND``'s (TensorFlow by default); the CPU's bfloat16 flags are recorded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

DEFAULT_MODEL = "cnn:lean2"
PRECISIONS = ("float32", "mixed_bfloat16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    _bench.add_common_args(p)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"space:point to train (default {DEFAULT_MODEL})")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    p.add_argument("--repeat", type=int, default=2, help="runs per precision and seed (default 2)")
    p.add_argument("--seeds", default="0", help="comma-separated model seeds, each run in both precisions (default 0)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.repeat < 1:
        p.error("--epochs and --repeat must be at least 1")
    try:
        args.seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if not args.seeds:
        p.error("--seeds names no seed")
    return args


def run_order(repeat: int, seeds: list[int]) -> list[tuple[str, int]]:
    """(precision, seed) runs: float32, bf16, then bf16, float32, ...: each precision goes first equally often."""
    order: list[tuple[str, int]] = []
    for i, seed in enumerate(s for s in seeds for _ in range(repeat)):
        order += [(policy, seed) for policy in (PRECISIONS if i % 2 == 0 else reversed(PRECISIONS))]
    return order


def first_compute_dtype(model) -> str:
    """The compute dtype of the model's first convolution or dense layer (the layers doing the work)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            return layer.compute_dtype
        if isinstance(layer, keras.Model):
            inner = first_compute_dtype(layer)
            if inner != "none":
                return inner
    return "none"


def run_once(policy: str, seed: int, space, values: dict, dataset, *, epochs: int, spe: int) -> dict:
    """One fresh model in ``policy`` trained on the trial path; per-epoch seconds and accuracies."""
    import keras

    from benchmarks.throughput import _timer_class
    from search.engine.engines import train_model
    from search.engine.precision import apply_precision
    from search.engine.session import fresh_session
    from spaces import ValuesHyperParameters

    apply_precision(policy)
    fresh_session()
    keras.utils.set_random_seed(seed)
    model = space.build(ValuesHyperParameters(dict(values)), dataset.input_shape, dataset.n_classes)
    timer = _timer_class()()
    cpu = time.process_time()
    result = train_model(
        model, dataset, dict(values), epochs=epochs, patience=epochs, hooks=[timer], steps_per_execution=spe
    )
    cpu = time.process_time() - cpu
    epochs_done = timer.summary()
    return {
        "policy": policy,
        "seed": seed,
        "compute_dtype": first_compute_dtype(model),
        "epochs": epochs_done,
        "seconds_per_epoch": sum(e["epoch_s"] for e in epochs_done) / max(len(epochs_done), 1),
        "cpu_seconds_per_epoch": cpu / max(len(epochs_done), 1),
        "last_epoch_s": epochs_done[-1]["epoch_s"] if epochs_done else float("nan"),
        "val_accuracy": epochs_done[-1]["val_accuracy"] if epochs_done else float("nan"),
        "best_val_accuracy": result.best_val_accuracy,
        "stop_reason": result.stop_reason,
    }


def summarise(runs: list[dict]) -> dict:
    """Medians of the times per precision, the mean validation accuracy over the runs, and the float32 /
    bfloat16 speed ratios."""
    out: dict = {}
    for policy in PRECISIONS:
        mine = [r for r in runs if r["policy"] == policy]
        out[policy] = {
            key: _bench.median(r[key] for r in mine)
            for key in ("seconds_per_epoch", "last_epoch_s", "cpu_seconds_per_epoch")
        }
        out[policy]["val_accuracy"] = sum(r["val_accuracy"] for r in mine) / len(mine)
    out["ratio"] = out["float32"]["seconds_per_epoch"] / out["mixed_bfloat16"]["seconds_per_epoch"]
    out["ratio_last_epoch"] = out["float32"]["last_epoch_s"] / out["mixed_bfloat16"]["last_epoch_s"]
    out["ratio_cpu"] = out["float32"]["cpu_seconds_per_epoch"] / out["mixed_bfloat16"]["cpu_seconds_per_epoch"]
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin(args.data_dir)
    from search.config import SearchConfig
    from search.engine.precision import CPU_BF16_FLAGS, cpu_flags

    spe = SearchConfig(data_dir=Path(".")).steps_per_execution
    [(name, space, values)] = _bench.named_models(args.model)
    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid)
    flags = sorted(set(CPU_BF16_FLAGS) & cpu_flags())
    print(
        f"data: {len(dataset.train)} train / {len(dataset.valid)} valid images; {name}, {args.epochs} epochs x "
        f"{args.repeat} repeat(s) per precision and seed, seeds {args.seeds}; backend {_bench.keras_backend()}; "
        f"CPU bfloat16 flags: {', '.join(flags) or 'none'}",
        flush=True,
    )
    runs: list[dict] = []
    for policy, seed in run_order(args.repeat, args.seeds):
        run = run_once(policy, seed, space, values, dataset, epochs=args.epochs, spe=spe)
        runs.append(run)
        print(
            f"  {policy:<15} seed {seed} ({run['compute_dtype']}): {run['seconds_per_epoch']:.1f} s/epoch "
            f"(last {run['last_epoch_s']:.1f} s, CPU {run['cpu_seconds_per_epoch']:.1f} s), "
            f"val_acc {run['val_accuracy']:.4f}",
            flush=True,
        )
    summary = summarise(runs)
    text = _bench.table(
        ["precision", "s/epoch (median)", "last epoch s", "CPU s/epoch", "val_acc after last epoch (mean)"],
        [
            [
                p,
                summary[p]["seconds_per_epoch"],
                summary[p]["last_epoch_s"],
                summary[p]["cpu_seconds_per_epoch"],
                f"{summary[p]['val_accuracy']:.4f}",
            ]
            for p in PRECISIONS
        ],
        title=f"{name}, {args.epochs} epochs, {len(runs) // 2} run(s) each; float32 / mixed_bfloat16 seconds per "
        f"epoch: {summary['ratio']:.2f} (last epoch {summary['ratio_last_epoch']:.2f}, CPU seconds "
        f"{summary['ratio_cpu']:.2f})",
    )
    out = _bench.write_results(
        "precision",
        args.results_dir,
        started=started,
        table=text,
        settings={**vars(args), "steps_per_execution": spe, "cpu_bf16_flags": flags},
        results={"runs": runs, "summary": summary},
    )
    print(f"\nresults: {out}\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
