"""Trials per hour of population training (search/engine/population.py) under JAX, against one trial
at a time with ``model.fit`` and with the compiled engine.

    KERAS_BACKEND=jax python benchmarks/population.py
    KERAS_BACKEND=jax python benchmarks/population.py --models lenet:tutorial --sizes 1,2,4,8 --epochs 3

Smoke run on synthetic data:

    KERAS_BACKEND=jax python benchmarks/population.py --data-dir /tmp/bsynth --sizes 1,2 --epochs 1

For each model (a named point of a space, ``space:point``) and population size N, N members of that
architecture are built (seeds differ, learning rates spread around the point's by factors of 2) and
trained together for ``--epochs`` epochs (early stopping cannot trigger); the wall time includes
tracing and XLA compilation, which a search pays once per architecture and population size. Trials
per hour = N x 3600 / wall seconds. The baselines train one member alone, by ``fit`` (the CPU's
default engine) and by the compiled engine, with the same epochs. Each size is measured once: the
population's cost is dominated by work that does not vary between runs. On a GPU machine the same
command measures the GPU (benchmarks/gpu.sh runs it).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

DEFAULT_MODELS = "lenet:tutorial"
DEFAULT_SIZES = "1,2,4,8"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    _bench.add_common_args(p)
    _bench.add_models_arg(p, DEFAULT_MODELS)
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"population sizes (default {DEFAULT_SIZES})")
    p.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes: expected whole numbers, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1 or args.epochs < 1:
        p.error("--sizes must be positive whole numbers and --epochs at least 1")
    return args


def member_values(values: dict, k: int) -> dict:
    """The point's values with the k-th member's learning rate (x1, x2, x0.5, x4, x0.25, ...)."""
    factor = 2.0 ** ((k + 1) // 2 * (1 if k % 2 else -1))
    return {**values, "learning_rate": float(values.get("learning_rate", 1e-3)) * factor}


def run(kind: str, space, values: dict, dataset, *, size: int, epochs: int) -> dict:
    """Train ``size`` members (``kind`` population) or one trial (``fit`` / ``compiled``); wall seconds."""
    import keras

    from search.engine.compiled import order_seed
    from search.engine.engines import train_model
    from search.engine.population import Member, train_population
    from spaces import ValuesHyperParameters

    keras.backend.clear_session()
    gc.collect()
    members = []
    for k in range(size):
        keras.utils.set_random_seed(k)
        member = member_values(values, k)
        model = space.build(ValuesHyperParameters(dict(member)), dataset.input_shape, dataset.n_classes)
        members.append(Member(model, member, order_seed()))
    start = time.monotonic()
    if kind == "population":
        results = train_population(members, dataset, epochs=epochs, patience=epochs)
    else:
        results = [
            train_model(members[0].model, dataset, members[0].values, epochs=epochs, patience=epochs, engine=kind)
        ]
    wall = time.monotonic() - start
    return {
        "kind": kind,
        "size": size,
        "wall_s": wall,
        "trials_per_hour": size * 3600.0 / wall,
        "compile_s": results[0].compile_seconds,
        "val_accuracy": _bench.median(r.val_curve[-1] for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin_jax(args.data_dir, "population training")
    import jax

    models = _bench.named_models(args.models)
    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid)
    device = str(jax.devices()[0])
    print(
        f"data: {len(dataset.train)} train / {len(dataset.valid)} valid images; {args.epochs} epochs per trial; "
        f"device {device}",
        flush=True,
    )
    rows: list[dict] = []
    out: Path | None = None
    for name, space, values in models:
        plan = [("fit", 1), ("compiled", 1)] + [("population", n) for n in args.sizes]
        for kind, size in plan:
            row = {"model": name, **run(kind, space, values, dataset, size=size, epochs=args.epochs)}
            rows.append(row)
            print(
                f"  {name:<16} {kind:<10} N={size:<2} {row['wall_s']:7.1f}s (compile {row['compile_s']:.1f}s) "
                f"{row['trials_per_hour']:7.0f} trials/h, val_acc {row['val_accuracy']:.3f}",
                flush=True,
            )
            text = _summary(rows, args)
            out = _bench.write_results(
                "population",
                args.results_dir,
                results=rows,
                table=text,
                settings={**vars(args), "device": device},
                started=started,
                path=out,
            )
    print(f"\nresults: {out}\n{text}")
    return 0


def _summary(rows: list[dict], args: argparse.Namespace) -> str:
    fit = {r["model"]: r["trials_per_hour"] for r in rows if r["kind"] == "fit"}
    headers = ["model", "engine", "N", "wall s", "compile s", "trials/h", "x fit", "median val acc"]
    table = [
        [
            r["model"],
            r["kind"],
            r["size"],
            r["wall_s"],
            r["compile_s"],
            f"{r['trials_per_hour']:.0f}",
            f"{r['trials_per_hour'] / fit[r['model']]:.2f}" if r["model"] in fit else "",
            f"{r['val_accuracy']:.3f}",
        ]
        for r in rows
    ]
    return _bench.table(
        headers, table, title=f"Trials per hour of {args.epochs}-epoch trials under JAX (wall time with compilation)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
