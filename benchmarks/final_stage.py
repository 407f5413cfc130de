"""The final stage on real data: single best vs ensemble vs TTA vs calibrated vs the default pick.

    python benchmarks/final_stage.py --budget 900 --seeds 1,2,3

For each seed: ``valid.p`` of the data folder is split (seeded, stratified) into a validation
part and a test part, and a whole job runs on it, ``run_search.py search --timeout BUDGET`` (the
search and the final stage share the budget). The job's own pick is its default final model.
Then the benchmark (not the tool) loads the retrained candidates the job saved
(``final_members/``) and scores every option on the test part: the single retrained best, the
ensemble of all candidates, each with and without test-time augmentation, calibrated or not
(calibration leaves accuracy unchanged; it shows in NLL and ECE). Each job's wall time from start
to the last file written is recorded against its budget.

The sample's validation and test parts come from the same held-out tracks (several frames of one
physical sign in both), so absolute numbers are optimistic; the comparison between options is
what this measures.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _bench  # noqa: E402

RUNS = ROOT / "runs" / "bench-final-stage"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _bench.add_common_args(p)
    p.add_argument("--budget", type=float, default=900.0, help="--timeout of each job, seconds (default 900)")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    p.add_argument("--space", default="all")
    p.add_argument("--epochs", type=int, default=6, help="--epochs of the search (default 6)")
    p.add_argument("--final-epochs", type=int, default=12, help="--final-epochs (default 12)")
    p.add_argument("--test-share", type=float, default=0.5, help="share of valid.p held out as the test part")
    return p.parse_args(argv)


def split_folder(data_dir: Path, seed: int, share: float) -> Path:
    """train.p as it is; valid.p split into valid.p and test.p (stratified by class, seeded)."""
    import numpy as np

    from search.data import load_split, stratified_split

    out = RUNS / "data" / f"seed{seed}"
    if (out / "test.p").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    valid = load_split(data_dir / "valid.p")
    keep, test = stratified_split(valid.labels, share, seed)
    for name, idx in (("valid.p", keep), ("test.p", test)):
        with open(out / name, "wb") as fh:
            pickle.dump({"features": valid.features[idx], "labels": valid.labels[idx].astype(np.uint8)}, fh)
    (out / "train.p").write_bytes((data_dir / "train.p").read_bytes())
    return out


def run_job(folder: Path, seed: int, args: argparse.Namespace) -> tuple[Path, float]:
    study = f"final-seed{seed}-{int(args.budget)}"
    cmd = [
        sys.executable,
        str(ROOT / "run_search.py"),
        "search",
        "--data-dir",
        str(folder),
        "--space",
        args.space,
        "--timeout",
        str(args.budget),
        "--epochs",
        str(args.epochs),
        "--final-epochs",
        str(args.final_epochs),
        "--trials",
        "1000",
        "--seed",
        str(seed),
        "--study",
        study,
        "--out",
        str(RUNS),
    ]
    print("$ " + " ".join(cmd), flush=True)
    start = time.monotonic()
    log = RUNS / f"{study}.log"
    with open(log, "w") as fh:
        code = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - start
    if code != 0:
        raise SystemExit(f"job failed (exit {code}); see {log}")
    return RUNS / study, wall


def score_options(run_dir: Path, folder: Path) -> dict[str, Any]:
    """Every option built from the saved candidates, scored on the test part."""
    import keras
    import numpy as np

    import spaces  # noqa: F401 - registers the custom layers the saved models use
    from search.data import load_dataset
    from search.final.calibration import apply_temperature, expected_calibration_error, fit_temperature
    from search.final.calibration import negative_log_likelihood as nll
    from search.final.combine import with_tta

    config = json.loads((run_dir / "best_config.json").read_text())
    dataset = load_dataset(folder)
    test = dataset.load_test()
    members = [
        keras.saving.load_model(run_dir / "final_members" / f"trial-{m['trial_number']}.keras")
        for m in config["members"]
    ]

    def probs(model: keras.Model, images: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(images, batch_size=512, verbose=0), dtype=np.float64)

    out: dict[str, Any] = {}
    groups = {"single": members[:1]} | ({f"ensemble of {len(members)}": members} if len(members) > 1 else {})
    for name, group in groups.items():
        for tta in (False, True):
            label = name + (" + TTA" if tta else "")
            wrap = with_tta if tta else (lambda m: m)
            pv = np.mean([probs(wrap(m), dataset.valid.features) for m in group], axis=0)
            pt = np.mean([probs(wrap(m), test.features) for m in group], axis=0)
            t = fit_temperature(pv, dataset.valid.labels)
            for calibrated in (False, True):
                q = apply_temperature(pt, t) if calibrated else pt
                out[label + (" + T" if calibrated else "")] = {
                    "test_accuracy": float((q.argmax(1) == test.labels).mean()),
                    "test_nll": nll(q, test.labels),
                    "test_ece": expected_calibration_error(q, test.labels),
                }
    report = json.loads((run_dir / "test_report.json").read_text())
    out["default (the job's pick)"] = {
        "test_accuracy": report["test_accuracy"],
        "test_nll": report["nll"],
        "test_ece": report["ece"],
        "pick": config["final_model"]["name"],
    }
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin(args.data_dir)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    runs = []
    for seed in seeds:
        folder = split_folder(args.data_dir, seed, args.test_share)
        run_dir, wall = run_job(folder, seed, args)
        options = score_options(run_dir, folder)
        runs.append({"seed": seed, "wall_seconds": round(wall, 1), "budget": args.budget, "options": options})
        print(
            f"seed {seed}: wall {wall:.0f}s of {args.budget:.0f}s; "
            + "; ".join(f"{k} {v['test_accuracy']:.4f}" for k, v in options.items()),
            flush=True,
        )
    names = list(runs[0]["options"])
    rows = []
    for name in names:
        accs = [r["options"][name]["test_accuracy"] for r in runs if name in r["options"]]
        nlls = [r["options"][name]["test_nll"] for r in runs if name in r["options"]]
        rows.append([name, *(f"{a:.4f}" for a in accs), f"{sum(accs) / len(accs):.4f}", f"{sum(nlls) / len(nlls):.4f}"])
    table = _bench.table(
        ["option", *(f"seed {s}" for s in seeds), "mean acc", "mean NLL"],
        rows,
        title=f"final stage, test part, budget {args.budget:.0f}s",
    )
    walls = ", ".join(f"seed {r['seed']}: {r['wall_seconds']:.0f}s" for r in runs)
    table += f"\njob wall time (budget {args.budget:.0f}s): {walls}"
    print(table)
    path = _bench.write_results(
        "final_stage", args.results_dir, settings=vars(args), results=runs, table=table, started=started
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
