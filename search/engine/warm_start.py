"""``--warm-start``: an earlier study's best configurations become this study's first trials.

A second search on new data (more images, another split) should start where the first ended, not
from scratch: the best ``WARM_START_TOP`` distinct configurations of each source study are enqueued
as named points (``warm:<study>#<trial>``), after the space's own, so they run first and, as
anchors, are never pruned. Sources are read before anything is written to the new study, so a
missing one is a one-line error and no half-made study is left behind; the items done are recorded
in the study (``StudyKey.WARM_STARTED``) so a resume, a ``join`` or a ``--workers`` child never
reads a source again (it may be on a machine that cannot see it).

A source trial's params are mapped onto the current space: a family space's trial gains
``family`` and the family's name prefix in ``all`` (``spaces.combined.lift``), an ``all`` trial
loses them in its own family's space, and params the current space does not declare are dropped.
A configuration whose family the space cannot build is skipped with a message, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from spaces.hp import ParamSpec, ValuesHyperParameters

from ..config import SearchConfig
from ..errors import UserError
from ..schema import StudyKey, TrialKey, distinct_top, redact, redact_url, tie_break_of
from .study import open_existing

if TYPE_CHECKING:
    from spaces.space import Space

WARM_START_TOP = 3  # distinct configurations taken from each source study
PREFIX = "warm:"


@dataclass(frozen=True)
class Source:
    """One ``--warm-start`` item and the configurations read from it (best first)."""

    item: str  # as given: NAME or STORAGE_URL#NAME
    name: str
    url: str | None  # None: the study's own --storage / <out>/NAME/study.db
    trials: tuple[FrozenTrial, ...] = ()

    @property
    def shown(self) -> str:
        return redact_url(self.item)


def parse_item(item: str) -> Source:
    """``NAME`` or ``STORAGE_URL#NAME`` (any Optuna storage URL)."""
    if "://" not in item:
        return Source(item=item, name=item, url=None)
    url, _, name = item.rpartition("#")
    if not url or not name.strip():
        raise UserError("expected NAME or STORAGE_URL#NAME")
    return Source(item=item, name=name.strip(), url=url)


def read_new(cfg: SearchConfig, recorded: Iterable[str]) -> list[Source]:
    """The items of ``cfg.warm_start`` not yet enqueued, with their best configurations.

    Raises ``UserError`` (one line, naming the item) for a study that does not exist, a storage
    that cannot be opened, or the study itself. A rerun stores its settings before the study is
    opened, so the message says how to get rid of the item: a resume would meet it again.
    """
    done = set(recorded)  # items as stored: their URLs redacted (older studies stored them whole)
    sources = []
    for item in dict.fromkeys(cfg.warm_start):
        if item in done or redact_url(item) in done:
            continue
        try:
            sources.append(_read(cfg, parse_item(item)))
        except UserError as exc:
            raise UserError(
                f"--warm-start {redact_url(item)}: {redact(str(exc))} (leave it out of --warm-start)"
            ) from None
    return sources


def _read(cfg: SearchConfig, source: Source) -> Source:
    if source.name == cfg.study_name and (source.url is None or _same_storage(source.url, cfg.storage_url)):
        raise UserError("that is this study itself; name an earlier study")
    if source.url is not None:
        _refuse_missing_sqlite(source)
    study = open_existing(source.name, source.url or cfg.storage, cfg.out)
    return Source(source.item, source.name, source.url, tuple(best_configurations(study)))


def best_configurations(study: optuna.Study, k: int = WARM_START_TOP) -> list[FrozenTrial]:
    """The best ``k`` distinct COMPLETE trials, ranked as the final stage ranks its candidates."""
    return distinct_top(study.get_trials(deepcopy=False), k, list(study.directions), tie_break_of(study))


