"""Search quality per wall-clock second: our Optuna search against KerasTuner on the same space and data.

    python benchmarks/versus.py --budget 1800 --space all --epochs 10
    python benchmarks/versus.py --budget 1800 --methods optuna,optuna-nopoints,random,hyperband,bayesian

Smoke run on synthetic data (about three minutes on 2 cores):

    python benchmarks/versus.py --data-dir /tmp/bsynth --budget 30 --space lenet --epochs 2 \
        --max-train 400 --max-valid 200

Every method gets the same wall-clock budget, data, space module, most epochs per trial and
early-stopping patience, and runs in its own subprocess (fresh TensorFlow state and memory; this
script re-invokes itself with ``--method M --json-out F``). The clock starts after the data is loaded,
just before the search object is created.

* ``optuna``: ``search.engine.loop.run_search`` with the settings' defaults, as ``run_search.py
  search`` runs it: the space's named points first (the tutorial models, the hand-tuned ``strong``
  net), then the default sampler, pruner and local search, ``timeout=budget``. Dashboards are off.
* variants that change one default, to measure what each part is worth: ``optuna-nopoints`` (no
  named points: the search algorithm alone), ``optuna-nolocal`` (``--local-share 0``),
  ``optuna-nocontinue`` (``--no-continue-cut``: a trial the cap cut short is not trained on),
  ``optuna-hyperband`` (``--pruner hyperband``), ``optuna-gp`` (``--sampler gp``).
* ``random``, ``hyperband``, ``bayesian``: KerasTuner's RandomSearch, Hyperband (``max_epochs`` =
  ``--epochs``, factor 3, iterating until stopped) and BayesianOptimization (its default
  ``num_initial_points``: 3 per dimension) driving the space through ``SpaceHyperModel``, objective
  ``val_accuracy`` (max), an ``EarlyStopping`` callback as ours. KerasTuner has no time budget, so a
  callback stops training at the deadline and the oracle creates no trial past it.

A trial's score is its best validation accuracy over its epochs (KerasTuner's own rule; for Optuna
also for pruned and time-capped trials, whose models were trained that far). A trial counts if it
ended by ``budget + --grace`` seconds (the validation pass of a trial stopped at the deadline).
Reported: the best-so-far trace, the best at 25/50/75/100% of the budget, the time to first
reach each ``--thresholds`` accuracy, the seconds spent on trials that ended below 50% validation
accuracy (dead or pruned early; trials run one after another, so a trial costs the time since the
previous one ended), and (``versus_report.py``, which also reads several result
files together) whether ours met the target in each run and the means over seeds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench, versus_report

# Our search as ``run_search.py search`` runs it (the settings' defaults), and variants that change one
# setting, to measure what each part is worth.
OURS = {
    "optuna": {},
    "optuna-nopoints": {"named_points": False},
    "optuna-nolocal": {"local_share": 0.0},
    "optuna-hyperband": {"pruner": "hyperband"},
    "optuna-gp": {"sampler": "gp"},
    "optuna-nocontinue": {"continue_cut": False},
}
METHODS = (*OURS, "random", "hyperband", "bayesian")
DEFAULT_METHODS = "optuna,random,hyperband,bayesian"
CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)
UNLIMITED_TRIALS = 1_000_000
MAX_CONSECUTIVE_FAILURES = 5  # the search's default (SearchConfig.max_failures)
# KerasTuner draws a run's k-th parameter value with seed + k (``Oracle._seed_state``), so runs seeded
# s and s + 1 draw the same values shifted by one parameter: the same first configuration, nearly.
# Seeds this far apart draw disjoint sequences for longer than any budgeted run (a trial draws ~20).
KERASTUNER_SEED_STRIDE = 100_000


def kerastuner_seed(seed: int, seeding: str = "spaced") -> int:
    """The seed KerasTuner gets for benchmark seed ``seed``. ``spaced``: independent runs per seed,
    and never 0, which KerasTuner reads as "no seed" (``seed or random.randint``). ``plain``: the
    seed as given, as runs recorded before 2026-12-06 22:00 were seeded."""
    return seed if seeding == "plain" else seed * KERASTUNER_SEED_STRIDE + 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    _bench.add_common_args(p)
    p.add_argument("--budget", type=float, default=1800.0, help="wall-clock seconds per method (default 1800)")
    _bench.add_space_arg(p, "all")
    p.add_argument("--epochs", type=int, default=10, help="most epochs per trial (default 10, as the tool)")
    p.add_argument("--patience", type=int, default=3, help="early-stopping patience (default 3, as the tool)")
    p.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"comma-separated, from {', '.join(METHODS)} (default {DEFAULT_METHODS})",
    )
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each method runs once per seed")
    p.add_argument(
        "--kerastuner-seeds",
        choices=("spaced", "plain"),
        default="spaced",
        help="spaced (default): each seed gives KerasTuner an independent draw sequence; plain: "
        "pass the seed as is (consecutive seeds then draw nearly the same trials), as "
        "runs recorded before 2026-12-06 22:00 did",
    )
    p.add_argument("--thresholds", default="0.95,0.97", help="accuracies to time (default 0.95,0.97)")
    p.add_argument(
        "--grace", type=float, default=10.0, help="seconds past the budget a trial may end and still count (default 10)"
    )
    p.add_argument(
        "--bayes-initial-points",
        type=int,
        default=None,
        help="BayesianOptimization's random start (default: KerasTuner's, 3 x dimensions)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON file (default benchmarks/results/versus-<backend>-<date>.json)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep the studies and tuner folders here (default: a temporary folder)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-trial lines")
    p.add_argument("--method", choices=METHODS, help="(internal) run one method in this process")
    p.add_argument("--seed", type=int, default=0, help="(internal, with --method)")
    p.add_argument("--json-out", type=Path, help="(internal, with --method) where the method's trace goes")
    args = p.parse_args(argv)
    args.method_list = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.method_list if m not in METHODS]
    if unknown:
        p.error(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.threshold_list = [float(t) for t in args.thresholds.split(",") if t.strip()]
    if args.method and not args.json_out:
        p.error("--method needs --json-out")
    if args.budget <= 0:
        p.error(f"--budget must be positive, got {args.budget}")
    return args


# -- one method, in its own process ---------------------------------------------------------------
def run_child(args: argparse.Namespace) -> int:
    _bench.setup_env()
    dataset = _bench.load_data(args.data_dir, max_train=args.max_train, max_valid=args.max_valid)
    import spaces

    space = spaces.get_space(args.space)
    tmp = tempfile.TemporaryDirectory(prefix=f"bench-versus-{args.method}-") if args.work_dir is None else None
    work = Path(tmp.name) if tmp else args.work_dir / f"{args.method}-seed{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    trace: list[dict] = []
    best = [float("-inf")]

    def record(state: str, accuracy: float | None, epochs: int | None, note: str = "") -> None:
        elapsed = time.monotonic() - t0
        if accuracy is not None and accuracy == accuracy:
            best[0] = max(best[0], accuracy)
        trace.append(
            {"elapsed": round(elapsed, 2), "state": state, "accuracy": accuracy, "epochs": epochs, "note": note}
        )
        if not args.quiet:
            acc = f"{accuracy:.4f}" if accuracy is not None else "  -   "
            print(
                f"  [{args.method} seed {args.seed}] {elapsed:7.1f}s/{args.budget:.0f}s trial {len(trace):>3} "
                f"{state.lower():<9} val_acc {acc} best {best[0]:.4f} ({epochs} ep) {note}",
                flush=True,
            )

    t0 = time.monotonic()
    if args.method in OURS:
        stop = _run_optuna(args, dataset, space, work, record)
    else:
        stop = _run_kerastuner(args, dataset, space, work, t0, record)
    total = time.monotonic() - t0
    args.json_out.write_text(
        json.dumps(
            {
                "method": args.method,
                "seed": args.seed,
                "budget": args.budget,
                "total_seconds": round(total, 2),
                "stop_reason": stop,
                "kerastuner_seed": None if args.method in OURS else kerastuner_seed(args.seed, args.kerastuner_seeds),
                "trace": trace,
                "n_train": len(dataset.train),
                "n_valid": len(dataset.valid),
                "peak_rss_mb": _bench.peak_rss_mb(),
                "machine": _bench.machine_info(),
            },
            indent=1,
        )
    )
    if tmp:
        tmp.cleanup()
    return 0


def _run_optuna(args: argparse.Namespace, dataset, space, work: Path, record) -> str:
    from benchmarks._probes import TrialRecorder, instrumented_events
    from search.config import SearchConfig
    from search.engine.loop import SearchStopped, run_search
    from search.schema import origin_of

    cfg = SearchConfig(
        data_dir=args.data_dir,
        space=args.space,
        trials=UNLIMITED_TRIALS,
        timeout=args.budget,
        epochs=args.epochs,
        patience=args.patience,
        out=work,
        study="versus",
        seed=args.seed,
        retrain=False,
        dashboard_every=0,
        max_failures=MAX_CONSECUTIVE_FAILURES,
        command=_bench.command(),
        **OURS[args.method],
    )

    def on_trial(trial, rec: dict) -> None:
        origin = origin_of(trial.user_attrs)
        record(
            rec["state"],
            rec["observed"],
            rec["epochs"],
            (f"[{origin}] " if origin else "") + (rec["stop_reason"] or ""),
        )

    events = instrumented_events(cfg, quiet=True, recorder=TrialRecorder(on_trial=on_trial), timeout=args.budget)
    try:
        return run_search(cfg, dataset=dataset, events=events).stop_reason
    except SearchStopped as exc:
        print(f"  [{args.method}] {exc}", flush=True)
        return "failures"


def _run_kerastuner(args: argparse.Namespace, dataset, space, work: Path, t0: float, record) -> str:
    import keras
    import keras_tuner as kt

    from spaces.keras_tuner_adapter import SpaceHyperModel

    deadline = t0 + args.budget

    class DeadlineStop(keras.callbacks.Callback):
        """KerasTuner has no time budget: stop training (mid-epoch if need be) at the deadline."""

        def __init__(self, at: float) -> None:
            super().__init__()
            self.at = at

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if time.monotonic() >= self.at:
                self.model.stop_training = True

        on_epoch_end = on_train_batch_end  # type: ignore[assignment]

    base, extra = {
        "random": (kt.RandomSearch, {"max_trials": UNLIMITED_TRIALS}),
        "bayesian": (
            kt.BayesianOptimization,
            {"max_trials": UNLIMITED_TRIALS, "num_initial_points": args.bayes_initial_points},
        ),
        "hyperband": (kt.Hyperband, {"max_epochs": args.epochs, "factor": 3, "hyperband_iterations": None}),
    }[args.method]

    class Timed(base):  # type: ignore[misc, valid-type]
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            done = self.oracle.get_trial(trial.trial_id)
            values = done.hyperparameters.values
            epochs = values.get("tuner/epochs", args.epochs)
            score = done.score if done.status == "COMPLETED" else None
            record(
                str(done.status),
                None if score is None else float(score),
                epochs,
                f"from {values['tuner/trial_id']}" if values.get("tuner/trial_id") else "",
            )

    tuner = Timed(
        SpaceHyperModel(space, dataset.input_shape, dataset.n_classes),
        objective=kt.Objective("val_accuracy", direction="max"),
        seed=kerastuner_seed(args.seed, args.kerastuner_seeds),
        max_consecutive_failed_trials=MAX_CONSECUTIVE_FAILURES,
        directory=str(work),
        project_name=args.method,
        overwrite=True,
        **extra,
    )
    populate = tuner.oracle.populate_space
    stopped_by_budget = [False]

    def budgeted_populate(trial_id: str) -> dict:
        if time.monotonic() >= deadline:
            stopped_by_budget[0] = True
            return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
        return populate(trial_id)

    tuner.oracle.populate_space = budgeted_populate  # the oracle's "stop searching" answer
    early = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=args.patience, restore_best_weights=True
    )
    try:
        tuner.search(
            dataset.train.features,
            dataset.train.labels,
            epochs=args.epochs,
            shuffle=True,
            validation_data=(dataset.valid.features, dataset.valid.labels),
            callbacks=[early, DeadlineStop(deadline)],
            verbose=0,
        )
    except RuntimeError as exc:  # KerasTuner ends the search after too many failed trials in a row
        print(f"  [{args.method}] stopped: {str(exc).strip().splitlines()[-1][:300]}", flush=True)
        return "failures"
    return "timeout" if stopped_by_budget[0] else "exhausted"


# -- the parent: one subprocess per method and seed, then the comparison ---------------------------
def child_command(args: argparse.Namespace, method: str, seed: int, json_out: Path) -> list[str]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--method",
        method,
        "--seed",
        str(seed),
        "--json-out",
        str(json_out),
        "--data-dir",
        str(args.data_dir),
        "--budget",
        str(args.budget),
        "--space",
        args.space,
        "--epochs",
        str(args.epochs),
        "--patience",
        str(args.patience),
        "--kerastuner-seeds",
        args.kerastuner_seeds,
    ]
    for flag, value in (
        ("--max-train", args.max_train),
        ("--max-valid", args.max_valid),
        ("--bayes-initial-points", args.bayes_initial_points),
        ("--work-dir", args.work_dir),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd + (["--quiet"] if args.quiet else [])


def missing_requirement(method: str) -> str | None:
    """What a method needs that this environment lacks (checked before starting its process)."""
    if method == "bayesian" and importlib.util.find_spec("sklearn") is None:
        return "KerasTuner's BayesianOptimization needs scikit-learn (pip install 'keras-tuner[bayesian]')"
    return None


def summarize(res: dict, budget: float, grace: float, thresholds: list[float]) -> dict:
    """Best-so-far trace, checkpoints and time-to-threshold from one method's raw trace."""
    counted = [p for p in res["trace"] if p["elapsed"] <= budget + grace]
    best, curve = float("-inf"), []
    for p in counted:
        if p["accuracy"] is not None:
            best = max(best, p["accuracy"])
        curve.append([p["elapsed"], None if best == float("-inf") else best])

    def best_by(limit: float) -> float | None:
        vals = [b for t, b in curve if t <= limit and b is not None]
        return max(vals) if vals else None

    checkpoints = {f"{int(f * 100)}%": best_by(budget * f + (grace if f == 1.0 else 0.0)) for f in CHECKPOINTS}
    reached = {}
    for th in thresholds:
        hit = next((t for t, b in curve if b is not None and b >= th), None)
        reached[f"{th:g}"] = hit
    states: dict[str, int] = {}
    for p in counted:
        states[p["state"].lower()] = states.get(p["state"].lower(), 0) + 1
    dead = versus_report.seconds_below(res["trace"], budget, grace)
    return {
        "method": res["method"],
        "seed": res["seed"],
        "trials": len(counted),
        "late_trials": len(res["trace"]) - len(counted),
        "states": states,
        "best_so_far": curve,
        "checkpoints": checkpoints,
        "time_to": reached,
        "final_best": checkpoints["100%"],
        "stop_reason": res["stop_reason"],
        "total_seconds": res["total_seconds"],
        "seconds_below_half": round(dead, 1),
        "peak_rss_mb": res.get("peak_rss_mb"),
    }


