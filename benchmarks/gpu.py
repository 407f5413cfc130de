"""GPU measurements in one go (run through ``benchmarks/gpu.sh``; JAX backend, no TensorFlow needed).

On the GPU machine (see ../shared/GPU.md; the data copied to ``.gpudata/`` beforehand):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \\
      && export PYTHONPATH=/tmp/site KERAS_BACKEND=jax && bash benchmarks/gpu.sh

About 15 minutes with the defaults; under a 10-minute limit per command run it as three calls:
``bash benchmarks/gpu.sh --parts epochs,population`` (about 5 minutes), ``--parts workers`` (about 5)
and ``--parts search`` (about 5.5). Dry run on a CPU machine (a few minutes on 2 cores):

    KERAS_BACKEND=tensorflow bash benchmarks/gpu.sh --dry-run

Parts (``--parts``, default all four):

* ``epochs``: seconds per epoch of the tutorial LeNet, the tutorial CNN and cnn "strong" on the
  training images replicated to ``--replicate-to`` (35k, the tutorial's train.p size), through the
  tool's ``train_model`` and through a plain ``model.fit`` (the same code as benchmarks/throughput.py);
  the first epoch (compilation) is warm-up, the median of the rest is reported.
* ``population``: trials per hour of ``--population-epochs``-epoch trials of the tutorial LeNet
  trained one at a time (``fit``, the compiled engine) and as populations of ``--sizes`` members in
  one program (benchmarks/population.py, search/engine/population.py), wall time with compilation.
* ``workers``: trials per hour with K = 1, 2, 4, 8 worker processes sharing the GPU:
  ``run_search.py search --workers K`` with a fixed short trial setting (space lenet, 2 epochs, no
  pruning, random sampler), interrupted (Ctrl-C, as a user would) ``--worker-seconds`` after its first
  trial started; rate = trials finished within that window (storage timestamps) per hour. The
  search's ``--timeout`` is set well above the window so its per-trial cap never shortens a trial.
  GPU utilisation and memory are sampled with nvidia-smi meanwhile.
* ``search``: a ``--search-seconds`` (5-minute) search of the ``all`` space as a user runs it
  (``run_search.py search --timeout 300 --no-retrain``) with the K that gave the most trials per hour;
  best validation accuracy, trial counts, time to reach 95% / 97%.

Everything goes to ``--out-dir`` (default ``$OUT`` when set, else benchmarks/results/):
``gpu-<backend>-<date>.json`` (rewritten after each part, so a cut-off run keeps what it measured),
each subprocess's log, and the search's study.db. The short table is printed last.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _bench

ROOT = _bench.ROOT
RUN_SEARCH = ROOT / "run_search.py"
PARTS = ("epochs", "population", "workers", "search")
STARTUP_LIMIT_S = 300.0  # a search that has not started a trial by then is stopped
GPU_DATA_DIR = ROOT / ".gpudata"
DRY_RUN = {
    "replicate_to": 1500,
    "max_valid": 300,
    "epochs": 2,
    "models": "lenet:tutorial,cnn:tutorial",
    "workers": "1,2",
    "worker_seconds": 15.0,
    "search_seconds": 20.0,
    "search_space": "lenet",
    "search_epochs": 2,
    "sizes": "1,2",
    "population_epochs": 1,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    default_data = GPU_DATA_DIR if GPU_DATA_DIR.is_dir() else _bench.DEFAULT_DATA_DIR
    p.add_argument(
        "--data-dir", type=Path, default=default_data, help=f"folder with train.p and valid.p (default {default_data})"
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
        help="results folder (default $OUT if set, else benchmarks/results/)",
    )
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated from {', '.join(PARTS)}")
    p.add_argument("--replicate-to", type=int, default=35000, help="training images after replication")
    p.add_argument("--max-valid", type=int, default=None, help="validation subset (default: all)")
    p.add_argument("--models", default="lenet:tutorial,cnn:tutorial,cnn:strong", help="epochs part: space:point list")
    p.add_argument("--epochs", type=int, default=4, help="epochs part: epochs per fit, first is warm-up (default 4)")
    p.add_argument("--sizes", default="1,2,4,8,16", help="population part: population sizes (default 1,2,4,8,16)")
    p.add_argument("--population-epochs", type=int, default=3, help="population part: epochs per trial (default 3)")
    p.add_argument("--workers", default="1,2,4,8", help="workers part: the K values (default 1,2,4,8)")
    p.add_argument(
        "--worker-seconds",
        type=float,
        default=45.0,
        help="workers part: measuring window per K, from its first trial's start (default 45)",
    )
    p.add_argument("--search-seconds", type=float, default=300.0, help="search part: --timeout (default 300)")
    _bench.add_space_arg(p, "all", "--search-space")
    p.add_argument("--search-epochs", type=int, default=10, help="search part: --epochs (default 10)")
    p.add_argument(
        "--search-workers",
        default="auto",
        help="search part: --workers, or 'auto' (the K with most trials/hour, else 1)",
    )
    p.add_argument("--dry-run", action="store_true", help="tiny settings, to check the script on a CPU")
    args = p.parse_args(argv)
    if args.dry_run:  # tiny defaults; options given explicitly still win
        p.set_defaults(**DRY_RUN)
        args = p.parse_args(argv)
    args.part_list = [x.strip() for x in args.parts.split(",") if x.strip()]
    bad = [x for x in args.part_list if x not in PARTS]
    if bad:
        p.error(f"unknown part {bad[0]!r}; choose from {', '.join(PARTS)}")
    args.k_list = [int(k) for k in args.workers.split(",") if k.strip()]
    return args


def estimate_seconds(args: argparse.Namespace) -> float:
    total = 0.0
    if "epochs" in args.part_list:
        total += 60.0 * len(args.models.split(","))
    if "population" in args.part_list:
        total += 20.0 * (len(args.sizes.split(",")) + 2)
    if "workers" in args.part_list:
        total += sum(args.worker_seconds + 30.0 for _ in args.k_list)
    if "search" in args.part_list:
        total += args.search_seconds + 30.0
    return total


def make_data(args: argparse.Namespace, folder: Path):
    """The training split replicated to ``--replicate-to`` images, saved as .npz for the subprocesses."""
    import numpy as np

    from search.data import Split

    base = _bench.load_data(args.data_dir, max_valid=args.max_valid)
    idx = np.arange(args.replicate_to) % len(base.train)
    train = Split(base.train.features[idx], base.train.labels[idx])
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "train.npz", features=train.features, labels=train.labels)
    np.savez(folder / "valid.npz", features=base.valid.features, labels=base.valid.labels)
    return dataclasses.replace(base, train=train, data_dir=folder)


def part_epochs(args: argparse.Namespace, dataset) -> list[dict]:
    import spaces
    from benchmarks.throughput import fit_once
    from search.config import SearchConfig

    spe = SearchConfig(data_dir=Path(".")).steps_per_execution
    rows = []
    for item in [m.strip() for m in args.models.split(",") if m.strip()]:
        space_name, _, point = item.partition(":")
        space = spaces.get_space(space_name)
        row: dict = {"model": item}
        for path in ("tool", "plain"):
            epochs, params = fit_once(path, space, space.POINTS[point], dataset, epochs=args.epochs, spe=spe)
            steady = epochs[1:]
            row.update(
                {
                    "params": params,
                    f"{path}_epoch_s": _bench.median(e["epoch_s"] for e in steady),
                    f"{path}_train_s": _bench.median(e["train_s"] for e in steady),
                    f"{path}_first_epoch_s": epochs[0]["epoch_s"],
                    f"{path}_epochs": epochs,
                }
            )
            print(
                f"  {item:<16} {path:<5}: first epoch {epochs[0]['epoch_s']:.1f}s, then "
                f"{row[f'{path}_epoch_s']:.2f}s/epoch ({len(dataset.train) / row[f'{path}_train_s']:.0f} img/s "
                "training)",
                flush=True,
            )
        row["images_per_s"] = len(dataset.train) / row["tool_train_s"]
        rows.append(row)
    return rows


def part_population(args: argparse.Namespace, dataset) -> list[dict]:
    import spaces
    from benchmarks.population import run

    space = spaces.get_space("lenet")
    plan = [("fit", 1), ("compiled", 1)] + [("population", int(n)) for n in args.sizes.split(",") if n.strip()]
    rows = []
    for kind, size in plan:
        row = run(kind, space, space.POINTS["tutorial"], dataset, size=size, epochs=args.population_epochs)
        rows.append(row)
        print(
            f"  lenet:tutorial {kind:<10} N={size:<2} {row['wall_s']:7.1f}s (compile {row['compile_s']:.1f}s) "
            f"{row['trials_per_hour']:7.0f} trials/h",
            flush=True,
        )
    return rows


class GpuSampler:
    """nvidia-smi utilisation and memory every 500 ms while a part runs (nothing without nvidia-smi)."""

    def __init__(self, path: Path) -> None:
        self.path, self.proc = path, None
        if shutil.which("nvidia-smi"):
            self.fh = open(path, "w")  # noqa: SIM115 - nvidia-smi writes to it until stop() closes it
            self.proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "500",
                ],
                stdout=self.fh,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> dict:
        if self.proc is None:
            return {}
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.fh.close()
        util, mem = [], []
        for line in self.path.read_text().splitlines():
            try:
                u, m = (float(x) for x in line.split(",")[:2])
            except ValueError:
                continue
            util.append(u)
            mem.append(m)
        return {"gpu_util_mean": sum(util) / len(util) if util else None, "gpu_mem_max_mib": max(mem) if mem else None}


def run_cli(argv: list[str], log: Path, timeout: float) -> tuple[int | str, float]:
    start = time.monotonic()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        try:
            code: int | str = subprocess.run(
                [sys.executable, str(RUN_SEARCH), *argv], stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    return code, time.monotonic() - start


def study_stats(db: Path, study: str, *, window: float | None = None) -> dict:
    """Trial counts, rates and the best trial, from the study's storage timestamps.

    With ``window``, only trials that finished within ``window`` seconds of the first trial's start
    count, and the rate is over that window.
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    trials = optuna.load_study(study_name=study, storage=f"sqlite:///{db}").get_trials(deepcopy=False)
    started = [t.datetime_start for t in trials if t.datetime_start]
    if not started:
        return {"finished": 0, "states": {}}
    first = min(started)
    done = [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        and t.datetime_complete
        and (window is None or (t.datetime_complete - first).total_seconds() <= window)
    ]
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    out: dict = {"states": states, "finished": len(done)}
    if not done:
        return out
    span = window or (max(t.datetime_complete for t in done) - first).total_seconds()
    ends = sorted((t.datetime_complete - first).total_seconds() for t in done)
    seconds = sorted(float(t.user_attrs.get("seconds", 0.0)) for t in done)
    out.update(
        {
            "span_s": span,
            "trials_per_hour": len(done) / span * 3600 if span > 0 else None,
            "steady_trials_per_hour": (len(ends) - 1) / (ends[-1] - ends[0]) * 3600
            if len(ends) > 2 and ends[-1] > ends[0]
            else None,
            "median_trial_s": seconds[len(seconds) // 2],
        }
    )
    complete = sorted(
        (t for t in done if t.state == TrialState.COMPLETE and t.values), key=lambda t: t.datetime_complete
    )
    best, reach = None, {}
    for t in complete:
        if best is None or t.values[0] > best.values[0]:
            best = t
        for th in (0.95, 0.97):
            if t.values[0] >= th and str(th) not in reach:
                reach[str(th)] = (t.datetime_complete - first).total_seconds()
    if best is not None:
        out.update(
            {
                "best_value": best.values[0],
                "best_number": best.number,
                "best_family": best.user_attrs.get("family"),
                "best_params": best.user_attrs.get("params"),
                "best_point": best.user_attrs.get("point"),
                "time_to": reach,
            }
        )
    return out


def _trial_started(db: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE datetime_start IS NOT NULL").fetchone()[0] > 0
    except sqlite3.Error:  # not created yet, or locked for a moment
        return False


def run_window(argv: list[str], db: Path, log: Path, window: float) -> tuple[int | str, float]:
    """Start ``run_search.py``, let it run ``window`` seconds past its first trial's start, then Ctrl-C it.

    The search's own ``--timeout`` is set far above the window, so its per-trial cap (a quarter of
    the timeout) never cuts a trial short; the interrupted trials are simply not counted.
    """
    start = time.monotonic()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(RUN_SEARCH), *argv],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            while proc.poll() is None and not _trial_started(db):
                if time.monotonic() - start > STARTUP_LIMIT_S:
                    break
                time.sleep(0.5)
            end = time.monotonic() + window
            while proc.poll() is None and time.monotonic() < end:
                time.sleep(0.5)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the search's Ctrl-C path: workers stop, trials are kept
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        except BaseException:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
    return proc.returncode, time.monotonic() - start


def part_workers(args: argparse.Namespace, data_dir: Path, work: Path, out_dir: Path) -> list[dict]:
    rows = []
    for k in args.k_list:
        study = f"workers-{k}"
        db = work / study / "study.db"
        argv = [
            "search",
            "--data-dir",
            str(data_dir),
            "--space",
            "lenet",
            "--epochs",
            "2",
            "--trials",
            "100000",
            "--timeout",
            str(4 * args.worker_seconds + 600),
            "--pruner",
            "none",
            "--sampler",
            "random",
            "--no-retrain",
            "--dashboard-every",
            "0",
            "--workers",
            str(k),
            "--out",
            str(work),
            "--study",
            study,
        ]
        sampler = GpuSampler(out_dir / f"nvidia-smi-workers-{k}.csv")
        code, wall = run_window(argv, db, out_dir / f"workers-{k}.log", args.worker_seconds)
        gpu = sampler.stop()
        stats = study_stats(db, study, window=args.worker_seconds) if db.exists() else {}
        row = {"k": k, "exit": code, "wall_s": wall, "window_s": args.worker_seconds, **stats, **gpu}
        rows.append(row)
        print(
            f"  K={k}: {stats.get('finished', 0)} trials finished in the {args.worker_seconds:.0f}s window -> "
            f"{_bench.fmt(stats.get('trials_per_hour'), 0)} trials/hour (exit {code}, wall {wall:.0f}s)",
            flush=True,
        )
    base = next((r.get("trials_per_hour") for r in rows if r["k"] == 1), None)
    for r in rows:
        r["speedup"] = r["trials_per_hour"] / base if base and r.get("trials_per_hour") else None
    return rows


def part_search(args: argparse.Namespace, data_dir: Path, work: Path, out_dir: Path, workers_rows: list[dict]) -> dict:
    if args.search_workers == "auto":
        rated = [r for r in workers_rows if r.get("trials_per_hour")]
        k = max(rated, key=lambda r: r["trials_per_hour"])["k"] if rated else 1
    else:
        k = int(args.search_workers)
    study = "gpu-search"
    argv = [
        "search",
        "--data-dir",
        str(data_dir),
        "--space",
        args.search_space,
        "--epochs",
        str(args.search_epochs),
        "--trials",
        "100000",
        "--timeout",
        str(args.search_seconds),
        "--no-retrain",
        "--workers",
        str(k),
        "--out",
        str(work),
        "--study",
        study,
    ]
    sampler = GpuSampler(out_dir / "nvidia-smi-search.csv")
    code, wall = run_cli(argv, out_dir / "search.log", timeout=args.search_seconds * 2 + 300)
    gpu = sampler.stop()
    db = work / study / "study.db"
    stats = study_stats(db, study) if db.exists() else {}
    if db.exists():
        shutil.copy(db, out_dir / "search-study.db")
    print(
        f"  search: {stats.get('finished', 0)} trials, best {_bench.fmt(stats.get('best_value'), 4)} "
        f"(exit {code}, wall {wall:.0f}s)",
        flush=True,
    )
    return {
        "workers": k,
        "seconds": args.search_seconds,
        "space": args.search_space,
        "exit": code,
        "wall_s": wall,
        "command": "python run_search.py " + " ".join(argv),
        **stats,
        **gpu,
    }


def tables(results: dict) -> str:
    out = []
    if results.get("epochs"):
        out.append(
            _bench.table(
                ["model", "params", "tool s/epoch", "plain s/epoch", "tool img/s", "1st epoch tool s"],
                [
                    [
                        r["model"],
                        f"{r['params']:,}",
                        r["tool_epoch_s"],
                        r["plain_epoch_s"],
                        f"{r['images_per_s']:.0f}",
                        r["tool_first_epoch_s"],
                    ]
                    for r in results["epochs"]
                ],
                title=f"Seconds per epoch on {results['n_train']} training images "
                "(median after warm-up, incl. validation)",
            )
        )
    if results.get("population"):
        fit = next((r["trials_per_hour"] for r in results["population"] if r["kind"] == "fit"), None)
        out.append(
            _bench.table(
                ["engine", "N", "wall s", "compile s", "trials/hour", "x fit"],
                [
                    [
                        r["kind"],
                        r["size"],
                        r["wall_s"],
                        r["compile_s"],
                        f"{r['trials_per_hour']:.0f}",
                        _bench.fmt(r["trials_per_hour"] / fit if fit else None),
                    ]
                    for r in results["population"]
                ],
                title="Tutorial LeNet trials one at a time and as populations in one program",
            )
        )
    if results.get("workers"):
        out.append(
            _bench.table(
                ["K workers", "trials", "trials/hour", "speedup", "median trial s", "GPU util %", "GPU mem MiB"],
                [
                    [
                        r["k"],
                        r.get("finished", 0),
                        _bench.fmt(r.get("trials_per_hour"), 0),
                        _bench.fmt(r.get("speedup")),
                        r.get("median_trial_s"),
                        _bench.fmt(r.get("gpu_util_mean"), 0),
                        _bench.fmt(r.get("gpu_mem_max_mib"), 0),
                    ]
                    for r in results["workers"]
                ],
                title="Workers sharing one GPU (space lenet, 2 epochs per trial, no pruning)",
            )
        )
    s = results.get("search")
    if s:
        reach = s.get("time_to", {})
        out.append(
            _bench.table(
                ["search", "workers", "trials", "best val acc", "best trial", "time to 0.95", "time to 0.97"],
                [
                    [
                        f"{s['space']}, {s['seconds']:.0f}s",
                        s["workers"],
                        ", ".join(f"{n} {k}" for k, n in sorted(s.get("states", {}).items())) or "0",
                        _bench.fmt(s.get("best_value"), 4),
                        f"#{s.get('best_number')} {s.get('best_family') or ''} {s.get('best_point') or ''}".strip(),
                        f"{reach['0.95']:.0f}s" if "0.95" in reach else "not reached",
                        f"{reach['0.97']:.0f}s" if "0.97" in reach else "not reached",
                    ]
                ],
                title="Search as a user runs it",
            )
        )
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = _bench.begin(args.data_dir)
    out_dir = args.out_dir or _bench.RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    backend = _bench.keras_backend()
    results_file = _bench.results_path("gpu", out_dir, backend)
    print(
        f"parts {', '.join(args.part_list)}: about {estimate_seconds(args) / 60:.0f} minutes; results in "
        f"{results_file}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    results: dict = {"parts": args.part_list, "started": _dt.datetime.now().isoformat(timespec="seconds")}
    code = 0

    def save() -> str:
        text = tables(results)
        _bench.write_results(
            "gpu", out_dir, settings=vars(args), results=results, table=text, started=started, path=results_file
        )
        return text

    try:
        t = time.monotonic()
        dataset = make_data(args, work / "data")
        results.update(n_train=len(dataset.train), n_valid=len(dataset.valid), data_seconds=time.monotonic() - t)
        print(
            f"data: {len(dataset.train)} training images (replicated from {args.data_dir}), "
            f"{len(dataset.valid)} validation",
            flush=True,
        )
        if "epochs" in args.part_list:
            print("== epochs", flush=True)
            results["epochs"] = part_epochs(args, dataset)
            save()
        if "population" in args.part_list:
            print("== population", flush=True)
            results["population"] = part_population(args, dataset)
            save()
        del dataset
        if "workers" in args.part_list:
            print("== workers", flush=True)
            results["workers"] = part_workers(args, work / "data", work / "runs", out_dir)
            save()
        if "search" in args.part_list:
            print("== search", flush=True)
            results["search"] = part_search(args, work / "data", work / "runs", out_dir, results.get("workers", []))
    except Exception as exc:  # keep what was measured, say what broke
        results["error"] = f"{type(exc).__name__}: {exc}"
        print(f"error: {results['error']}", file=sys.stderr)
        code = 1
    finally:
        text = save()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nresults: {results_file}\n{text}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
