"""``--warm-start``: an earlier study's best distinct configurations run first in a new study."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState, create_trial

import spaces
from search.config import SearchConfig
from search.engine.hp_adapter import OptunaHyperParameters
from search.engine.loop import run_search
from search.engine.run import open_search_study
from search.engine.study import load_space, make_storage
from search.engine.warm_start import WARM_START_TOP, map_params
from search.errors import UserError
from search.progress import Progress
from search.schema import StudyKey, TrialKey, rank_key, rankable


def _config(data: Path, out: Path, **kw: object) -> SearchConfig:
    base = dict(
        data_dir=data,
        space="lenet",
        trials=1,
        epochs=1,
        out=out,
        retrain=False,
        dashboard_every=0,
        steps_per_execution=1,
        pruner="none",
    )
    base.update(kw)
    return SearchConfig(**base)  # type: ignore[arg-type]


def _open(cfg: SearchConfig, say=None) -> optuna.Study:
    """The study opened for searching, as the search opens it (warm-start sources enqueued)."""
    return open_search_study(cfg, make_storage(cfg), "hash", load_space(cfg.space), say=say)[0]


def _load(out: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / name / 'study.db'}")


def _expected_labels(source: optuna.Study) -> list[str]:
    """The source's best distinct configurations, ranked here independently of the code under test."""
    seen, labels = [], []
    for t in sorted(rankable(source.trials), key=rank_key, reverse=True):
        if t.params not in seen:
            seen.append(t.params)
            labels.append(f"warm:{source.study_name}#{t.number}")
    return labels[:WARM_START_TOP]


def _source(
    storage: str,
    name: str,
    space: ModuleType,
    scores: list[tuple[float | None, float]],
    points: list[str] | None = None,
) -> optuna.Study:
    """A finished study without training: each trial declares ``space`` through the Optuna adapter
    (a named point when ``points`` are given, else random values) and is told a (value, val loss);
    a None value is a pruned trial."""
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    for i, (value, loss) in enumerate(scores):
        if points:
            study.enqueue_trial(space.POINTS[points[i]])
        trial = study.ask()
        hp = OptunaHyperParameters(trial)
        space.declare(hp)
        for key, attr in (
            (TrialKey.FAMILY, space.family_of(hp.values)),
            (TrialKey.BEST_EPOCH, 1),
            (TrialKey.VAL_LOSS_CURVE, [loss]),
        ):
            trial.set_user_attr(key, attr)
        study.tell(trial, value, state=TrialState.PRUNED if value is None else None)
    return study


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, optuna.Study]:
    """A lenet study "first" in its run folder: equal accuracies ranked by loss, a pruned trial, and a
    copy of the best (same params, same score) that must not count as a second configuration."""
    out = tmp_path_factory.mktemp("warm")
    (out / "first").mkdir()
    study = _source(
        f"sqlite:///{out / 'first' / 'study.db'}",
        "first",
        spaces.lenet,
        [(0.5, 1.0), (0.7, 0.9), (0.7, 0.8), (None, 0.1), (0.6, 1.0)],
    )
    best = study.trials[2]
    study.add_trial(
        create_trial(value=best.value, params=best.params, distributions=best.distributions, user_attrs=best.user_attrs)
    )
    return out, study


def _waiting(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.WAITING,))


def test_new_study_queues_named_points_then_the_best_distinct_configurations(
    first: tuple[Path, optuna.Study], tiny_data: Path
) -> None:
    out, source = first
    cfg = _config(tiny_data, out, study="second", warm_start=("first",))
    said: list[str] = []
    study = _open(cfg, say=said.append)
    queued = _waiting(study)
    labels = [t.user_attrs[TrialKey.POINT] for t in queued]
    assert _expected_labels(source) == ["warm:first#2", "warm:first#1", "warm:first#4"]  # what the scores make
    assert labels == [*spaces.lenet.POINTS, "warm:first#2", "warm:first#1", "warm:first#4"]
    by_number = {t.number: t for t in source.trials}
    for t in queued[len(spaces.lenet.POINTS) :]:
        assert t.system_attrs["fixed_params"] == by_number[int(t.user_attrs[TrialKey.POINT].split("#")[1])].params
    assert any("warm start from study 'first'" in line for line in said)
    assert study.user_attrs[StudyKey.WARM_STARTED] == ["first"]
    # A resume (or a worker) does not read the source again, and the queue gains nothing.
    again = _open(cfg, say=said.append)
    assert len(again.get_trials(deepcopy=False)) == len(queued)


def test_storage_url_form_runs_the_best_configuration_first(
    first: tuple[Path, optuna.Study], tiny_data: Path, capsys: pytest.CaptureFixture
) -> None:
    out, source = first
    item = f"sqlite:///{out / 'first' / 'study.db'}#first"
    cfg = _config(tiny_data, out, study="third", named_points=False, warm_start=(item,))
    trial = run_search(cfg, events=Progress(1).events()).study.get_trials(deepcopy=False)[0]
    label = _expected_labels(source)[0]
    assert trial.user_attrs[TrialKey.POINT] == label and trial.state == TrialState.COMPLETE
    assert trial.params == source.trials[int(label.split("#")[1])].params
    assert f"[{label}]" in capsys.readouterr().out  # the progress line names where it came from


