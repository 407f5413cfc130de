"""Today's default job against an earlier commit's default job: same data, budgets, seeds and host, in one go.

    python benchmarks/default_versus_commit.py --baseline cc6152e --runs 1800:1,1800:2,600:1

Each run is ``run_search.py search --data-dir DIR --timeout BUDGET --seed SEED --study NAME --out
FOLDER`` with every other setting at its default, once from this checkout and once from BASELINE
(checked out as a git worktree under ``runs/``, run with the same Python environment), the two
alternating run by run so that both meet the same machine. Per run it records the final model's test
accuracy (the job's own ``test_report.json``: ``test.p`` is read by the job's final stage only), the
job's wall time against its budget, how many sampled configurations got the screen's look (trials that
are neither named points nor continuations and reported a score), how many models the search kept and
how many members the final model has. A summary table compares the means per budget.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _bench  # noqa: E402

RUNS = ROOT / "runs" / "bench-versus-commit"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _bench.add_common_args(p)
    p.add_argument("--baseline", default="cc6152e", help="the commit to compare with (default cc6152e)")
    p.add_argument(
        "--runs",
        default="1800:1,1800:2,600:1",
        help="comma-separated BUDGET:SEED pairs, run in this order (default 1800:1,1800:2,600:1)",
    )
    return p.parse_args(argv)


def worktree(commit: str) -> Path:
    """A checkout of ``commit`` under ``runs/`` (made once)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", commit], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    path = RUNS / f"baseline-{sha}"
    if not (path / "run_search.py").exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=ROOT, check=True)
    return path


def run_job(code: Path, label: str, data_dir: Path, budget: float, seed: int) -> dict[str, Any]:
    """One default job of the checkout at ``code``; its numbers."""
    study = f"{label}-{int(budget)}-s{seed}"
    out = RUNS / "out"
    log = RUNS / f"{study}.log"
    command = [
        sys.executable,
        "run_search.py",
        "search",
        "--data-dir",
        str(data_dir.resolve()),
        "--timeout",
        str(budget),
        "--seed",
        str(seed),
        "--study",
        study,
        "--out",
        str(out),
    ]
    started = time.monotonic()
    with log.open("w") as fh:
        done = subprocess.run(command, cwd=code, stdout=fh, stderr=subprocess.STDOUT)
    wall = time.monotonic() - started
    run_dir = out / study
    return {
        "label": label,
        "budget": budget,
        "seed": seed,
        "exit": done.returncode,
        "wall_s": round(wall, 1),
        "wall_share": round(wall / budget, 3),
        "log": str(log),
        **_outcome(run_dir, study),
    }


def _outcome(run_dir: Path, study_name: str) -> dict[str, Any]:
    import optuna

    report = _json(run_dir / "test_report.json")
    config = _json(run_dir / "best_config.json")
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{run_dir / 'study.db'}")
    sampled = [
        t
        for t in study.get_trials(deepcopy=False)
        if "point" not in t.user_attrs and "continues" not in t.user_attrs and t.intermediate_values
    ]
    members = (config.get("final_model") or {}).get("members") or []
    return {
        "test_accuracy": report.get("test_accuracy"),
        "final_model": (config.get("final_model") or {}).get("name"),
        "sampled_screened": len(sampled),
        "sampled_complete": sum(t.state.name == "COMPLETE" for t in sampled),
        "kept_models": len(list((run_dir / "models").glob("trial-*.keras"))),
        "members": len(members),
        "pool": config.get("pool"),
    }


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = _bench.require_data(args.data_dir)
    started = time.time()
    RUNS.mkdir(parents=True, exist_ok=True)
    codes = {"default": ROOT, "baseline": worktree(args.baseline)}
    plan = [(float(b), int(s)) for b, s in (item.split(":") for item in args.runs.split(","))]
    runs = []
    for budget, seed in plan:
        for label in ("baseline", "default"):
            result = run_job(codes[label], label, data_dir, budget, seed)
            runs.append(result)
            print(json.dumps(result), flush=True)
    rows = []
    for budget in sorted({b for b, _ in plan}):
        for label in ("baseline", "default"):
            mine = [r for r in runs if r["budget"] == budget and r["label"] == label]
            accs = [r["test_accuracy"] for r in mine if r["test_accuracy"] is not None]
            rows.append(
                [
                    f"{budget:.0f}",
                    label,
                    len(mine),
                    _bench.fmt(statistics.mean(accs) if accs else None, 4),
                    " ".join(f"{r['test_accuracy']:.4f}" for r in mine if r["test_accuracy"] is not None),
                    " ".join(f"{r['wall_share']:.0%}" for r in mine),
                    " ".join(str(r["sampled_screened"]) for r in mine),
                    " ".join(str(r["kept_models"]) for r in mine),
                    " ".join(str(r["members"]) for r in mine),
                ]
            )
    table = _bench.table(
        [
            "budget",
            "job",
            "runs",
            "mean test acc",
            "test acc per run",
            "wall/budget",
            "sampled screened",
            "kept models",
            "members",
        ],
        rows,
        title=f"default ({_bench.machine_info()['git'].get('commit', '?')}) vs {args.baseline}",
    )
    print(table)
    path = _bench.write_results(
        "default_versus_commit", args.results_dir, settings=vars(args), results=runs, table=table, started=started
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
