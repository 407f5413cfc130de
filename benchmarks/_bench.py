"""What every benchmark script shares: data checks, machine facts, tables and the results file.

Nothing here imports Keras or TensorFlow at module level, so ``--help`` answers at once; call
:func:`setup_env` before the first Keras import so every benchmark runs in the same environment
as ``run_search.py`` (which sets these variables before it imports anything heavy).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "gtsrb-sample"
RESULTS_DIR = ROOT / "benchmarks" / "results"
PACKAGES = ("keras", "tensorflow", "jax", "jaxlib", "optuna", "keras-tuner", "numpy")
EXIT_NO_DATA = 2


def setup_env() -> None:
    """The environment ``run_search.py`` gives itself (``cli/backend.py`` ``quiet_backends``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import logging
    import warnings

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")


def add_common_args(parser: Any, *, results: bool = True) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"folder with train.p and valid.p (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--max-train",
        type=int,
        default=None,
        help="use a seeded random subset of this many training images (default: all)",
    )
    parser.add_argument(
        "--max-valid",
        type=int,
        default=None,
        help="use a seeded random subset of this many validation images (default: all)",
    )
    if results:
        parser.add_argument(
            "--results-dir",
            type=Path,
            default=RESULTS_DIR,
            help="where the JSON results go (default benchmarks/results/)",
        )


def add_models_arg(parser: Any, default: str) -> None:
    parser.add_argument("--models", default=default, help=f"comma-separated space:point list (default {default})")


def add_space_arg(parser: Any, default: str, flag: str = "--space") -> None:
    """A built-in space by name, checked against the registry (``spaces/registry.py``) when parsed."""
    parser.add_argument(
        flag,
        default=default,
        type=space_name,
        help=f"a built-in space: a family of spaces/families.py or all (default {default})",
    )


def space_name(name: str) -> str:
    """``name`` if the registry has it; argparse turns the error into one line and exit 2."""
    import argparse

    import spaces

    if name not in spaces.SPACES:
        raise argparse.ArgumentTypeError(f"unknown space {name!r}; choose from {', '.join(spaces.SPACES)}")
    return name


def named_models(text: str) -> list[tuple[str, Any, dict]]:
    """``space:point,...`` as (name, space module, the point's values); exits 2 with one line when a
    name is unknown or the list is empty."""
    import spaces

    models = []
    for item in [m.strip() for m in text.split(",") if m.strip()]:
        space_name, _, point = item.partition(":")
        space = spaces.get_space(space_name)
        if point not in space.POINTS:
            print(
                f"error: space {space_name!r} has no point {point!r} (has: {', '.join(space.POINTS)})", file=sys.stderr
            )
            raise SystemExit(EXIT_NO_DATA)
        models.append((item, space, space.POINTS[point]))
    if not models:
        print("error: --models names no model (give space:point, e.g. lenet:tutorial)", file=sys.stderr)
        raise SystemExit(EXIT_NO_DATA)
    return models


def begin(data_dir: Path) -> float:
    """Every benchmark's start: its clock, quiet libraries, and an early exit when there is no
    data (before TensorFlow is imported, so a wrong path costs no seconds). Returns the start time."""
    started = time.time()
    setup_env()
    require_data(data_dir)
    return started


