"""The final model's files as one set: an interrupted final stage leaves the old set or the new one, whole."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from search.config import EXPORT_FORMATS
from search.final import deploy, final_set
from search.final.export import QUANTIZATIONS, Artifact, artifact_name
from search.final.final_set import current_final_set, current_folder, new_final_set
from search.schema import RunFile, in_final_set, write_text

OLD = {
    "best_model.keras": "old model",
    "test_report.json": "old report",
    "best_config.json": "old config",
    "misclassified.npz": "old wrong",
    "best_model.onnx": "old onnx",
    "final_members": {"trial-1.keras": "old 1"},
}
NEW = {
    "best_model.keras": "new model",
    "test_report.json": "new report",
    "best_config.json": "new config",
    "misclassified.npz": "new wrong",
    "best_model.tflite": "new tflite",
    "final_members": {"trial-2.keras": "new 2"},
}
NEWER = {
    "best_model.keras": "newer model",
    "best_config.json": "newer config",
    "final_members": {"trial-3.keras": "newer 3"},
}
OTHERS = {"study.db": "db", "data_overview.npz": "overview", "sanity_report.json": "sanity"}  # not in the set


def _write(folder: Path, files: dict) -> None:
    for name, content in files.items():
        if isinstance(content, dict):
            for member, text in content.items():
                write_text(folder / name / member, text)
        else:
            write_text(folder / name, content)


def _view(run_dir: Path) -> dict:
    """What a reader opening the run folder's names sees of the set."""
    seen: dict = {}
    for path in sorted(run_dir.iterdir()):
        if in_final_set(path.name) and path.exists():
            seen[path.name] = (
                {p.name: p.read_text() for p in path.iterdir() if not p.name.startswith(".")}
                if path.is_dir()
                else path.read_text()
            )
    return seen


def _run_dir(parent: Path, legacy: bool) -> Path:
    """A run folder holding OLD: plain files at the top (the layout before sets), or a set."""
    run_dir = parent / "run"
    _write(run_dir, OTHERS)
    if legacy:
        _write(run_dir, OLD)
    else:
        with new_final_set(run_dir) as folder:
            _write(folder, OLD)
    return run_dir


def _final_stage(run_dir: Path, files: dict) -> None:
    with new_final_set(run_dir) as folder:
        _write(folder, files)


def _tidy(run_dir: Path, files: dict) -> None:
    """Only the set's links, ``final``, one set folder, the lock and the files outside the set are left."""
    folder = current_folder(run_dir)
    assert folder is not None and sorted(os.listdir(folder)) == sorted(files)
    assert set(os.listdir(run_dir)) == {*files, *OTHERS, RunFile.FINAL_DIR, folder.name, RunFile.FINAL_LOCK}
    for name in files:
        assert os.readlink(run_dir / name) == f"{RunFile.FINAL_DIR}/{name}"
    assert {name: (run_dir / name).read_text() for name in OTHERS} == OTHERS


class Interrupt:
    """Ctrl-C at the ``at``-th file system call (open, mkdir, link, symlink, rename, unlink, rmdir), once."""

    CALLS = ("open", "mkdir", "link", "symlink", "rename", "replace", "unlink", "rmdir")

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: int | None = None) -> None:
        self.at, self.calls = at, 0
        for name in self.CALLS:
            monkeypatch.setattr(os, name, self._counted(getattr(os, name)))

    def _counted(self, call: Callable) -> Callable:
        def counted(*args: object, **kwargs: object) -> object:
            self.calls += 1
            if self.calls - 1 == self.at:
                self.at = None
                raise KeyboardInterrupt
            return call(*args, **kwargs)

        return counted


def _steps(tmp_path: Path, legacy: bool) -> int:
    run_dir = _run_dir(tmp_path / "count", legacy)
    with pytest.MonkeyPatch.context() as mp_:
        counter = Interrupt(mp_)
        _final_stage(run_dir, NEW)
    assert _view(run_dir) == NEW
    return counter.calls


