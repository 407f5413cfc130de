"""Both families in one space (registered as ``all``): model selection by ``hp.Choice("family")``.

Shared front-end and training params are top-level; each family's architecture params live under
``conditional_scope("family", [fam])`` and ``name_scope(fam)`` (e.g. ``cnn/conv_blocks``), so a
tuner sees the whole space at once and only the chosen family is built. The families' own
``arch_params`` / ``build_arch`` are reused, not copied.
"""

from __future__ import annotations

from typing import Any

import keras

from spaces import common
from spaces.families import FAMILIES

NAME = "all"
PARAM_CEILING = max(m.PARAM_CEILING for m in FAMILIES.values())


def arch_params(hp: Any) -> dict[str, Any]:
    """Declare ``family`` and every family's scoped params; return the chosen family's."""
    family = hp.Choice("family", list(FAMILIES), default="cnn")
    chosen: dict[str, Any] = {}
    for fam, module in FAMILIES.items():
        with hp.conditional_scope("family", [fam]), hp.name_scope(fam):
            params = module.arch_params(hp)
        if fam == family:
            chosen = params
    return {"family": family, "params": chosen}


def build_arch(p: dict[str, Any], x: Any) -> Any:
    """Build only the chosen family's trunk."""
    return FAMILIES[p["family"]].build_arch(p["params"], x)


def declare(hp: Any) -> dict[str, Any]:
    """Declare the whole space on ``hp`` (no model is built)."""
    return common.declare(hp, arch_params)


def build(hp: Any, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """The compiled model of the chosen family for ``hp``'s values."""
    return common.build_model(hp, input_shape, n_classes, arch_params, build_arch, NAME)


def family_of(values: dict[str, Any]) -> str:
    """The family a values dict selects (the space default when it names none)."""
    return str(values.get("family", "cnn"))


def lift(family: str, values: dict[str, Any]) -> dict[str, Any]:
    """A family's values dict as a point of this space (architecture keys get the family prefix)."""
    module = FAMILIES[family]
    shared = set(common.shared_names())
    arch = set(common.declared_names(module.arch_params))
    unknown = set(values) - shared - arch
    if unknown:
        raise ValueError(f"not parameters of {family}: {sorted(unknown)}")
    return {"family": family, **{(k if k in shared else f"{family}/{k}"): v for k, v in values.items()}}


# Enqueue order is run order. The two lean CNNs come first: they are the search's first good models
# (and the bar the screen sets for sampled configurations), and every second spent before them delays
# that answer (at 600 s, KerasTuner's first trial, a random draw as good as `strong`, reached 97%
# before ours did while the two tutorial models ran first; BENCHMARKS.md, 2026-12-04; `lean` is such a
# draw, 2026-12-06). The tutorial models are cheap and run next. `strong` runs last: at 600 s it took
# its 120 s cap for 0.961-0.975, 2-3 points below `lean` (2026-12-07 01:20).
POINTS: dict[str, dict[str, Any]] = {
    f"{fam}_{point}": lift(fam, values)
    for fam, point in (("cnn", "lean2"), ("cnn", "lean"), ("cnn", "tutorial"), ("lenet", "tutorial"), ("cnn", "strong"))
    for values in [FAMILIES[fam].POINTS[point]]
}
