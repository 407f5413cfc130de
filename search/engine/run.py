"""A search job's inputs, resolved once before anything trains: the ``Run``.

The command line (or a test, a benchmark, a ``--workers`` child) hands ``open_run`` its settings
and the data it checked; ``open_run`` loads the space and checks it on that data, reads the
``--warm-start`` sources, and only then opens the study (created, or resumed with its guards) and
enqueues the sources' configurations. The search loop and the final stage receive the ``Run`` and
never reopen the study, reload the space or read a source again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna

from ..config import SearchConfig
from ..data import Dataset
from ..schema import StudyKey
from .engines import resolve_engine
from .population import resolve_population
from .study import check_user_space, load_space, make_storage, open_study, stored_attrs
from .warm_start import Source, enqueue, read_new

if TYPE_CHECKING:
    from spaces.space import Space


@dataclass(frozen=True)
class Run:
    """Settings after overrides, the data, the space, the opened study and the warm-start sources read."""

    cfg: SearchConfig
    dataset: Dataset
    space: Space
    study: optuna.Study
    warm: tuple[Source, ...] = ()  # sources enqueued by this process (none when all were done before)
    pruner_name: str = ""  # as the search's first line names it


def check_search(cfg: SearchConfig, dataset: Dataset) -> Space:
    """What a search checks before it writes anything: the space loads and (a user's) builds on this
    data, and the engine and population settings suit the backend. Returns the space."""
    space = load_space(cfg.space)
    check_user_space(space, dataset.input_shape, dataset.n_classes)
    resolve_engine(cfg.engine)  # --engine compiled under another backend: one line before any trial
    resolve_population(cfg)
    return space


def open_run(
    cfg: SearchConfig,
    dataset: Dataset,
    *,
    space: Space | None = None,
    storage: optuna.storages.BaseStorage | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    worker_index: int = 0,
    say: Callable[[str], None] | None = None,
    warm: list[Source] | None = None,
) -> Run:
    """Check the space on the data, then open the study for searching (``open_search_study``).
    ``space``, ``storage`` and ``warm`` are what the caller has already (loaded, opened, read), if anything."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = space if space is not None else check_search(cfg, dataset)
    storage = storage if storage is not None else make_storage(cfg)
    study, warm = open_search_study(
        cfg, storage, dataset.content_hash, space, pruner=pruner, worker_index=worker_index, say=say, warm=warm
    )
    shown = "none (multi-objective)" if cfg.multi_objective else type(pruner).__name__ if pruner else cfg.pruner
    return Run(cfg, dataset, space, study, tuple(warm), shown)


def open_search_study(
    cfg: SearchConfig,
    storage: optuna.storages.BaseStorage,
    data_hash: str,
    space: Space,
    *,
    pruner: optuna.pruners.BasePruner | None = None,
    worker_index: int = 0,
    say: Callable[[str], None] | None = None,
    warm: list[Source] | None = None,
) -> tuple[optuna.Study, list[Source]]:
    """The study opened for searching, and the warm-start sources it took: the sources not enqueued yet
    are read first (a bad one is refused before anything is written), then the study is created or
    resumed (``study.open_study``) and their configurations are enqueued after the named points."""
    if warm is None:
        warm = read_new(cfg, (stored_attrs(storage, cfg.study_name) or {}).get(StudyKey.WARM_STARTED, []))
    study = open_study(cfg, storage, data_hash, space, pruner, worker_index=worker_index)
    enqueue(study, warm, space, say)
    return study, warm
