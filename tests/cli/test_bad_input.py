"""Bad flags, paths and names: one line on stderr, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2"


def _cli(
    *args: str, env: dict[str, str] | None = None, limit_file_bytes: int | None = None
) -> subprocess.CompletedProcess:
    def limit() -> None:
        if limit_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, **(env or {})},
        preexec_fn=limit,
    )


def _one_line_exit_2(result: subprocess.CompletedProcess, *expected: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stdout[-1500:] + result.stderr[-1500:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--seed", "-1"], "--seed"),  # NumPy's generator refused it halfway through the split
        (["--heartbeat", "1e300"], "--heartbeat"),  # OverflowError inside Optuna
        (["--objective", "accuracy,accuracy"], "--objective"),  # became accuracy,params
        (["--storage", ""], "--storage"),  # created an empty SQLite file
        (["--n-classes", "100000000"], "--n-classes"),  # MemoryError
        (["--workers", "100000"], "--workers"),
        (["--trials", "1000000000"], "--trials"),
        (["--study", "../x"], "--study"),  # written outside --out
        (["--study", "/tmp/y"], "--study"),
        (["--study", "."], "--study"),  # written into --out itself
        (["--warm-start", "../elsewhere"], "--warm-start"),
        (["--storage-env", "HPSEARCH_TEST_UNSET"], "HPSEARCH_TEST_UNSET"),
    ],
)
def test_a_bad_search_flag_is_one_line(tiny_data: Path, tmp_path: Path, flags: list[str], expected: str) -> None:
    out = tmp_path / "runs"
    _one_line_exit_2(_cli("search", "--data-dir", str(tiny_data), "--out", str(out), *flags), expected)
    assert not out.exists()


def test_a_malformed_storage_url_is_refused_without_echoing_it(tiny_data: Path) -> None:
    result = _cli("search", "--data-dir", str(tiny_data), "--storage", f"postgresql:/me:{SECRET}@db/x")
    _one_line_exit_2(result, "--storage")
    assert SECRET not in result.stderr
    result = _cli("studies", env={"HPSEARCH_STORAGE": f"postgresql:/me:{SECRET}@db/x"})
    _one_line_exit_2(result, "HPSEARCH_STORAGE")
    assert SECRET not in result.stderr


def test_out_that_is_a_file_is_one_line(tiny_data: Path, a_file: Path) -> None:
    _one_line_exit_2(_cli("search", "--data-dir", str(tiny_data), "--out", str(a_file)), str(a_file), "not a folder")


@pytest.mark.parametrize(
    "command",
    [["export", "--study", "s", "-o"], ["dashboard", "--study", "s", "-o"], ["data", "check", "TINY", "--html"]],
)
def test_an_output_file_that_is_a_folder_is_one_line(tiny_data: Path, tmp_path: Path, command: list[str]) -> None:
    args = [str(tiny_data) if part == "TINY" else part for part in command]
    _one_line_exit_2(
        _cli(*args, str(tmp_path), "--out", str(tmp_path)) if args[0] != "data" else _cli(*args, str(tmp_path)),
        str(tmp_path),
        "is a folder",
    )


def test_synth_into_a_file_is_one_line(a_file: Path) -> None:
    _one_line_exit_2(_cli("data", "synth", "--out", str(a_file), "--n-train", "10"), str(a_file), "not a folder")
    assert a_file.read_text() == "not a folder"


def test_a_full_disk_while_writing_the_dashboard_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    study.add_trial(optuna.trial.create_trial(value=0.5))
    # The dashboard embeds plotly.js (megabytes): past a 256 KiB file-size limit the write fails with
    # EFBIG, as on a full disk.
    result = _cli("dashboard", "--study", "s", "--out", str(tmp_path), limit_file_bytes=256 * 1024)
    _one_line_exit_2(result, "dashboard.html")
    assert not (tmp_path / "s" / "dashboard.html").exists()
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["study.db"]  # no temporary file left