def enqueue(
    study: optuna.Study, sources: list[Source], space: Space, say: Callable[[str], None] | None = None
) -> list[str]:
    """Enqueue the sources' configurations as named points and record the items as done.

    Returns the messages (also passed to ``say``): what was enqueued, what was skipped and why.
    """
    messages: list[str] = []
    if not sources:
        return messages
    declared = _declared(space)
    for source in sources:
        if not source.trials:
            messages.append(
                f"warning: --warm-start {source.shown}: study {source.name!r} has no completed "
                "trial; nothing enqueued from it"
            )
            continue
        labels = []
        for trial in source.trials:
            label = f"{PREFIX}{source.name}#{trial.number}"
            params, problem = map_params(trial, space, declared)
            if params is None:
                messages.append(f"--warm-start: skipped {label}: {problem}")
                continue
            before = len(study.get_trials(deepcopy=False))
            study.enqueue_trial(params, user_attrs={TrialKey.POINT: label}, skip_if_exists=True)
            if len(study.get_trials(deepcopy=False)) == before:
                label += " (already in the study)"
            labels.append(label + (f" (dropped {problem})" if problem else ""))
        if labels:
            messages.append(f"warm start from study {source.name!r}: {', '.join(labels)}")
    recorded = list(study.user_attrs.get(StudyKey.WARM_STARTED, []))
    items = [redact_url(s.item) for s in sources]  # the study keeps no password
    study.set_user_attr(StudyKey.WARM_STARTED, recorded + [i for i in dict.fromkeys(items) if i not in recorded])
    for message in messages if say is not None else ():
        say(message)
    return messages


def map_params(
    trial: FrozenTrial, space: Space, declared: set[str] | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The trial's configuration as a complete point of ``space``, or None and why it cannot be.

    With a point, the second value names the source params the space does not declare (dropped),
    or is None when every param was kept.
    """
    declared = _declared(space) if declared is None else declared
    given = dict(trial.params)
    family = trial.user_attrs.get(TrialKey.FAMILY) or given.get("family")
    try:
        if "family" in given and "family" not in declared:  # from ``all`` into one family's space
            prefix = f"{given.pop('family')}/"
            given = {k.removeprefix(prefix): v for k, v in given.items()}
        elif "family" not in given and family in getattr(space, "FAMILIES", {}):  # into ``all``
            given = space.lift(family, given)
        hp = ValuesHyperParameters({k: v for k, v in given.items() if k in declared})
        space.declare(hp)
        built = space.family_of(hp.values)
    except (ValueError, TypeError) as exc:
        return None, f"the space cannot take it ({exc})"
    if family and str(built) != str(family):
        return None, f"family {family!r} is not in space {space.NAME!r}"
    bad = [name for name, value in hp.values.items() if not _fits(hp.space[name], value)]
    if bad:
        return None, f"values outside the space's ranges: {', '.join(f'{n}={hp.values[n]!r}' for n in bad)}"
    dropped = sorted(set(given) - declared)
    return dict(hp.values), (f"params not in the space: {', '.join(dropped)}" if dropped else None)


def _declared(space: Space) -> set[str]:
    """Every name the space declares, conditional ones included."""
    hp = ValuesHyperParameters()
    space.declare(hp)
    return set(hp.space)


def _fits(spec: ParamSpec, value: Any) -> bool:
    """Whether Optuna can take ``value`` as a fixed param of ``spec``'s distribution."""
    grid = spec.grid()
    if spec.kind in ("choice", "boolean", "fixed") or grid is not None:
        choices = grid if grid is not None else spec.values
        return any(value == c and type(value) is type(c) or _close(value, c) for c in choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if spec.kind == "int" and float(value) != int(value):
        return False
    return float(spec.min_value) - 1e-9 <= float(value) <= float(spec.max_value) + 1e-9  # type: ignore[arg-type]


def _close(a: Any, b: Any) -> bool:
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    return numbers and math.isclose(float(a), float(b), rel_tol=1e-9)


def _same_storage(a: str, b: str) -> bool:
    """Two URLs of one storage (SQLite: the same file, however the path is written)."""
    if a.startswith("sqlite") and b.startswith("sqlite"):
        try:
            pa, pb = make_url(a).database, make_url(b).database
        except ArgumentError:
            return a == b
        return bool(pa and pb) and Path(pa).resolve() == Path(pb).resolve()
    return a == b


def _refuse_missing_sqlite(source: Source) -> None:
    """Opening a SQLite URL whose file does not exist would create an empty database there."""
    try:
        url = make_url(source.url or "")
    except ArgumentError:
        raise UserError("not a storage URL") from None
    if (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not Path(url.database).exists()
    ):
        raise UserError(f"no study {source.name!r}: {url.database} does not exist")
