"""Several ``versus`` runs read together: is ours at least as good as the best KerasTuner tuner?

    python benchmarks/versus_report.py benchmarks/results/versus-tensorflow-2026-11-26-3.json \
        benchmarks/results/versus-tensorflow-2026-11-26-4.json
    python benchmarks/versus_report.py --host-flag avx512f benchmarks/results/versus-*.json

One run (a seed of one file) is a single draw: a lucky last trial of a random search can decide a
budget point, so the issue's target ("at least as good as the best KerasTuner tuner at every budget
point, and better at the end") is judged here run by run and then counted over runs. Runs are grouped
by budget, since 25% of 600 s and 25% of 1,800 s are different questions; ``--host-flag`` keeps only
files recorded on a CPU with that vector extension (hosts of the same machine type differed 4-5x in
speed). Two tables per budget:

* per run: ours and the best KerasTuner tuner at each budget point, and whether the target holds;
* per method: the mean best accuracy at each budget point over the runs (a run with no finished
  trial by then has no model: it counts as 0, and the cell says how many runs had one), and the
  median time to each accuracy threshold (runs that never reached it count as the budget, and say).

This script only reads JSON files; it needs neither data nor TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

OURS = "optuna"
KERASTUNER = ("random", "hyperband", "bayesian")  # the peers the target names; optuna-* variants are ours
DEAD_BELOW = 0.5  # trials that ended below this validation accuracy: time the search could have saved


class BadResults(ValueError):
    """A file that cannot be read as a versus result."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One method's summary from one seed of one versus file."""

    source: str
    group: str  # runs of one group and seed are compared: the file, or "" when pairing by seed
    budget: float
    seed: int
    method: str
    checkpoints: dict[str, float | None]
    time_to: dict[str, float | None]
    trials: int
    seconds_below_half: float | None = None  # seconds on trials that ended below DEAD_BELOW


def seconds_below(trace: Sequence[dict], budget: float, grace: float) -> float:
    """Seconds a run spent on trials that ended below ``DEAD_BELOW`` validation accuracy (or with none).

    Trials run one after another, so a trial costs the time since the previous one ended; only
    trials that ended by ``budget + grace`` count, as everywhere in the comparison."""
    counted = [p for p in trace if p["elapsed"] <= budget + grace]
    ends = [p["elapsed"] for p in counted]
    costs = [end - start for start, end in zip([0.0, *ends], ends)]
    return sum(c for c, p in zip(costs, counted) if p["accuracy"] is None or not p["accuracy"] >= DEAD_BELOW)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("files", nargs="+", type=Path, help="versus results JSON files")
    p.add_argument(
        "--by-seed",
        action="store_true",
        help="compare runs of the same seed across files (a method in several files: the last "
        "file given wins); default: only runs within one file are compared",
    )
    p.add_argument(
        "--host-flag", default=None, help="keep only files whose machine lists this CPU vector flag (e.g. avx512f)"
    )
    return p.parse_args(argv)


def load_runs(paths: Sequence[Path], host_flag: str | None = None) -> list[Run]:
    """Every method summary in ``paths``; a file that is not a versus result is an error."""
    runs: list[Run] = []
    for path in paths:
        try:
            doc = json.loads(path.read_text())
            if doc.get("benchmark") != "versus":
                raise ValueError("not a versus results file")
            flags = doc.get("machine", {}).get("cpu_vector_flags") or []
            if host_flag and host_flag not in flags:
                continue
            budget = float(doc["settings"]["budget"])
            grace = float(doc["settings"].get("grace", 10.0))
            traces = {(r["method"], int(r["seed"])): r["trace"] for r in doc["results"].get("raw", [])}
            for s in doc["results"]["summaries"]:
                trace = traces.get((s["method"], int(s["seed"])))  # files from before the field: from the trace
                dead = s.get("seconds_below_half", None if trace is None else seconds_below(trace, budget, grace))
                runs.append(
                    Run(
                        source=path.name,
                        group=path.name,
                        budget=budget,
                        seed=int(s["seed"]),
                        method=s["method"],
                        checkpoints=dict(s["checkpoints"]),
                        time_to=dict(s["time_to"]),
                        trials=int(s["trials"]),
                        seconds_below_half=dead,
                    )
                )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadResults(f"{path}: {exc}") from None
    return runs


def pair_by_seed(runs: Sequence[Run]) -> list[Run]:
    """Compare runs of the same budget and seed across files; where a method appears more than once
    for a seed, the file given last wins. This lets one method be rerun alone after a change and
    judged against the other methods' recorded runs (on the same kind of host: see --host-flag)."""
    latest: dict[tuple[float, int, str], Run] = {}
    for r in runs:
        latest[(r.budget, r.seed, r.method)] = dataclasses.replace(r, group="")
    return list(latest.values())


def _score(value: float | None) -> float:
    return float("-inf") if value is None else value


