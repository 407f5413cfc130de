"""Which Keras dtype policy ``--precision`` puts in effect, ``auto`` included.

``auto`` picks ``mixed_bfloat16`` only where bfloat16 is done in hardware, and float32 elsewhere:

* a GPU or TPU decides for itself when the backend sees one: TPUs and NVIDIA GPUs of compute
  capability 8.0 or later (A100, H100...) have bfloat16 units; older GPUs do not. Not measured here yet.
* on a CPU, under TensorFlow only: the flags ``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``.
  Measured (BENCHMARKS.md, "Mixed bfloat16 on a CPU with AVX512-BF16", ``benchmarks/precision.py``):
  the ``lean2`` point needed 1.34-1.35x less CPU time per epoch in mixed_bfloat16 on an AMD EPYC with
  AVX512-BF16 and no AMX (wall time 1.15-1.39x, noisy on a shared host), at validation accuracy within
  the seed spread after three epochs of the real sample. Without those flags bfloat16 is emulated.
  JAX and PyTorch on a CPU keep float32 (not measured to pay).

Any error while looking (no ``/proc/cpuinfo``, a driver that cannot be asked) means float32.
Keras' own ``clear_session`` resets the policy to float32; ``session.fresh_session`` puts it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

AUTO = "auto"
BFLOAT16 = "mixed_bfloat16"
FLOAT32 = "float32"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # bfloat16 dot products in the CPU's vector / matrix units
CPU_BACKENDS = ("tensorflow",)  # backends whose CPU kernels were measured faster in bfloat16
MIN_CUDA_CAPABILITY = (8, 0)  # Ampere: the first NVIDIA GPUs with bfloat16 tensor cores
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Precision:
    """A resolved policy and the fact that chose it (shown once on the command line)."""

    policy: str
    reason: str = ""

    def describe(self, name: str) -> str:
        """``precision: auto -> mixed_bfloat16 (CPU has avx512_bf16)``, or ``precision: float32``."""
        if name != AUTO:
            return f"precision: {self.policy}"
        return f"precision: auto -> {self.policy} ({self.reason})"


def resolve_precision(name: str) -> str:
    """The Keras dtype policy that ``--precision name`` means on this machine and backend."""
    return choose_precision(name).policy


def choose_precision(name: str) -> Precision:
    """``name`` itself, or for ``auto`` the policy the hardware pays for, with the reason.
    Call it after the backend has started (it asks the backend for its devices)."""
    if name != AUTO:
        return Precision(name)
    try:
        accelerator = accelerator_bfloat16()
    except Exception as exc:  # a driver that cannot be asked is no reason to fail the run
        return Precision(FLOAT32, f"could not ask the accelerator: {type(exc).__name__}")
    if accelerator is not None:
        device, has_bf16 = accelerator
        return (
            Precision(BFLOAT16, f"{device} has bfloat16")
            if has_bf16
            else Precision(FLOAT32, f"{device} has no bfloat16 units")
        )
    backend = keras_backend()
    found = [flag for flag in CPU_BF16_FLAGS if flag in cpu_flags()]
    if not found:
        return Precision(FLOAT32, "CPU has neither " + " nor ".join(CPU_BF16_FLAGS))
    if backend not in CPU_BACKENDS:
        return Precision(FLOAT32, f"CPU has {found[0]}, but bfloat16 was measured faster under TensorFlow only")
    return Precision(BFLOAT16, f"CPU has {', '.join(found)}")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none: not Linux)."""
    try:
        with CPUINFO.open() as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def keras_backend() -> str:
    import keras

    return keras.backend.backend()


def accelerator_bfloat16() -> tuple[str, bool] | None:
    """(the first GPU/TPU the backend trains on, whether it has bfloat16 units); None on a CPU.
    A GPU whose compute capability cannot be read counts as one without."""
    backend = keras_backend()
    if backend == "jax":
        return _jax_accelerator()
    if backend == "tensorflow":
        return _tensorflow_accelerator()
    if backend == "torch":
        return _torch_accelerator()
    return None


def _has_bf16(capability: tuple[int, ...] | None) -> bool:
    return capability is not None and tuple(capability[:2]) >= MIN_CUDA_CAPABILITY


def _jax_accelerator() -> tuple[str, bool] | None:
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    if device.platform == "tpu":
        return device.device_kind, True
    capability = getattr(device, "compute_capability", None)  # "9.0" on CUDA; absent or "gfx..." on ROCm
    try:
        parsed = tuple(int(part) for part in str(capability).split(".")[:2])
    except ValueError:
        parsed = None
    return f"{device.device_kind} (compute capability {capability})", _has_bf16(parsed)


def _tensorflow_accelerator() -> tuple[str, bool] | None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability")
    name = details.get("device_name", gpus[0].name)
    shown = ".".join(map(str, capability)) if capability else "unknown"
    return f"{name} (compute capability {shown})", _has_bf16(capability)


def _torch_accelerator() -> tuple[str, bool] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    capability = torch.cuda.get_device_capability(0)
    return f"{torch.cuda.get_device_name(0)} (compute capability {capability[0]}.{capability[1]})", _has_bf16(
        capability
    )


def apply_precision(policy: str) -> None:
    """Make ``policy`` Keras' global dtype policy for every model built from now on."""
    import keras

    keras.config.set_dtype_policy(policy)
