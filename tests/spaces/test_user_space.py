"""A user's own space module: ``--space path/to/my_space.py`` or ``package.module`` with ``build(hp)``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from search.config import SearchConfig
from search.engine.loop import run_search
from spaces import SpaceError, get_space

ROOT = Path(__file__).resolve().parents[2]

MY_SPACE = '''
import keras

def build(hp):
    """KerasTuner style: the model for hp's values, compiled or not."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(hp.Int("filters", 4, 8, step=4, default=4), 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense({n_classes}, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    if {compiled}:
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
'''


def _write(folder: Path, name: str, *, n_classes: int = 43, compiled: bool = True) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(MY_SPACE.format(n_classes=n_classes, compiled=compiled)))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("compiled", [True, False])
def test_a_users_space_file_is_searched(tiny_data: Path, tmp_path: Path, compiled: bool) -> None:
    path = _write(tmp_path, "my_space", compiled=compiled)
    cfg = SearchConfig(
        data_dir=tiny_data,
        space=str(path),
        trials=2,
        epochs=1,
        out=tmp_path,
        study="mine",
        retrain=False,
        dashboard_every=0,
        steps_per_execution=1,
    )
    outcome = run_search(cfg)
    trials = outcome.study.get_trials(deepcopy=False)
    # Uncompiled, it trains with the default optimiser settings, so only its own parameter is searched.
    searched = {"filters", "learning_rate"} if compiled else {"filters"}
    assert outcome.finished == 2 and set(trials[0].params) == searched
    assert trials[0].user_attrs["family"] == "my_space"


def test_a_users_space_by_module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _write(package, "signs")
    monkeypatch.syspath_prepend(str(tmp_path))
    space = get_space("mypkg.signs")
    assert space.POINTS == {} and space.family_of({}) == "mypkg.signs"


def test_what_a_space_lacks_is_said_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("X = 1\n")
    with pytest.raises(SpaceError, match="defines no build"):
        get_space(str(tmp_path / "empty.py"))
    with pytest.raises(SpaceError, match="no such file"):
        get_space(str(tmp_path / "absent.py"))
    (tmp_path / "broken.py").write_text("import nothing_of_that_name\n")
    with pytest.raises(SpaceError, match="importing it failed"):
        get_space(str(tmp_path / "broken.py"))


@pytest.mark.slow
def test_a_space_for_other_data_exits_2_before_any_trial(tiny_data: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, "ten", n_classes=10)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_search.py"),
            "search",
            "--data-dir",
            str(tiny_data),
            "--space",
            str(path),
            "--trials",
            "1",
            "--epochs",
            "1",
            "--out",
            str(tmp_path),
            "--study",
            "ten",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "the model has 10 outputs, the data has 43 classes" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_users_module_is_completed_to_a_space_with_its_own_attributes(tmp_path: Path) -> None:
    from spaces import UserSpace

    path = _write(tmp_path, "named_space")
    with path.open("a") as fh:
        fh.write('\nNAME = "mine"\nPOINTS = {"small": {"filters": 4}}\nPARAM_CEILING = 1000\n')
    space = get_space(str(path))
    assert isinstance(space, UserSpace)
    assert (space.NAME, space.POINTS, space.PARAM_CEILING) == ("mine", {"small": {"filters": 4}}, 1000)
    assert space.family_of({"filters": 8}) == "mine"  # one family: the space itself
    bare = get_space(str(_write(tmp_path, "bare_space")))
    assert (bare.NAME, bare.POINTS, bare.PARAM_CEILING) == ("bare_space", {}, None)


def test_the_spaces_are_each_family_and_all_of_them() -> None:
    """One family registry: ``--space`` offers each registered family alone and ``all``, which holds them all."""
    import spaces

    assert list(spaces.SPACES) == [*spaces.FAMILIES, "all"]
    assert spaces.combined.FAMILIES is spaces.FAMILIES
    for name, family in spaces.FAMILIES.items():
        assert spaces.get_space(name) is family and name == family.NAME
