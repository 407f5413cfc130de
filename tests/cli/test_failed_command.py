"""A command that fails its checks changes nothing; a stored user space is imported only when trusted."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from cli.settings import check_trusted_space
from search.config import SearchConfig
from search.data.prepare import load_checked, save_data_reports
from search.engine.study import load_space, make_storage, open_study, settle_target
from search.errors import UserError
from search.schema import StudyKey
from search.space_source import space_digest, space_file

ROOT = Path(__file__).resolve().parents[2]

SPACE = """
from pathlib import Path
Path({marker!r}).write_text("imported")  # what a hostile module would do when imported

import keras

def build(hp):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(hp.Int("filters", 4, 8, step=4, default=4), 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(43, activation="softmax")(x))
"""


def _cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _made_study(data: Path, out: Path, name: str, space: str = "lenet") -> SearchConfig:
    """A study and its run folder as a search leaves them before its first trial (no training)."""
    cfg = SearchConfig(data_dir=data, space=space, study=name, out=out)
    dataset, report = load_checked(cfg, lambda _text: None)
    save_data_reports(cfg, dataset, report)
    settle_target(open_study(cfg, make_storage(cfg), dataset.content_hash, load_space(cfg.space)), 3)
    return cfg


def test_a_command_that_fails_its_checks_leaves_the_study_and_the_run_folder_as_they_were(
    tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    cfg = _made_study(tiny_data, out, "s")
    other = tmp_path / "other"  # real data, but not the study's
    shutil.copytree(tiny_data, other)
    valid = pickle.loads((other / "valid.p").read_bytes())
    valid["labels"] = valid["labels"][::-1].copy()
    (other / "valid.p").write_bytes(pickle.dumps(valid))
    before = _snapshot(out)
    attrs = optuna.load_study(study_name="s", storage=cfg.storage_url).user_attrs
    for args, problem in [
        (["search", "--data-dir", tmp_path / "typo", "--epochs", "99"], "does not exist"),
        (["search", "--data-dir", other, "--epochs", "99"], "differs from the data"),
        (["retrain", "--data-dir", other, "--patience", "7"], "differs from the data"),
        (["join", "--data-dir", other], "differs from the data"),
    ]:
        result = _cli(*args, "--study", "s", "--out", out)
        assert result.returncode == 2 and problem in result.stderr, result.stdout[-2000:] + result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert _snapshot(out) == before
    assert optuna.load_study(study_name="s", storage=cfg.storage_url).user_attrs == attrs
    # The study still works as it was stored: a later command meets its own data.
    stored = SearchConfig.from_study_attrs(attrs)
    assert stored.data_dir == tiny_data and stored.epochs == cfg.epochs


def test_a_stored_user_space_is_imported_only_when_typed_or_unchanged(tiny_data: Path, tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    space = tmp_path / "my_space.py"
    space.write_text(SPACE.format(marker=str(marker)))
    out = tmp_path / "runs"
    _made_study(tiny_data, out, "mine", space=str(space))
    stored = optuna.load_study(study_name="mine", storage=f"sqlite:///{out / 'mine' / 'study.db'}").user_attrs
    assert stored[StudyKey.SPACE_SHA256] == space_digest(str(space))
    space.write_text(space.read_text() + "\n# changed after the study was made\n")
    marker.unlink()
    for command in (["retrain", "--study", "mine", "--out", out], ["join", "--study", "mine", "--out", out]):
        result = _cli(*command)
        assert result.returncode == 2 and f"--space {space}" in result.stderr, result.stderr
        assert "SHA-256" in result.stderr and not marker.exists()
    # Typed again, the user vouches for it: the command goes past the check (and fails later, for
    # want of a completed trial), importing the module.
    result = _cli("retrain", "--study", "mine", "--out", out, "--space", space)
    assert "--space" not in result.stderr and marker.exists(), result.stderr


def test_the_trust_rule(tmp_path: Path) -> None:
    space = tmp_path / "s.py"
    space.write_text("def build(hp): ...\n")
    digest = space_digest(str(space))
    recorded = {StudyKey.SPACE_SHA256: digest}
    check_trusted_space("cnn", {}, typed=False, study_name="x")  # built-in: part of the tool
    check_trusted_space(str(space), recorded, typed=False, study_name="x")  # unchanged
    check_trusted_space(str(space), {}, typed=True, study_name="x")  # typed on this command line
    for attrs, why in [({}, "recorded no digest"), ({StudyKey.SPACE_SHA256: "0" * 64}, "SHA-256 here")]:
        with pytest.raises(UserError, match=why):
            check_trusted_space(str(space), attrs, typed=False, study_name="x")
    with pytest.raises(UserError, match="no such file"):
        check_trusted_space(str(tmp_path / "gone.py"), recorded, typed=False, study_name="x")


def test_a_dotted_space_is_found_without_running_its_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "hostile_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('package code ran')\n")
    (package / "space.py").write_text("def build(hp): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert space_file("hostile_pkg.space") == package / "space.py"
    assert space_digest("hostile_pkg.space") == space_digest(str(package / "space.py"))
    assert space_file("hostile_pkg.missing") is None and "hostile_pkg" not in sys.modules