def render_table(args: argparse.Namespace, summaries: list[dict], errors: list[dict], raw: list[dict]) -> str:
    """The per-run table printed at the end and stored in the results file."""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    checkpoints = summaries[0]["checkpoints"] if summaries else {f"{k:.0%}": None for k in CHECKPOINTS}
    headers = [
        "method",
        "seed",
        "trials",
        *(f"best @{k}" for k in checkpoints),
        *(f"time to {t:g}" for t in args.threshold_list),
        f"s below {versus_report.DEAD_BELOW:g}",
        "stop",
    ]
    rows = []
    for s in summaries:
        states = ", ".join(f"{n} {k}" for k, n in sorted(s["states"].items()))
        late = f" +{s['late_trials']} late" if s["late_trials"] else ""
        rows.append(
            [
                s["method"],
                s["seed"],
                f"{s['trials']} ({states}){late}",
                *(cell(v) for v in s["checkpoints"].values()),
                *("not reached" if v is None else f"{v:.0f}s" for v in s["time_to"].values()),
                f"{s['seconds_below_half']:.0f}",
                s["stop_reason"],
            ]
        )
    for err in errors:
        why = (
            "skipped (needs scikit-learn)"
            if "scikit-learn" in err.get("skipped", "")
            else (err.get("skipped") or f"failed (exit {err.get('exit')})")
        )
        rows.append([err["method"], err["seed"], why, *("" for _ in range(len(headers) - 3))])
    images = f", {raw[0]['n_train']} train / {raw[0]['n_valid']} valid images" if raw else ""
    return _bench.table(
        headers,
        rows,
        title=(
            f"Best validation accuracy within a {args.budget:.0f}s budget per method: space {args.space}, "
            f"up to {args.epochs} epochs, patience {args.patience}{images}"
        ),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.method:
        return run_child(args)
    started = time.time()
    _bench.require_data(args.data_dir)
    # One path for the whole job, rewritten after every run: a job killed hours in keeps what it measured.
    path = args.out or _bench.results_path("versus", Path(args.results_dir), _bench.machine_info()["keras_backend"])
    settings = {k: v for k, v in vars(args).items() if k not in ("method", "json_out", "seed")}
    raw, summaries, errors = [], [], []

    def save(finished: bool) -> str:
        text = render_table(args, summaries, errors, raw)
        results = {"summaries": summaries, "raw": raw, "errors": errors, "finished": finished}
        _bench.write_results(
            "versus", args.results_dir, settings=settings, results=results, table=text, started=started, path=path
        )
        return text

    with tempfile.TemporaryDirectory(prefix="bench-versus-") as tmp:
        for seed in args.seed_list:
            for method in args.method_list:
                missing = missing_requirement(method)
                if missing:
                    errors.append({"method": method, "seed": seed, "skipped": missing})
                    print(f"== {method} (seed {seed}): skipped, {missing}", flush=True)
                    continue
                json_out = Path(tmp) / f"{method}-{seed}.json"
                cmd = child_command(args, method, seed, json_out)
                print(f"== {method} (seed {seed}): {args.budget:.0f}s budget", flush=True)
                limit = args.budget + max(300.0, 0.5 * args.budget)  # start-up, last validation, a hang
                try:
                    code = subprocess.run(cmd, timeout=limit).returncode
                except subprocess.TimeoutExpired:
                    code = "timeout"
                if code != 0 or not json_out.exists():
                    errors.append({"method": method, "seed": seed, "exit": code})
                    print(f"   {method} (seed {seed}) failed: exit {code}", flush=True)
                else:
                    res = json.loads(json_out.read_text())
                    raw.append(res)
                    summaries.append(summarize(res, args.budget, args.grace, args.threshold_list))
                save(finished=False)
    if not summaries:
        print("error: every method failed", file=sys.stderr)
        return 1
    text = save(finished=True)
    print(f"\nresults: {path}\n{text}\n\n{versus_report.render(versus_report.load_runs([path]))}")
    return 1 if any("exit" in err for err in errors) else 0


if __name__ == "__main__":
    raise SystemExit(main())
