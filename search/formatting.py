"""How values read in progress lines and reports: durations (``45s``, ``3m07s``, ``1h02m``) and the
parameters of a configuration a person scans first."""

from __future__ import annotations

KEY_PARAMS = ("family", "optimizer", "learning_rate", "batch_size", "augment", "batch_norm")


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def key_params(params: dict, limit: int = 6) -> str:
    """The parameters a person scans first, then the rest, cut to ``limit``."""
    ordered = sorted(params, key=lambda k: (not any(k.endswith(p) for p in KEY_PARAMS), k))
    return " ".join(f"{k.split('/')[-1]}={_short(params[k])}" for k in ordered[:limit])


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
