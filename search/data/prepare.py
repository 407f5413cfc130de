"""A search's data, loaded and checked once per process, with its report saved beside the study.

Needs NumPy only, so the command line runs it before it starts the Keras backend: bad data is
reported within a second or two instead of after the backend's start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..schema import RunFile, write_json
from .loading import Dataset, load_dataset
from .overview import data_overview, save_overview
from .sanity import SanityReport, sanity_report

if TYPE_CHECKING:
    from ..config import SearchConfig


def load_configured(cfg: SearchConfig) -> Dataset:
    """The data as ``cfg`` splits it: the search and a later retrain of its study must see the same
    validation images."""
    return load_dataset(cfg.data_dir, n_classes=cfg.n_classes, valid_fraction=cfg.valid_fraction, seed=cfg.seed)


def prepare_data(cfg: SearchConfig, say: Callable[[str], None]) -> Dataset:
    """Load and check the data; the sanity report is printed and saved with the run, the data
    overview (for the dashboard) written once."""
    dataset, report = load_checked(cfg, say)
    save_data_reports(cfg, dataset, report)
    return dataset


def load_checked(cfg: SearchConfig, say: Callable[[str], None]) -> tuple[Dataset, SanityReport]:
    """Load and check the data and print its sanity report; nothing is written (a command that
    fails a later check must leave the run folder as it was)."""
    dataset = load_configured(cfg)
    report = sanity_report(dataset)
    say(report.text())
    return dataset, report


def save_data_reports(cfg: SearchConfig, dataset: Dataset, report: SanityReport) -> None:
    """The sanity report beside the study, and the data overview for the dashboard (once)."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(cfg.run_dir / RunFile.SANITY_REPORT, report.to_json())
    overview_path = cfg.run_dir / RunFile.DATA_OVERVIEW
    if not overview_path.exists():
        save_overview(data_overview(dataset), overview_path)
