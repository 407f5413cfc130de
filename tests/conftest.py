"""Shared fixtures: tiny synthetic data, so every test runs without the real data set."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred 32x32 synthetic signs in the tutorial's layout (train/valid/test.p)."""
    from search.data.synth import write_synthetic_dataset

    folder = tmp_path_factory.mktemp("synth")
    write_synthetic_dataset(folder, n_train=430, n_valid=172, n_test=172, seed=0)
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many malformed data files the fuzz tests tried (``tests/search/data/test_fuzz_data.py``)."""
    reports = terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
    tried = sum(
        value for report in reports for name, value in getattr(report, "user_properties", []) if name == "fuzz_cases"
    )
    if tried:
        terminalreporter.write_line(f"fuzz: {tried} generated data files tried")