@pytest.mark.parametrize("legacy", [False, True], ids=["set", "older-layout"])
def test_a_final_stage_interrupted_at_any_step_leaves_the_old_or_the_new_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legacy: bool
) -> None:
    steps = _steps(tmp_path, legacy)
    assert steps > 20
    outcomes = []
    for at in range(steps):
        run_dir = _run_dir(tmp_path / str(at), legacy)
        with pytest.MonkeyPatch.context() as mp_:
            Interrupt(mp_, at)
            with pytest.raises(KeyboardInterrupt):
                _final_stage(run_dir, NEW)
        seen = _view(run_dir)
        assert seen in (OLD, NEW), f"interrupted at step {at} of {steps}: {seen}"
        outcomes.append(seen == NEW)
        _final_stage(run_dir, NEWER)  # the next final stage completes and tidies what the interrupted one left
        assert _view(run_dir) == NEWER
        _tidy(run_dir, NEWER)
    assert not outcomes[0] and outcomes[-1]  # interrupted first: the old set; last (only tidying left): the new


def test_an_older_layout_is_replaced_cleanly(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, legacy=True)
    _final_stage(run_dir, NEW)
    assert _view(run_dir) == NEW
    _tidy(run_dir, NEW)  # no plain file left where a link goes, no stale old name (best_model.onnx)


def test_an_older_layout_without_renameat2_ends_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(final_set, "_exchange", lambda a, b: False)
    run_dir = _run_dir(tmp_path, legacy=True)
    _final_stage(run_dir, NEW)
    _tidy(run_dir, NEW)
    assert _view(run_dir) == NEW


def test_an_error_while_writing_the_set_keeps_the_old_one(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, legacy=False)
    old_folder = current_folder(run_dir)
    with pytest.raises(RuntimeError), new_final_set(run_dir) as folder:
        write_text(folder / RunFile.BEST_MODEL, "new model")
        raise RuntimeError("scoring failed")
    assert _view(run_dir) == OLD and current_folder(run_dir) == old_folder
    assert not [n for n in os.listdir(run_dir) if n.startswith((RunFile.FINAL_BUILD_PREFIX, ".tmp-"))]


def test_a_build_left_by_a_dead_process_is_removed_by_the_next_final_stage(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, legacy=False)
    dead = mp.get_context("spawn").Process(target=os.getpid)
    dead.start()
    dead.join()
    orphan = run_dir / f"{RunFile.FINAL_BUILD_PREFIX}{dead.pid}-{socket.gethostname()}-abc123"
    alive = run_dir / f"{RunFile.FINAL_BUILD_PREFIX}{os.getpid()}-{socket.gethostname()}-def456"
    elsewhere = run_dir / f"{RunFile.FINAL_BUILD_PREFIX}{dead.pid}-other-host-ghi789"
    for folder in (orphan, alive, elsewhere):
        _write(folder, {"best_model.keras": "half"})
    _final_stage(run_dir, NEW)
    assert not orphan.exists() and alive.exists() and elsewhere.exists()


def _race(run_dir: str, tag: str, n: int) -> None:
    for i in range(n):
        _final_stage(
            Path(run_dir),
            {
                "best_model.keras": f"{tag} {i}",
                "best_config.json": f"{tag} {i}",
                "final_members": {f"trial-{i}.keras": f"{tag} {i}"},
            },
        )


def test_two_racing_final_stages_leave_one_whole_set(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, legacy=True)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_race, args=(str(run_dir), tag, 15)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    seen = _view(run_dir)
    tag_i = seen["best_model.keras"]
    assert tag_i.split()[1] == "14" and seen == {
        "best_model.keras": tag_i,
        "best_config.json": tag_i,
        "final_members": {"trial-14.keras": tag_i},
    }
    _tidy(run_dir, seen)


def _fake_export(written: list[Path]) -> Callable[..., list[Artifact]]:
    def export_model(model_path: Path, out_dir: Path, formats: list[str], **_: object) -> list[Artifact]:
        assert model_path.read_text() in ("old model", "new model")
        path = Path(out_dir) / "best_model_int8.tflite"
        write_text(path, "int8 of " + model_path.read_text())
        written.append(path)
        return [Artifact("tflite", path, path.stat().st_size, "int8")]

    return export_model


