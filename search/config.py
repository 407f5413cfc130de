"""One dataclass that carries a run's settings from the command line to the study."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
PRUNERS = ("hyperband", "sha", "median", "none")
OBJECTIVES = ("accuracy", "params")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclass
class SearchConfig:
    data_dir: Path
    space: str = "all"
    trials: int = 30  # the study's target of finished trials (extended by this many once reached)
    timeout: float | None = None  # wall-clock seconds for the search phase (None: no limit)
    epochs: int = 10  # most epochs a trial may train
    patience: int = 3  # early stopping on validation accuracy
    study: str | None = None  # default: "<space>-<data folder name>"
    storage: str | None = None  # default: sqlite:///<out>/<study>/study.db
    sampler: str = "tpe"
    local_share: float = 0.5  # share of sampled trials that try a neighbour of the best (0: off)
    pruner: str = "hyperband"
    seed: int = 0
    out: Path = Path("runs")
    objectives: tuple[str, ...] = ("accuracy",)
    named_points: bool = True  # run the space's named points (the tutorial's models...) first
    retrain: bool = True  # retrain the best configuration and score it on test.p afterwards
    final_epochs: int | None = None  # default: 2 x epochs
    n_classes: int | None = None
    valid_fraction: float = 0.2  # only used when the data folder has no valid file
    workers: int = 1
    worker_index: int = 0  # set for processes started by --workers: varies the sampler's seed
    precision: str = "float32"
    heartbeat: float = 20.0  # seconds between a running trial's heartbeats; dead after 3 missed
    max_failures: int = 5  # consecutive failed trials that stop the search
    dashboard_every: int = 5  # regenerate the dashboard after every N finished trials (0: only at end)
    trial_time_fraction: float = 0.25  # a trial may use at most this share of --timeout
    steps_per_execution: int = 4
    command: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def study_name(self) -> str:
        return self.study or f"{self.space}-{Path(self.data_dir).resolve().name}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / self.study_name

    @property
    def storage_url(self) -> str:
        if self.storage:
            return self.storage
        return f"sqlite:///{(self.run_dir / 'study.db').resolve()}"

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def trial_time_limit(self) -> float | None:
        """Per-trial cap derived from --timeout, so one expensive configuration cannot eat it all."""
        if self.timeout is None:
            return None
        return max(self.timeout * self.trial_time_fraction, 1.0)
