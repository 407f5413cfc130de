"""The command line as a person uses it: help, data commands, the spaces listing."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.gtsrb_tree import make_tree

from search.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_help_lists_the_subcommands() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    # argparse lists each command first on its line (a long name alone on its line, its help below)
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert {"search", "join", "retrain", "export", "export-model", "dashboard", "studies", "spaces", "data"} <= listed


READ_ONLY = """
import sys
from cli.main import main
codes = [main(["studies", "--out", sys.argv[1]]), main(["export", "--study", "nope", "--out", sys.argv[1]])]
print(codes, "keras" in sys.modules)
"""


def test_commands_that_only_read_a_study_start_without_keras(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", READ_ONLY, str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.stdout.split("\n")[-2] == "[0, 2] False", done.stdout + done.stderr
    assert "no study 'nope'" in done.stderr and "cuda" not in done.stderr.lower()  # no backend chatter


def test_convert_gtsrb_then_check(tmp_path: Path) -> None:
    make_tree(tmp_path / "GTSRB")
    out = tmp_path / "converted"
    result = _cli("data", "convert-gtsrb", str(tmp_path / "GTSRB"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "tracks held out for valid" in result.stdout
    ds = load_dataset(out)
    assert ds.input_shape == (32, 32, 3) and ds.test_path is not None
    check = _cli("data", "check", str(out), "--html", str(tmp_path / "data.html"))
    assert check.returncode == 0, check.stderr
    assert "Data sanity report" in check.stdout and (tmp_path / "data.html").stat().st_size > 100_000


def test_convert_gtsrb_missing_folder_is_one_line(tmp_path: Path) -> None:
    result = _cli("data", "convert-gtsrb", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_synth_writes_a_loadable_folder(tmp_path: Path) -> None:
    result = _cli("data", "synth", "--out", str(tmp_path), "--n-train", "200", "--n-valid", "50", "--n-test", "50")
    assert result.returncode == 0, result.stderr
    ds = load_dataset(tmp_path)
    assert len(ds.train) == 200 and ds.class_names[14] == "Stop"


def test_spaces_lists_families_parameters_and_points() -> None:
    result = _cli("spaces")
    assert result.returncode == 0, result.stderr
    for text in (
        "space 'cnn'",
        "space 'lenet'",
        "space 'all'",
        "learning_rate",
        "tutorial:",
        "cnn_strong:",
        "default=",
    ):
        assert text in result.stdout


def _pickles(folder: Path, **splits: tuple[np.ndarray, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (features, labels) in splits.items():
        with open(folder / f"{name}.p", "wb") as fh:
            pickle.dump({"features": features, "labels": labels}, fh)
    return folder


def _images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _trials_in(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        if not con.execute("SELECT name FROM sqlite_master WHERE name = 'trials'").fetchone():
            return 0
        return int(con.execute("SELECT COUNT(*) FROM trials").fetchone()[0])


BAD_SEARCH_DATA = {
    # test.p used to be read only after the whole search and retrain
    "test_other_image_size": (
        dict(
            train=(_images(86), np.arange(86) % 43),
            valid=(_images(43, seed=1), np.arange(43)),
            test=(_images(43, size=20, seed=2), np.arange(43)),
        ),
        "test.p: image size",
    ),
    # a single class used to train happily
    "one_class_train": (
        dict(train=(_images(86), np.zeros(86, np.uint8)), valid=(_images(43, seed=1), np.arange(43))),
        "train.p: only 1 class",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SEARCH_DATA))
def test_search_refuses_bad_data_before_any_trial(tmp_path: Path, case: str) -> None:
    splits, message = BAD_SEARCH_DATA[case]
    data = _pickles(tmp_path / "data", **splits)
    out = tmp_path / "runs"
    result = _cli(
        "search", "--data-dir", str(data), "--trials", "1", "--epochs", "1", "--out", str(out), "--study", "bad"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert _trials_in(out / "bad" / "study.db") == 0


BAD_INPUT = """
import sys
from cli.main import main
def run(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own refusals
        return exc.code
codes = [run(["search", "--data-dir", sys.argv[1], "--sampler", "magic", "--out", sys.argv[2]]),
         run(["search", "--data-dir", sys.argv[1], "--out", sys.argv[2], "--study", "bad"]),
         run(["retrain", "--study", "nope", "--out", sys.argv[2]])]
print(codes, "keras" in sys.modules)
"""


def test_bad_settings_and_bad_data_are_answered_before_the_backend_starts(tmp_path: Path) -> None:
    # The backend's start-up (seconds) comes after the checks: a typo costs a fraction of a second.
    splits, message = BAD_SEARCH_DATA["test_other_image_size"]
    data = _pickles(tmp_path / "data", **splits)
    done = subprocess.run(
        [sys.executable, "-c", BAD_INPUT, str(data), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.stdout.split("\n")[-2] == "[2, 2, 2] False", done.stdout + done.stderr
    assert "invalid choice" in done.stderr and message in done.stderr and "no study 'nope'" in done.stderr
    assert done.stderr.count("\n") == 3  # one line each, and no backend chatter