@pytest.mark.parametrize("legacy", [False, True], ids=["set", "older-layout"])
def test_export_model_adds_its_artifact_to_the_current_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legacy: bool
) -> None:
    run_dir = _run_dir(tmp_path, legacy)
    written: list[Path] = []
    monkeypatch.setattr(deploy, "export_model", _fake_export(written))
    [artifact] = deploy.export_and_score(run_dir, ["tflite"], None, lambda line: None, quantize="int8")
    folder = current_folder(run_dir)
    assert written == [folder / "best_model_int8.tflite"] and artifact.path == run_dir / "best_model_int8.tflite"
    report = run_dir / RunFile.EXPORT_REPORT
    assert os.readlink(report) == f"{RunFile.FINAL_DIR}/{RunFile.EXPORT_REPORT}" and report.read_text()
    assert _view(run_dir) == {
        **OLD,
        "best_model_int8.tflite": "int8 of old model",
        RunFile.EXPORT_REPORT: report.read_text(),
    }
    _tidy(run_dir, {**OLD, "best_model_int8.tflite": "", RunFile.EXPORT_REPORT: ""})
    _final_stage(run_dir, NEW)  # the next final model comes without the old model's artifact
    assert _view(run_dir) == NEW


def test_the_set_being_built_takes_the_final_stage_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _run_dir(tmp_path, legacy=False)
    written: list[Path] = []
    monkeypatch.setattr(deploy, "export_model", _fake_export(written))
    with new_final_set(run_dir) as folder:
        _write(folder, NEW)
        deploy.export_and_score(run_dir, ["tflite"], None, lambda line: None, quantize="int8", into=folder)
        assert _view(run_dir) == OLD  # not visible before the swap
    assert _view(run_dir)["best_model_int8.tflite"] == "int8 of new model"


def test_current_final_set_of_a_folder_without_a_final_model_is_the_folder(tmp_path: Path) -> None:
    _write(tmp_path, OTHERS)
    with current_final_set(tmp_path) as folder:
        assert folder == tmp_path
    assert current_folder(tmp_path) is None and RunFile.FINAL_DIR not in os.listdir(tmp_path)


def test_every_export_artifact_name_is_in_the_set() -> None:
    names = [artifact_name(fmt) for fmt in EXPORT_FORMATS] + [artifact_name("tflite", q) for q in QUANTIZATIONS]
    assert all(in_final_set(name) for name in names) and all(in_final_set(name) for name in RunFile.FINAL_SET)
    assert not any(in_final_set(name) for name in (*OTHERS, RunFile.DASHBOARD, RunFile.FINAL_DIR, "notes.txt"))


def test_the_test_report_and_misclassified_images_are_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras
    import numpy as np

    from search.data import Split
    from search.final import report

    rng = np.random.default_rng(0)
    test = Split(rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8), rng.integers(0, 3, 40).astype(np.int32))
    dataset = SimpleNamespace(class_names=["a", "b", "c"], train=Split(test.features[:10], test.labels[:10]))
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = tmp_path / f".tmp-{os.getpid()}-{RunFile.MISCLASSIFIED}"  # the name used before: predictable
    planted.symlink_to(victim)
    written: list[str] = []
    atomic = report.atomic_path

    def recorded(path: Path):
        written.append(Path(path).name)
        return atomic(path)

    monkeypatch.setattr(report, "atomic_path", recorded)
    monkeypatch.setattr(report, "model_speed", lambda model, images: {})
    result = report.evaluate_on_test(model, test, dataset, tmp_path)
    assert RunFile.MISCLASSIFIED in written and victim.read_text() == "precious"
    with np.load(tmp_path / RunFile.MISCLASSIFIED) as npz:
        assert len(npz["true"]) == len(npz["pred"]) == round((1 - result["test_accuracy"]) * 40)
    assert (tmp_path / RunFile.TEST_REPORT).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [planted.name, "victim.txt", RunFile.TEST_REPORT, RunFile.MISCLASSIFIED]
    )