def test_a_missing_source_is_refused_before_any_trial(
    first: tuple[Path, optuna.Study], tiny_data: Path, tmp_path: Path
) -> None:
    out, _ = first
    cfg = _config(tiny_data, out, study="fourth", warm_start=("first", "nope"))
    with pytest.raises(UserError, match=r"^--warm-start nope: no study 'nope'"):
        run_search(cfg)
    assert "fourth" not in optuna.study.get_all_study_names(cfg.storage_url)  # nothing was written
    missing = tmp_path / "gone.db"
    fifth = _config(tiny_data, out, study="fifth", warm_start=(f"sqlite:///{missing}#old",))
    with pytest.raises(UserError, match=r"gone\.db#old: no study 'old'"):
        _open(fifth)
    assert not missing.exists()  # no empty database made on the way
    for item in ("sixth", f"sqlite:///{out / 'sixth' / 'study.db'}#sixth"):
        itself = _config(tiny_data, out, study="sixth", warm_start=(item,))
        with pytest.raises(UserError, match="that is this study itself"):
            _open(itself)


def test_a_lenet_study_warm_starts_an_all_study_with_its_family(
    first: tuple[Path, optuna.Study], tiny_data: Path
) -> None:
    out, source = first
    cfg = _config(tiny_data, out, space="all", study="into-all", named_points=False, warm_start=("first",))
    queued = _waiting(_open(cfg))
    assert [t.user_attrs[TrialKey.POINT] for t in queued] == _expected_labels(source)
    by_number = {t.number: t for t in source.trials}
    for t in queued:
        params = t.system_attrs["fixed_params"]
        assert params["family"] == "lenet" and spaces.combined.family_of(params) == "lenet"
        unprefixed = {k.removeprefix("lenet/"): v for k, v in params.items() if k != "family"}
        assert unprefixed == by_number[int(t.user_attrs[TrialKey.POINT].split("#")[1])].params


def test_an_all_study_warm_starts_a_family_study_and_skips_the_other_family(
    first: tuple[Path, optuna.Study], tiny_data: Path
) -> None:
    out, _ = first
    storage = f"sqlite:///{out / 'mixed.db'}"
    mixed = _source(storage, "mixed", spaces.combined, [(0.9, 1.0), (0.8, 1.0)], ["cnn_tutorial", "lenet_tutorial"])
    optuna.create_study(study_name="empty", storage=storage)
    cnn_trial, lenet_trial = mixed.trials
    params, problem = map_params(cnn_trial, spaces.lenet)
    assert params is None and "family 'cnn'" in problem
    params, problem = map_params(lenet_trial, spaces.lenet)
    assert problem is None and params == {
        k.removeprefix("lenet/"): v for k, v in lenet_trial.params.items() if k != "family"
    }
    # A rerun naming more sources enqueues only theirs.
    cfg = _config(tiny_data, out, study="rerun", named_points=False, warm_start=("first",))
    before = [t.user_attrs[TrialKey.POINT] for t in _waiting(_open(cfg))]
    cfg = _config(tiny_data, out, study="rerun", warm_start=("first", f"{storage}#mixed", f"{storage}#empty"))
    said: list[str] = []
    study = _open(cfg, say=said.append)
    assert [t.user_attrs[TrialKey.POINT] for t in _waiting(study)] == [*before, f"warm:mixed#{lenet_trial.number}"]
    assert any(f"skipped warm:mixed#{cnn_trial.number}" in line for line in said)
    assert any("'empty' has no completed trial" in line for line in said)
    assert json.dumps(study.user_attrs[StudyKey.WARM_STARTED]).count("#") == 2


def test_warm_start_parses_from_text_and_survives_the_json_round_trip() -> None:
    cfg = SearchConfig(data_dir=".", warm_start="first, sqlite:///a.db#old")
    assert cfg.warm_start == ("first", "sqlite:///a.db#old")
    assert SearchConfig.from_json(json.loads(cfg.dumps())).warm_start == cfg.warm_start


def test_a_rerun_naming_a_missing_source_is_refused_before_the_setting_is_stored(
    first: tuple[Path, optuna.Study], tiny_data: Path
) -> None:
    from cli.settings import resolve

    out, _ = first
    cfg = _config(tiny_data, out, study="rerun-missing")
    _open(cfg)
    given = {"study": "rerun-missing", "out": out, "warm_start": ("nope",)}
    with pytest.raises(UserError, match=r"^--warm-start nope: no study 'nope'"):
        resolve(given, "python run_search.py search ...", lambda text: None, store=True)
    stored = _load(out, "rerun-missing").user_attrs
    assert stored[StudyKey.CONFIG]["warm_start"] == [] and StudyKey.OVERRIDES not in stored