def verdicts(runs: Sequence[Run]) -> list[dict]:
    """Per group and seed with ours and a KerasTuner tuner: ours vs the best tuner at each point."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.group, r.seed), []).append(r)
    out = []
    for (_, seed), members in sorted(groups.items()):
        ours = next((r for r in members if r.method == OURS), None)
        others = [r for r in members if r.method in KERASTUNER]
        if ours is None or not others:
            continue
        points = {}
        for point, mine in ours.checkpoints.items():
            best = max(others, key=lambda r: _score(r.checkpoints.get(point)))
            theirs = best.checkpoints.get(point)
            final = point == "100%"
            ok = _score(mine) > _score(theirs) if final else _score(mine) >= _score(theirs)
            points[point] = {
                "ours": mine,
                "best_tuner": theirs,
                "best_tuner_method": best.method,
                "met": ok,
                "as_good": _score(mine) >= _score(theirs),
            }
        out.append(
            {
                "source": ours.source,
                "seed": seed,
                "budget": ours.budget,
                "points": points,
                "met_all": all(p["met"] for p in points.values()),
                "as_good_all": all(p["as_good"] for p in points.values()),
            }
        )
    return out


def method_means(runs: Sequence[Run]) -> list[dict]:
    """Per method: mean best accuracy per budget point and median time to each threshold."""
    by_method: dict[str, list[Run]] = {}
    for r in runs:
        by_method.setdefault(r.method, []).append(r)
    out = []
    for method, members in by_method.items():
        means = {}
        for point in members[0].checkpoints:
            values = [r.checkpoints.get(point) for r in members]
            present = [v for v in values if v is not None]
            means[point] = {
                "mean": statistics.fmean(v if v is not None else 0.0 for v in values),
                "min": min(present) if present else None,
                "runs_with_value": len(present),
            }
        times = {}
        for th in members[0].time_to:
            hits = [r.time_to.get(th) for r in members]
            as_budget = [h if h is not None else r.budget for h, r in zip(hits, members)]
            times[th] = {"median": statistics.median(as_budget), "not_reached": sum(h is None for h in hits)}
        dead = [r.seconds_below_half for r in members if r.seconds_below_half is not None]
        out.append(
            {
                "method": method,
                "runs": len(members),
                "checkpoints": means,
                "time_to": times,
                "trials_median": statistics.median(r.trials for r in members),
                "seconds_below_half": statistics.fmean(dead) if dead else None,
            }
        )
    return out


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render(runs: Sequence[Run]) -> str:
    """Both tables for every budget found in ``runs``."""
    parts = []
    for budget in sorted({r.budget for r in runs}):
        mine = [r for r in runs if r.budget == budget]
        judged = verdicts(mine)
        points = list(mine[0].checkpoints)
        rows = []
        for v in judged:
            cells = [
                f"{_acc(p['ours'])} vs {_acc(p['best_tuner'])} {p['best_tuner_method']}"
                + ("" if p["met"] else " MISSED")
                for p in v["points"].values()
            ]
            rows.append([v["source"], v["seed"], *cells, "met" if v["met_all"] else "missed"])
        met = sum(v["met_all"] for v in judged)
        as_good = sum(v["as_good_all"] for v in judged)
        point_hits = {pt: sum(v["points"][pt]["met"] for v in judged) for pt in points}
        title = (
            f"Budget {budget:.0f}s: ours vs the best KerasTuner tuner at each point; at least as good at "
            f"every point in {as_good} of {len(judged)} runs; that and strictly better at the end in "
            f"{met} of {len(judged)} (per point: "
            + ", ".join(f"{pt} {n}/{len(judged)}" for pt, n in point_hits.items())
            + ")"
        )
        if judged:  # none when the runs hold no pair of ours and a KerasTuner tuner
            parts.append(
                _bench.table(["file (ours)", "seed", *(f"@{pt}" for pt in points), "target"], rows, title=title)
            )
        rows = []
        for m in method_means(mine):
            cells = []
            for st in m["checkpoints"].values():
                short = "" if st["runs_with_value"] == m["runs"] else f" ({st['runs_with_value']}/{m['runs']} runs)"
                cells.append(_acc(st["mean"]) + short)
            times = [
                f"{t['median']:.0f}s" + (f" ({t['not_reached']} not reached)" if t["not_reached"] else "")
                for t in m["time_to"].values()
            ]
            dead = "-" if m["seconds_below_half"] is None else f"{m['seconds_below_half']:.0f}"
            rows.append([m["method"], m["runs"], f"{m['trials_median']:g}", *cells, *times, dead])
        thresholds = list(mine[0].time_to)
        parts.append(
            _bench.table(
                [
                    "method",
                    "runs",
                    "trials (median)",
                    *(f"mean @{pt}" for pt in points),
                    *(f"median time to {th}" for th in thresholds),
                    f"mean s on trials < {DEAD_BELOW:g}",
                ],
                rows,
                title=f"Budget {budget:.0f}s: per method over {len({(r.group, r.seed) for r in mine})} runs "
                "(no finished trial yet counts as accuracy 0; never reached counts as the budget)",
            )
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = load_runs(args.files, args.host_flag)
    except BadResults as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.by_seed:
        runs = pair_by_seed(runs)
    if not runs:
        print(
            "error: no runs left to report" + (f" on hosts with {args.host_flag}" if args.host_flag else ""),
            file=sys.stderr,
        )
        return 2
    print(render(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
