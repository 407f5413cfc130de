"""Seconds per epoch of each named point against its multiply-accumulates: the cost model of the named
points' budget (``search/engine/point_budget.py``).

    python benchmarks/point_cost.py
    python benchmarks/point_cost.py --models cnn:lean2,cnn:tutorial --precision float32

Each model is built as a trial builds it (``--precision``'s policy, default ``auto`` as the search
resolves it), trained one warm-up call on a few batches (tracing), then timed for one whole epoch with
validation, as a search epoch is. The table gives each model's MACs per image, the measured seconds,
the factor ``seconds / (n_train * MMAC ** MAC_EXPONENT)`` and what ``DEFAULT_FACTOR`` predicts; the
median factor is what ``DEFAULT_FACTOR`` should be on this host.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

DEFAULT_MODELS = "all:cnn_lean2,all:cnn_lean,all:cnn_tutorial,all:lenet_tutorial,all:cnn_strong"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _bench.add_common_args(p)
    _bench.add_models_arg(p, DEFAULT_MODELS)
    p.add_argument("--precision", default="auto", help="Keras dtype policy, or auto as the search resolves it")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin(args.data_dir)
    models = _bench.named_models(args.models)
    import keras

    from search.engine.engines import train_model
    from search.engine.point_budget import DEFAULT_FACTOR, MAC_EXPONENT, epoch_seconds, model_macs
    from search.engine.precision import apply_precision, resolve_precision
    from search.engine.session import fresh_session
    from spaces.hp import ValuesHyperParameters

    policy = resolve_precision(args.precision)
    apply_precision(policy)
    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid)
    n = len(dataset.train)
    warm = _bench.load_data(args.data_dir, max_train=512, max_valid=256)
    rows, results = [], []
    for name, space, values in models:
        fresh_session()
        keras.utils.set_random_seed(0)
        model = space.build(ValuesHyperParameters(dict(values)), dataset.input_shape, dataset.n_classes)
        train_model(model, warm, values, epochs=1, patience=1)  # tracing, as a trial's first call pays it
        t0 = time.monotonic()
        train_model(model, dataset, values, epochs=1, patience=1)
        seconds = time.monotonic() - t0
        macs = model_macs(model)
        factor = seconds / epoch_seconds(macs, n, 1.0)
        results.append({"model": name, "macs": macs, "seconds": round(seconds, 2), "factor": factor})
        rows.append(
            [
                name,
                f"{macs / 1e6:.1f}",
                f"{seconds:.1f}",
                f"{epoch_seconds(macs, n, DEFAULT_FACTOR):.1f}",
                f"{factor * 1e6:.0f}",
            ]
        )
        print(rows[-1], flush=True)
    median = statistics.median(r["factor"] for r in results)
    table = _bench.table(
        ["model", "MMAC/image", "epoch s", "predicted s", "factor (1e-6)"],
        rows,
        title=f"one epoch of {n} images + validation, {policy}; MMAC ** {MAC_EXPONENT}; "
        f"median factor {median * 1e6:.0f}e-6 (DEFAULT_FACTOR {DEFAULT_FACTOR * 1e6:.0f}e-6)",
    )
    print(table)
    path = _bench.write_results(
        "point_cost",
        args.results_dir,
        settings=vars(args) | {"precision": policy},
        results=results,
        table=table,
        started=started,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