def begin_jax(data_dir: Path, what: str) -> float:
    """``begin`` for a benchmark of JAX-only code (``what``): KERAS_BACKEND defaults to jax, and any
    other backend exits 2 with one line."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    started = begin(data_dir)
    backend = keras_backend()
    if backend != "jax":
        print(f"error: {what} needs the JAX backend; KERAS_BACKEND is {backend}", file=sys.stderr)
        raise SystemExit(EXIT_NO_DATA)
    return started


def require_data(data_dir: Path) -> Path:
    """Exit with one clear line when ``data_dir`` has no training file."""
    from search.data import find_split_file

    data_dir = Path(data_dir)
    if not data_dir.is_dir() or find_split_file(data_dir, "train") is None:
        print(
            f"error: no data in {data_dir} (a data folder needs train.p, ideally valid.p). Pass "
            "--data-dir, or make a small synthetic folder first:\n  python run_search.py data synth "
            "--out /tmp/bsynth --n-train 2000 --n-valid 500 --n-test 500",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_NO_DATA)
    return data_dir


def load_data(data_dir: Path, *, max_train: int | None = None, max_valid: int | None = None, seed: int = 0) -> Any:
    """``search.data.load_dataset`` plus optional seeded subsets (for quick runs)."""
    import numpy as np

    from search.data import Split, load_dataset

    dataset = load_dataset(require_data(data_dir), seed=seed)
    rng = np.random.default_rng(seed)

    def subset(split: Split, limit: int | None) -> Split:
        if limit is None or limit >= len(split):
            return split
        idx = np.sort(rng.permutation(len(split))[:limit])
        return Split(split.features[idx], split.labels[idx], path=split.path)

    return dataclasses.replace(dataset, train=subset(dataset.train, max_train), valid=subset(dataset.valid, max_valid))


def rss_mb() -> float:
    """Resident set size of this process in MiB (VmRSS of /proc/self/status)."""
    return _proc_status_kb("VmRSS") / 1024.0


def peak_rss_mb() -> float:
    return _proc_status_kb("VmHWM") / 1024.0


def _proc_status_kb(key: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpuinfo_field(name: str) -> str | None:
    """The first value of ``name`` in /proc/cpuinfo (None where there is no such file or field)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_vector_flags() -> list[str]:
    """The SIMD extensions that decide CPU training speed (the same "AMD EPYC" came with and without AVX-512)."""
    flags = set((_cpuinfo_field("flags") or "").split())
    return sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile"})


def _cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor()


def _mem_total_gb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(float(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return {"commit": head or None, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def gpu_names() -> list[str]:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def keras_backend() -> str:
    """The Keras backend, without importing Keras (and TensorFlow) just to ask."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        return str(json.loads(config.read_text()).get("backend", "tensorflow"))
    except (OSError, ValueError):
        return "tensorflow"


def machine_info() -> dict[str, Any]:
    """Facts a reader needs to compare numbers: CPUs, load, platform, backend, versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": _cpu_model(),
        "cpu_vector_flags": _cpu_vector_flags(),
        "mem_total_gb": _mem_total_gb(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "keras_backend": keras_backend(),
        "versions": {p: _version(p) for p in PACKAGES if _version(p)},
        "gpus": gpu_names(),
        "env": {
            k: os.environ[k]
            for k in ("TF_ENABLE_ONEDNN_OPTS", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
            if k in os.environ
        },
        "git": _git(),
    }


def command() -> str:
    return "python " + shlex.join(sys.argv)


def today() -> str:
    return _dt.date.today().isoformat()


def results_path(name: str, results_dir: Path, backend: str) -> Path:
    """``<dir>/<name>-<backend>-<date>.json``; a second run on the same day gets ``-2``, ``-3``..."""
    results_dir.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{backend}-{today()}"
    path = results_dir / f"{base}.json"
    n = 2
    while path.exists():
        path = results_dir / f"{base}-{n}.json"
        n += 1
    return path


def write_results(
    name: str,
    results_dir: Path,
    *,
    settings: dict[str, Any],
    results: Any,
    table: str,
    started: float,
    path: Path | None = None,
) -> Path:
    """One JSON file: what was run, where, when, the numbers and the printed table."""
    machine = machine_info()
    payload = {
        "benchmark": name,
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": command(),
        "cwd": os.getcwd(),
        "wall_seconds": round(time.time() - started, 1),
        "machine": machine,
        "settings": _jsonable(settings),
        "results": _jsonable(results),
        "table": table,
    }
    path = path or results_path(name, Path(results_dir), machine["keras_backend"])
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def median(values: Iterable[float]) -> float:
    vals = [v for v in values if v == v]
    return statistics.median(vals) if vals else float("nan")


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> str:
    """A plain aligned text table (also valid Markdown, so it pastes into BENCHMARKS.md)."""
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [f"| {' | '.join(c.ljust(w) for c, w in zip(row, widths))} |" for row in cells]
    lines.insert(1, f"|{'|'.join('-' * (w + 2) for w in widths)}|")
    return (f"{title}\n" if title else "") + "\n".join(lines)
