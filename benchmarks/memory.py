"""Memory over a long search: process RSS after trial 5 and after trial 40 (target: under 10% growth).

    python benchmarks/memory.py                        # 40 one-epoch trials, space "all", 1,000 images

Smoke run on synthetic data (about a minute on 2 cores):

    python benchmarks/memory.py --data-dir /tmp/bsynth --trials 8 --check-at 2,8 --max-train 300 --max-valid 100

It runs ``search.engine.loop.run_search`` in this process, as ``run_search.py search`` does (SQLite storage,
TPE, hyperband, the named points first, the dashboard every 5 trials), with small data and one epoch
per trial so that 40 trials take a few minutes, and reads VmRSS from /proc/self/status after every
trial (when the runner reports it, before the next trial's ``clear_session``). Growth is
``RSS(after trial B) / RSS(after trial A) - 1`` for ``--check-at A,B``; trial 5 rather than trial 1 is
the baseline because the first trials load TensorFlow's kernels and the sampler's code. The slope
(least squares, MiB per trial, over trials A..B) tells a steady leak from a one-off step.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

TARGET_GROWTH = 0.10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    _bench.add_common_args(p)
    p.set_defaults(max_train=1000, max_valid=500)
    p.add_argument("--trials", type=int, default=40, help="trials to run (default 40)")
    p.add_argument("--check-at", default="5,40", help="the two trials compared, A,B (default 5,40)")
    _bench.add_space_arg(p, "all")
    p.add_argument("--epochs", type=int, default=1, help="epochs per trial (default 1)")
    p.add_argument("--dashboard-every", type=int, default=5, help="as run_search.py (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    args = p.parse_args(argv)
    try:
        a, b = (int(x) for x in args.check_at.split(","))
    except ValueError:
        p.error(f"--check-at must be two trial counts A,B, got {args.check_at!r}")
    if not 1 <= a < b <= args.trials:
        p.error(f"--check-at needs 1 <= A < B <= --trials, got {a},{b} with --trials {args.trials}")
    args.check = (a, b)
    return args


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin(args.data_dir)
    from benchmarks._probes import TrialRecorder, instrumented_events
    from search.config import SearchConfig
    from search.engine.loop import run_search

    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid, seed=args.seed)
    rss_after_load = _bench.rss_mb()
    print(
        f"data: {len(dataset.train)} train / {len(dataset.valid)} valid images; RSS {rss_after_load:.0f} MiB "
        "before the search",
        flush=True,
    )
    samples: list[dict] = []

    def sample(trial, rec: dict) -> None:
        samples.append(
            {
                "trial_count": len(samples) + 1,
                "number": trial.number,
                "state": rec["state"],
                "params": rec["params"],
                "elapsed": round(rec["elapsed"], 2),
                "rss_mb": round(_bench.rss_mb(), 1),
                "peak_rss_mb": round(_bench.peak_rss_mb(), 1),
                "gc_objects": len(gc.get_objects()),
            }
        )

    tmp = tempfile.TemporaryDirectory(prefix="bench-memory-") if args.out is None else None
    out = Path(tmp.name) if tmp else args.out
    cfg = SearchConfig(
        data_dir=args.data_dir,
        space=args.space,
        trials=args.trials,
        epochs=args.epochs,
        out=out,
        study=f"memory-{args.space}",
        seed=args.seed,
        retrain=False,
        dashboard_every=args.dashboard_every,
        command=_bench.command(),
    )
    events = instrumented_events(cfg, quiet=args.quiet, recorder=TrialRecorder(on_trial=sample))
    outcome = run_search(cfg, dataset=dataset, events=events)

    a, b = args.check
    if len(samples) < b:
        print(f"error: only {len(samples)} trials ran (stop: {outcome.stop_reason}); need {b}", file=sys.stderr)
        return 1
    rss_a, rss_b = samples[a - 1]["rss_mb"], samples[b - 1]["rss_mb"]
    growth = rss_b / rss_a - 1.0
    window = samples[a - 1 : b]
    per_trial = slope([s["trial_count"] for s in window], [s["rss_mb"] for s in window])
    verdict = "PASS" if growth < TARGET_GROWTH else "FAIL"
    every = max(1, len(samples) // 10)
    shown = [s for s in samples if s["trial_count"] in (1, a, b) or s["trial_count"] % every == 0]
    trace = _bench.table(
        ["after trial", "number", "state", "params", "elapsed s", "RSS MiB", "peak MiB", "gc objects"],
        [
            [
                s["trial_count"],
                s["number"],
                s["state"].lower(),
                f"{s['params']:,}" if s["params"] else "-",
                s["elapsed"],
                s["rss_mb"],
                s["peak_rss_mb"],
                s["gc_objects"],
            ]
            for s in shown
        ],
        title="RSS after finished trials (every trial is in the JSON)",
    )
    result = _bench.table(
        [
            "space",
            "trials",
            f"RSS after {a}",
            f"RSS after {b}",
            "growth",
            "MiB / trial",
            "peak MiB",
            f"target < {TARGET_GROWTH:.0%}",
        ],
        [
            [
                args.space,
                len(samples),
                rss_a,
                rss_b,
                f"{growth:+.1%}",
                f"{per_trial:+.2f}",
                samples[-1]["peak_rss_mb"],
                verdict,
            ]
        ],
        title=f"Memory growth over a {len(samples)}-trial search "
        f"({len(dataset.train)} train images, {args.epochs} epoch(s) per trial)",
    )
    text = trace + "\n\n" + result
    results = {
        "rss_before_search_mb": rss_after_load,
        "samples": samples,
        "check_at": [a, b],
        "rss_a_mb": rss_a,
        "rss_b_mb": rss_b,
        "growth": growth,
        "mib_per_trial": per_trial,
        "target_growth": TARGET_GROWTH,
        "verdict": verdict,
        "stop_reason": outcome.stop_reason,
        "n_train": len(dataset.train),
        "n_valid": len(dataset.valid),
    }
    path = _bench.write_results(
        "memory", args.results_dir, settings=vars(args), results=results, table=text, started=started
    )
    if tmp:
        tmp.cleanup()
    print(f"\nresults: {path}\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
