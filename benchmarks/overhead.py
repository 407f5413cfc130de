"""Per-trial overhead of a real search: trial start to first training batch, and the gap between trials.

    python benchmarks/overhead.py                      # 10 one-epoch lenet trials on the real data
    python benchmarks/overhead.py --trials 20 --pruner threshold --epochs 3

Smoke run on synthetic data (about a minute on 2 cores):

    python benchmarks/overhead.py --data-dir /tmp/bsynth --trials 4 --max-train 500 --max-valid 200

It runs ``search.engine.loop.run_search`` (the code behind ``run_search.py search``: SQLite storage, TPE,
the named points first, a dashboard every ``--dashboard-every`` trials) with short trials: the lenet
space and one epoch (or ``--pruner threshold``, which prunes every trial after its first epoch). The
data is the real size by default, since Keras' preparation of the arrays is part of the start-up
cost; ``--max-train`` makes trials shorter. A probe callback inside each trial's ``fit`` records

* start -> first batch: ``Objective.__call__`` entered -> first ``on_train_batch_begin``. It splits
  into *setup* (clear_session, gc, sampling the parameters, building and compiling the model, up to
  ``on_train_begin``) and *fit prep* (Keras wrapping the arrays, up to the first batch).
* first batch: its duration, i.e. tracing and compiling the train step (with the search's
  ``steps_per_execution`` of 4, one "batch" callback covers 4 steps).
* gap: the objective's return -> the next trial's ``Objective.__call__``. It splits into *tell*
  (Optuna stores the result; the runner counts states and prints the line) and *loop+ask* (dashboard
  every N trials, the runner's checks, ``study.optimize`` creating the next trial).

The first trial (TF start-up, first compilation) is reported apart from the median of later ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    _bench.add_common_args(p)
    p.add_argument("--trials", type=int, default=10, help="trials to run (default 10)")
    _bench.add_space_arg(p, "lenet")
    p.add_argument("--epochs", type=int, default=1, help="epochs per trial (default 1)")
    p.add_argument(
        "--pruner",
        default="none",
        choices=("none", "threshold", "hyperband"),
        help="none (default); threshold prunes every trial after its first epoch; hyperband is the search's default",
    )
    p.add_argument(
        "--dashboard-every", type=int, default=5, help="as run_search.py (default 5, the tool's default; 0: never)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    return p.parse_args(argv)


def _pruner(name: str):
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "threshold":
        return optuna.pruners.ThresholdPruner(lower=2.0)  # accuracy is never >= 2: prune at epoch 1
    return None  # the config's pruner (hyperband)


def _summary(values: list[float]) -> dict[str, float]:
    later = values[1:]
    return {
        "first": values[0] if values else float("nan"),
        "later_median": _bench.median(later),
        "later_min": min(later) if later else float("nan"),
        "later_max": max(later) if later else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin(args.data_dir)
    from benchmarks._probes import TrialRecorder, add_timing, instrumented_events
    from search.config import SearchConfig
    from search.engine.loop import run_search

    t = time.time()
    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid, seed=args.seed)
    load_s = time.time() - t
    print(f"data: {len(dataset.train)} train / {len(dataset.valid)} valid images, loaded in {load_s:.1f}s", flush=True)
    records: list[dict] = []
    tmp = tempfile.TemporaryDirectory(prefix="bench-overhead-") if args.out is None else None
    out = Path(tmp.name) if tmp else args.out
    cfg = SearchConfig(
        data_dir=args.data_dir,
        space=args.space,
        trials=args.trials,
        epochs=args.epochs,
        pruner="none" if args.pruner == "none" else "hyperband",
        out=out,
        study=f"overhead-{args.space}",
        seed=args.seed,
        retrain=False,
        dashboard_every=args.dashboard_every,
        command=_bench.command(),
    )
    progress = TrialRecorder()
    events = instrumented_events(cfg, quiet=args.quiet, recorder=progress)
    add_timing(events, records)
    search_call = time.time()
    outcome = run_search(cfg, dataset=dataset, pruner=_pruner(args.pruner), events=events)
    search_s = time.time() - search_call

    lines = {p["number"]: p for p in progress.trials}
    rows = []
    for i, rec in enumerate(records):
        nxt = records[i + 1] if i + 1 < len(records) else None
        line = lines.get(rec["number"], {})
        row = {
            "number": rec["number"],
            "state": line.get("state"),
            "point": line.get("point"),
            "params": line.get("params"),
            "start_to_first_batch": rec.get("first_batch_begin", float("nan")) - rec["enter"],
            "setup": rec.get("train_begin", float("nan")) - rec["enter"],
            "fit_prep": rec.get("first_batch_begin", float("nan")) - rec.get("train_begin", float("nan")),
            "first_batch": rec.get("first_batch_end", float("nan")) - rec.get("first_batch_begin", float("nan")),
            "train_seconds": line.get("seconds"),
            "objective_seconds": rec["exit"] - rec["enter"],
            "gap_to_next": (nxt["enter"] - rec["exit"]) if nxt else None,
            "tell": (line["wall"] - rec["exit"]) if line and nxt else None,
            "loop_ask": (nxt["enter"] - line["wall"]) if line and nxt else None,
        }
        rows.append(row)
    startup = records[0]["enter"] - search_call if records else float("nan")
    gaps = [r["gap_to_next"] for r in rows if r["gap_to_next"] is not None]
    summary = {
        key: _summary([r[key] for r in rows])
        for key in ("start_to_first_batch", "setup", "fit_prep", "first_batch", "objective_seconds")
    }
    summary["gap_to_next"] = {
        "first": gaps[0] if gaps else float("nan"),
        "later_median": _bench.median(gaps[1:]),
        "later_min": min(gaps[1:]) if gaps[1:] else float("nan"),
        "later_max": max(gaps[1:]) if gaps[1:] else float("nan"),
    }
    dash = {
        p["number"]
        for p in progress.trials
        if args.dashboard_every and p["state"] in ("COMPLETE", "PRUNED") and p["finished"] % args.dashboard_every == 0
    }  # run_search writes the dashboard after these

    per_trial = _bench.table(
        [
            "trial",
            "state",
            "params",
            "start->1st batch s",
            "setup s",
            "fit prep s",
            "1st batch s",
            "train s",
            "gap to next s",
            "tell s",
            "loop+ask s",
        ],
        [
            [
                r["number"],
                (r["state"] or "-").lower() + (f" [{r['point']}]" if r["point"] else ""),
                f"{r['params']:,}" if r["params"] else "-",
                r["start_to_first_batch"],
                r["setup"],
                r["fit_prep"],
                r["first_batch"],
                r["train_seconds"],
                "-"
                if r["gap_to_next"] is None
                else f"{r['gap_to_next']:.2f}" + (" (dashboard)" if r["number"] in dash else ""),
                r["tell"],
                r["loop_ask"],
            ]
            for r in rows
        ],
        title="Per trial (seconds)",
    )
    first_vs_later = _bench.table(
        ["measure", "first trial", "later: median", "later: min", "later: max"],
        [[k, s["first"], s["later_median"], s["later_min"], s["later_max"]] for k, s in summary.items()],
        title=f"First trial vs later trials; search start -> first trial {startup:.2f}s, data load {load_s:.2f}s, "
        f"{len(rows)} trials in {search_s:.1f}s",
    )
    text = per_trial + "\n\n" + first_vs_later
    results = {
        "load_seconds": load_s,
        "search_seconds": search_s,
        "startup_to_first_trial": startup,
        "trials": rows,
        "summary": summary,
        "stop_reason": outcome.stop_reason,
        "n_train": len(dataset.train),
        "n_valid": len(dataset.valid),
        "raw": records,
    }
    path = _bench.write_results(
        "overhead", args.results_dir, settings=vars(args), results=results, table=text, started=started
    )
    if tmp:
        tmp.cleanup()
    print(f"\nresults: {path}\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
