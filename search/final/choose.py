"""Pick the final model among candidates (single, ensemble, TTA, calibrated) on validation data.

``test.p`` plays no part: it is scored once, on the pick, elsewhere. The rule keeps the retrained
single best unless another option is at least as accurate on validation, so the extra machinery
of an ensemble or TTA is only paid for when it helps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .calibration import negative_log_likelihood
from .combine import DEFAULT_SHIFTS

SINGLE = "single"


@dataclass(frozen=True, eq=False)
class Option:
    """One candidate final model: its validation probabilities and what it is made of.

    ``members`` are the trial numbers of the models it averages (one for "single"), ``parts`` their
    places in the final stage's pool of models and ``weights`` their weights (ensemble selection's;
    empty: equal), ``tta`` whether inputs are averaged over small shifts, ``temperature`` the
    calibration temperature (1.0: none). Together they are what
    :func:`search.final.combine.assemble` takes.
    """

    name: str
    probs: np.ndarray
    members: tuple[int, ...]
    tta: bool = False
    temperature: float = 1.0
    parts: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()

    def correct(self, labels: np.ndarray) -> int:
        """Validation images predicted right."""
        return int((np.asarray(self.probs).argmax(axis=1) == np.asarray(labels).reshape(-1)).sum())

    def nll(self, labels: np.ndarray) -> float:
        """Validation negative log-likelihood (the tie-break)."""
        return negative_log_likelihood(self.probs, labels)

    def cost(self) -> int:
        """Forward passes per image; breaks exact ties towards the cheaper model."""
        return len(self.members) * (len(DEFAULT_SHIFTS) if self.tta else 1)

    def describe(self, labels: np.ndarray) -> dict:
        """JSON-ready summary: what it is and how it scored on validation."""
        n = len(np.asarray(labels).reshape(-1))
        correct = self.correct(labels)
        return {
            "name": self.name,
            "members": list(self.members),
            "weights": list(self.weights),
            "tta": self.tta,
            "temperature": self.temperature,
            "val_correct": correct,
            "val_accuracy": correct / n if n else 0.0,
            "val_nll": self.nll(labels),
        }


def choose(options: Sequence[Option], labels: np.ndarray) -> Option:
    """The option to ship: the best validation accuracy, near-ties broken by validation NLL.

    1. Only options with at least as many correct validation images as "single" compete
       ("single" itself always does).
    2. Among them, those within one image of the most correct are tied; the lowest NLL wins
       (then the fewest forward passes, then "single", then the earlier option).

    So the pick is never worse than "single" on validation: either strictly more accurate or as
    accurate with an NLL no higher. The one image of slack means a lucky +1 alone does not buy a
    5x model: it must also have the lower NLL.
    """
    labels = np.asarray(labels).reshape(-1)
    options = list(options)
    singles = [o for o in options if o.name == SINGLE]
    if len(singles) != 1:
        raise ValueError(f"the options must hold exactly one named {SINGLE!r}, not {len(singles)}")
    for o in options:
        if np.shape(o.probs)[:1] != labels.shape:
            raise ValueError(f"option {o.name!r} has {np.shape(o.probs)[0]} validation rows for {len(labels)} labels")
    correct = {id(o): o.correct(labels) for o in options}
    floor = correct[id(singles[0])]
    eligible = [o for o in options if correct[id(o)] >= floor]
    top = max(correct[id(o)] for o in eligible)
    tied = [
        (o.nll(labels), o.cost(), o.name != SINGLE, i, o) for i, o in enumerate(eligible) if correct[id(o)] >= top - 1
    ]
    return min(tied, key=lambda t: t[:4])[4]
