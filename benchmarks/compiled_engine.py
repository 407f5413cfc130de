"""Seconds per epoch of the two training engines under JAX: ``model.fit`` against the compiled engine.

    KERAS_BACKEND=jax python benchmarks/compiled_engine.py
    KERAS_BACKEND=jax python benchmarks/compiled_engine.py --models cnn:strong --epochs 4 --repeat 2

Smoke run on synthetic data:

    KERAS_BACKEND=jax python benchmarks/compiled_engine.py --data-dir /tmp/bsynth --models lenet:tutorial --epochs 2

Both engines run the trial path, ``search.engine.engines.train_model`` with ``engine="fit"`` or
``engine="compiled"`` (search/engine/compiled.py: data on the device, compiled chunks of steps),
on the same model built from a named point of a space (``space:point``), the same seed, data and
epochs; early stopping cannot trigger. One callback times each epoch in both: the training phase
(``on_epoch_begin`` to the validation pass's ``on_test_begin``) and the whole epoch. The first epoch
(tracing, XLA compilation, the data copy to the device) is the warm-up and is reported apart; the
medians are over the later epochs of all repeats, alternating which engine goes first. Speed-up is
fit / compiled seconds (above 1: compiled is faster). The compiled engine also reports its compile
seconds. The backend is JAX (set here when KERAS_BACKEND is unset); on a GPU machine the same
command measures the GPU.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

DEFAULT_MODELS = "cnn:strong,lenet:tutorial"
ENGINES = ("fit", "compiled")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    _bench.add_common_args(p)
    _bench.add_models_arg(p, DEFAULT_MODELS)
    p.add_argument(
        "--epochs", type=int, default=3, help="epochs per run, the first one is warm-up (default 3, at least 2)"
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per engine and model (default 1)")
    p.add_argument(
        "--chunk-steps",
        type=int,
        default=None,
        help="steps per compiled call (default: the engine's, 16 on a GPU/TPU, 4 on a CPU)",
    )
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (the first epoch is warm-up)")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def run_once(engine: str, space, values: dict, dataset, *, epochs: int, spe: int, chunk_steps: int | None) -> dict:
    """One fresh model trained by ``engine``; per-epoch timings, the result and the parameter count."""
    import keras

    from benchmarks.throughput import _timer_class
    from search.engine.compiled import train_model_compiled
    from search.engine.engines import train_model
    from spaces import ValuesHyperParameters

    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(0)
    model = space.build(ValuesHyperParameters(dict(values)), dataset.input_shape, dataset.n_classes)
    timer = _timer_class()()
    if engine == "compiled":
        result = train_model_compiled(
            model, dataset, dict(values), epochs=epochs, patience=epochs, hooks=[timer], chunk_steps=chunk_steps
        )
    else:
        result = train_model(
            model,
            dataset,
            dict(values),
            epochs=epochs,
            patience=epochs,
            hooks=[timer],
            steps_per_execution=spe,
            engine="fit",
        )
    out = {
        "epochs": timer.summary(),
        "params": int(model.count_params()),
        "stop_reason": result.stop_reason,
        "val_curve": result.val_curve,
        "seconds": result.seconds,
        "compile_seconds": result.compile_seconds,
    }
    del model
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin_jax(args.data_dir, "the compiled engine")
    import jax

    from search.config import SearchConfig

    spe = SearchConfig(data_dir=Path(".")).steps_per_execution
    models = _bench.named_models(args.models)
    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid)
    n_train = len(dataset.train)
    device = str(jax.devices()[0])
    print(
        f"data: {n_train} train / {len(dataset.valid)} valid images {dataset.input_shape}; {args.epochs} epochs "
        f"x {args.repeat} repeats per engine; device {device}; fit steps_per_execution={spe}",
        flush=True,
    )

    results: list[dict] = []
    out: Path | None = None
    for name, space, values in models:
        runs: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
        params = 0
        for r in range(args.repeat):
            for engine in ENGINES if r % 2 == 0 else ENGINES[::-1]:
                run = run_once(
                    engine, space, values, dataset, epochs=args.epochs, spe=spe, chunk_steps=args.chunk_steps
                )
                runs[engine].append(run)
                params = run["params"]
                steady = [e["train_s"] for e in run["epochs"][1:]]
                print(
                    f"  {name:<16} {engine:<8} repeat {r + 1}: first epoch {run['epochs'][0]['epoch_s']:.1f}s "
                    f"(compile {run['compile_seconds']:.1f}s), then {_bench.median(steady):.2f}s training "
                    f"({n_train / _bench.median(steady):.0f} img/s), val_acc {run['val_curve'][-1]:.3f}",
                    flush=True,
                )
        row = {
            "model": name,
            "params": params,
            "batch_size": int(values.get("batch_size", 0)),
            "n_train": n_train,
            "runs": runs,
        }
        for engine in ENGINES:
            steady = [e for run in runs[engine] for e in run["epochs"][1:]]
            row[engine] = {
                "train_s_median": _bench.median(e["train_s"] for e in steady),
                "epoch_s_median": _bench.median(e["epoch_s"] for e in steady),
                "first_epoch_s_median": _bench.median(run["epochs"][0]["epoch_s"] for run in runs[engine]),
                "compile_s_median": _bench.median(run["compile_seconds"] for run in runs[engine]),
                "final_val_accuracy": _bench.median(run["val_curve"][-1] for run in runs[engine]),
            }
        row["speedup_train"] = row["fit"]["train_s_median"] / row["compiled"]["train_s_median"]
        row["speedup_epoch"] = row["fit"]["epoch_s_median"] / row["compiled"]["epoch_s_median"]
        results.append(row)
        # Written after every model, so that a run cut short keeps what it measured.
        text = _summary(results, args)
        out = _bench.write_results(
            "compiled_engine",
            args.results_dir,
            results=results,
            table=text,
            settings={
                **vars(args),
                "steps_per_execution": spe,
                "device": device,
                "complete": len(results) == len(models),
            },
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
        "fit train s",
        "compiled train s",
        "speed-up (train)",
        "fit epoch s",
        "compiled epoch s",
        "speed-up (epoch+val)",
        "1st epoch fit/compiled s",
        "compile s",
        "val acc fit/compiled",
    ]
    rows = [
        [
            r["model"],
            f"{r['params']:,}",
            r["batch_size"],
            r["fit"]["train_s_median"],
            r["compiled"]["train_s_median"],
            f"{r['speedup_train']:.2f}",
            r["fit"]["epoch_s_median"],
            r["compiled"]["epoch_s_median"],
            f"{r['speedup_epoch']:.2f}",
            f"{r['fit']['first_epoch_s_median']:.1f} / {r['compiled']['first_epoch_s_median']:.1f}",
            r["compiled"]["compile_s_median"],
            f"{r['fit']['final_val_accuracy']:.3f} / {r['compiled']['final_val_accuracy']:.3f}",
        ]
        for r in results
    ]
    return _bench.table(
        headers,
        rows,
        title=f"Seconds per epoch under JAX, median of epochs 2..{args.epochs} over "
        f"{args.repeat} repeat(s); speed-up = fit / compiled seconds",
    )


if __name__ == "__main__":
    raise SystemExit(main())
