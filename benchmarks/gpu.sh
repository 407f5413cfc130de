#!/usr/bin/env bash
# GPU benchmarks in one go, for a GPU machine without TensorFlow (Keras on JAX; see ../shared/GPU.md).
#
# On the GPU machine, from the project root (wheels in .whl/, data in .gpudata/):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site KERAS_BACKEND=jax && bash benchmarks/gpu.sh
# Under a 10-minute limit per command, run it in three calls:
#   bash benchmarks/gpu.sh --parts epochs,population  # about 5 minutes
#   bash benchmarks/gpu.sh --parts workers            # about 5 minutes
#   bash benchmarks/gpu.sh --parts search             # about 5.5 minutes
# Dry run on a CPU machine:  KERAS_BACKEND=tensorflow bash benchmarks/gpu.sh --dry-run
#
# Prints nvidia-smi and the library versions, runs benchmarks/gpu.py (arguments are passed on), writes
# everything to $OUT when it is set (else benchmarks/results/), and prints a short table last.
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
for arg in "$@"; do
  case "$arg" in -h|--help) exec "$PY" benchmarks/gpu.py --help ;; esac
done
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST"
ENV_TXT="$DEST/gpu-env-$(date +%Y-%m-%d-%H%M%S).txt"
{
  echo "== $(date -Is) on $(hostname), KERAS_BACKEND=$KERAS_BACKEND"
  echo "== nvidia-smi"
  nvidia-smi 2>&1 || echo "(nvidia-smi not available)"
  echo "== python and libraries"
  "$PY" - <<'EOF'
import platform, sys
from importlib import metadata
print("python", platform.python_version(), sys.executable, "|", platform.platform())
for name in ("keras", "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "tensorflow", "optuna",
             "keras-tuner", "numpy", "sqlalchemy", "torch"):
    try:
        print(f"  {name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
try:
    import jax
    print("  jax devices:", jax.devices())
except Exception as exc:  # no JAX (CPU dry run with TensorFlow) or no GPU runtime
    print("  jax devices: unavailable:", type(exc).__name__, str(exc)[:200])
EOF
  echo "== CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
} 2>&1 | tee "$ENV_TXT"
"$PY" benchmarks/gpu.py --out-dir "$DEST" "$@"
