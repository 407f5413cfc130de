"""Space health: how many random points of a space learn nothing, and which settings they share.

    python benchmarks/space_health.py                       # 40 random points of "all", 2 epochs each

Smoke run on synthetic data (about a minute on 2 cores):

    python benchmarks/space_health.py --data-dir /tmp/bsynth --points 4 --epochs 1 --max-train 300 --max-valid 100

A search spends its first trials on random points (TPE starts random), and every tuner driving the
same space module does too; a point that is still at chance level after a few epochs is wasted
budget. This script draws ``--points`` configurations with Optuna's RandomSampler (the search's own
adapter, so conditional parameters behave as in a search), trains each for ``--epochs`` through the
search's trainer, and calls a point *dead* when its best validation accuracy is at most
``STALL_FACTOR`` times the majority-class rate (the search's no-learning rule). It prints the dead
share overall and broken down by optimiser, learning-rate decade and batch size, and writes JSON.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

SEARCH_EPOCHS = 10  # run_search.py's default --epochs: the guard never stops a trial's last epoch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    _bench.add_common_args(p)
    p.set_defaults(max_train=4000, max_valid=1000)
    _bench.add_space_arg(p, "all")
    p.add_argument("--points", type=int, default=40, help="random configurations (default 40)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per configuration (default 2)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def lr_decade(lr: float) -> str:
    low = 10 ** math.floor(math.log10(lr))
    return f"{low:.0e}..{low * 10:.0e}"


def guard_epoch(curve: list[float], chance: float) -> int:
    """First epoch at which the search (``SEARCH_EPOCHS`` per trial) would stop this curve; 0: never."""
    from search.engine.objective import stalled

    return next((e for e, v in enumerate(curve, 1) if stalled(e, v, chance, SEARCH_EPOCHS)), 0)


def _scoped(values: dict[str, Any], name: str) -> Any:
    """``name`` whether top-level or inside a family's scope (``cnn/batch_norm`` in ``all``)."""
    hits = [v for k, v in values.items() if k == name or k.endswith("/" + name)]
    return hits[0] if hits else None


def breakdown(rows: list[dict[str, Any]], key: str) -> list[list[Any]]:
    """Per value of ``key``: points, dead points, dead share, median best accuracy."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row[key])].append(row)
    out = []
    for value in sorted(groups):
        group = groups[value]
        dead = sum(r["dead"] for r in group)
        out.append(
            [
                f"{key}={value}",
                len(group),
                dead,
                dead / len(group),
                _bench.median(r["best_val_accuracy"] for r in group),
            ]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin(args.data_dir)
    import keras
    import optuna

    import spaces
    from search.engine.engines import train_model
    from search.engine.hp_adapter import OptunaHyperParameters
    from search.engine.objective import STALL_FACTOR, majority_share
    from search.engine.session import fresh_session

    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid, seed=args.seed)
    chance = majority_share(dataset.valid.labels)
    threshold = STALL_FACTOR * chance
    space = spaces.get_space(args.space)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=args.seed))
    print(
        f"data: {len(dataset.train)} train / {len(dataset.valid)} valid images; chance "
        f"{chance:.4f}, dead at <= {threshold:.4f}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    for i in range(args.points):
        trial = study.ask()
        fresh_session()
        keras.utils.set_random_seed(args.seed * 1000 + i)
        hp = OptunaHyperParameters(trial)
        model = space.build(hp, dataset.input_shape, dataset.n_classes)
        result = train_model(model, dataset, hp.values, epochs=args.epochs, patience=args.epochs)
        best = result.best_val_accuracy if math.isfinite(result.best_val_accuracy) else 0.0
        values = hp.values
        row = {
            "point": i,
            "family": space.family_of(values),
            "optimizer": values["optimizer"],
            "learning_rate": values["learning_rate"],
            "lr_decade": lr_decade(values["learning_rate"]),
            "batch_size": values["batch_size"],
            "batch_norm": _scoped(values, "batch_norm"),
            "weight_decay": values.get("weight_decay"),
            "val_curve": result.val_curve,
            "best_val_accuracy": best,
            "dead": best <= threshold,
            # The epoch at which the search's no-learning guard would have stopped this point.
            "guard_epoch": guard_epoch(result.val_curve, chance),
            "params": model.count_params(),
            "seconds": round(result.seconds, 2),
            "values": values,
        }
        rows.append(row)
        study.tell(trial, best)
        print(
            f"point {i:3d} {'DEAD' if row['dead'] else 'ok  '} best {best:.4f} | {row['family']} "
            f"{row['optimizer']} lr {row['learning_rate']:.2g} bs {row['batch_size']} "
            f"bn {row['batch_norm']} | {row['seconds']:.0f}s",
            flush=True,
        )
    dead = sum(r["dead"] for r in rows)
    body = [["all", len(rows), dead, dead / max(len(rows), 1), _bench.median(r["best_val_accuracy"] for r in rows)]]
    # A point the guard stops at epoch g "learned later" when an epoch after g beats the threshold:
    # a trial the search would have stopped wrongly (visible only with --epochs > g).
    guarded = [r for r in rows if r["guard_epoch"]]
    recovered = [r for r in guarded if max(r["val_curve"][r["guard_epoch"] :], default=0.0) > threshold]
    print(
        f"no-learning guard: would stop {len(guarded)} of {len(rows)} points (at epochs "
        f"{sorted(r['guard_epoch'] for r in guarded)}); {len(recovered)} of them learned later within "
        f"{args.epochs} epochs (best {max((r['best_val_accuracy'] for r in recovered), default=0.0):.4f})"
    )
    for key in ("optimizer", "lr_decade", "batch_size", "batch_norm", "family"):
        body += breakdown(rows, key)
    text = _bench.table(
        ["group", "points", "dead", "dead share", "median best acc"],
        body,
        title=f"space {args.space}: random points after {args.epochs} epochs",
    )
    print(text)
    by_opt_lr = breakdown([dict(r, opt_lr=f"{r['optimizer']} {r['lr_decade']}") for r in rows], "opt_lr")
    text2 = _bench.table(
        ["group", "points", "dead", "dead share", "median best acc"],
        by_opt_lr,
        title="by optimiser and learning-rate decade",
    )
    print(text2)
    results = {
        "chance": chance,
        "guard_stops": len(guarded),
        "guard_stops_that_learned_later": len(recovered),
        "points": rows,
    }
    path = _bench.write_results(
        "space_health",
        args.results_dir,
        settings=vars(args),
        results=results,
        table=text + "\n\n" + text2,
        started=started,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
