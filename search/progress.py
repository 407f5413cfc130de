"""Terminal output of a search: one honest line per finished trial and a summary table at the end."""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from optuna.trial import FrozenTrial, TrialState

KEY_PARAMS = ("family", "optimizer", "learning_rate", "batch_size", "augment", "batch_norm")


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def key_params(params: dict, limit: int = 6) -> str:
    """The parameters a person scans first, then the rest, cut to ``limit``."""
    ordered = sorted(params, key=lambda k: (not any(k.endswith(p) for p in KEY_PARAMS), k))
    return " ".join(f"{k.split('/')[-1]}={_short(params[k])}" for k in ordered[:limit])


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def bar(done: int, total: int, width: int = 20) -> str:
    total = max(total, 1)
    filled = min(width, int(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


class Progress:
    """Prints a line per finished trial with a bar over the study's trial target."""

    def __init__(self, target: int, *, timeout: float | None = None, stream: TextIO | None = None) -> None:
        self.target, self.timeout = target, timeout
        self.stream = stream or sys.stdout
        self.start = time.monotonic()

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def trial_line(self, trial: FrozenTrial, finished: int, best: float | None) -> None:
        ua = trial.user_attrs
        state = trial.state.name
        value = f"{trial.values[0]:.4f}" if trial.values else "  -   "
        if trial.state == TrialState.PRUNED and ua.get("val_curve"):
            value = f"{max(ua['val_curve']):.4f}"
        elapsed = time.monotonic() - self.start
        clock = format_duration(elapsed) + (f"/{format_duration(self.timeout)}" if self.timeout else "")
        point = f" [{ua['point']}]" if ua.get("point") else f" [near #{ua['near']}]" if "near" in ua else ""
        cost = f"{ua.get('epochs', 0)}ep {ua.get('seconds', 0):.0f}s {ua.get('params', 0) / 1e3:.0f}k"
        best_txt = f"best {best:.4f}" if best is not None else "best -"
        line = (f"{bar(finished, self.target)} trial {trial.number:>3} {state:<8} val_acc {value} "
                f"{best_txt} | {cost} | {clock}{point} {key_params(trial.params)}")
        if trial.state == TrialState.FAIL and ua.get("fail_reason"):
            line += f"\n      failed: {ua['fail_reason']}"
        self.say(line)


def summary_table(trials: Sequence[FrozenTrial], *, top: int = 5) -> str:
    """Counts by state, total cost, and the best trials with their key parameters."""
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    seconds = sum(float(t.user_attrs.get("seconds", 0.0)) for t in trials)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    done.sort(key=lambda t: -t.values[0])
    lines = ["Search summary",
             "  trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())),
             f"  training time: {format_duration(seconds)} in all, "
             f"{format_duration(seconds / max(len(trials), 1))} per trial"]
    near = [t for t in trials if "near" in t.user_attrs and t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if near:
        value = {t.number: t.values[0] for t in done}
        better = sum(1 for t in near if t.values and t.values[0] > value.get(t.user_attrs["near"], 1.0))
        lines.append(f"  local search: {len(near)} neighbours of the best trial tried, {better} beat it")
    if done:
        lines.append(f"  {'trial':>5} {'val_acc':>8} {'epochs':>6} {'seconds':>8} {'params':>9}  parameters")
        for t in done[:top]:
            ua = t.user_attrs
            lines.append(f"  {t.number:>5} {t.values[0]:>8.4f} {ua.get('epochs', 0):>6} "
                         f"{ua.get('seconds', 0):>8.1f} {ua.get('params', 0):>9}  {key_params(t.params, 8)}")
    else:
        lines.append("  no completed trial yet")
    return "\n".join(lines)
