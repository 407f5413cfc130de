"""The command line as a person uses it: help, data commands, the spaces listing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_gtsrb_convert import make_tree

from search.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_search.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_help_lists_the_subcommands() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("search", "retrain", "export", "studies", "dashboard", "spaces", "data"):
        assert command in result.stdout


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
    result = _cli("data", "synth", "--out", str(tmp_path), "--n-train", "200", "--n-valid", "50",
                  "--n-test", "50")
    assert result.returncode == 0, result.stderr
    ds = load_dataset(tmp_path)
    assert len(ds.train) == 200 and ds.class_names[14] == "Stop"


def test_spaces_lists_families_parameters_and_points() -> None:
    result = _cli("spaces")
    assert result.returncode == 0, result.stderr
    for text in ("space 'cnn'", "space 'lenet'", "space 'all'", "learning_rate", "tutorial:",
                 "cnn_strong:", "default="):
        assert text in result.stdout
