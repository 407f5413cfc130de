"""The robust validation score: the perturbed copy, its use in a search, and the ``robust`` tie-break."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from search.config import SearchConfig
from search.data import load_split
from search.engine import robustness
from search.engine.robustness import cached_perturbed_copy, perturbed_copy, robust_accuracy
from search.errors import UserError
from search.progress import Progress, summary_table
from search.schema import StudyKey, TrialKey, best_trial, rank_key, ranked_trials, tie_break_of


@pytest.fixture(scope="module")
def valid_images(tiny_data: Path) -> np.ndarray:
    return load_split(tiny_data / "valid.p").features


def test_perturbed_copy_is_deterministic_darker_and_flatter(valid_images: np.ndarray) -> None:
    copy = perturbed_copy(valid_images, seed=3)
    assert copy.dtype == np.uint8 and copy.shape == valid_images.shape
    np.testing.assert_array_equal(copy, perturbed_copy(valid_images, seed=3))
    assert not np.array_equal(copy, perturbed_copy(valid_images, seed=4))
    assert not np.array_equal(copy, valid_images)
    x, y = valid_images.astype("float64"), copy.astype("float64")
    assert y.mean() < 0.8 * x.mean()  # darker on average
    assert y.std(axis=(1, 2, 3)).mean() < 0.8 * x.std(axis=(1, 2, 3)).mean()  # and lower contrast
    changed = np.abs(y - x).mean(axis=(1, 2, 3))
    assert (changed > 2).mean() > 0.95  # (nearly) every image is changed, not a few
    with pytest.raises(ValueError, match="uint8"):
        perturbed_copy(valid_images.astype("float32"))


def test_copy_is_made_once_per_array(valid_images: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    real = robustness.perturbed_copy
    monkeypatch.setattr(robustness, "perturbed_copy", lambda images, seed: made.append(seed) or real(images, seed))
    monkeypatch.setattr(robustness, "_cache", None)
    first = cached_perturbed_copy(valid_images)
    assert cached_perturbed_copy(valid_images) is first and made == [0]
    other = valid_images.copy()
    assert cached_perturbed_copy(other) is not first and made == [0, 0]


class _Oracle:
    """A stand-in model: right on the images whose perturbed copy it was given, wrong on ``wrong`` of them."""

    def __init__(self, labels: np.ndarray, wrong: int) -> None:
        self.labels, self.wrong, self.seen = labels, wrong, None

    def predict(self, x: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        self.seen = x
        answer = self.labels.copy()
        answer[: self.wrong] = (answer[: self.wrong] + 1) % 43
        return np.eye(43, dtype="float32")[answer]


def test_robust_accuracy_scores_the_perturbed_copy(valid_images: np.ndarray) -> None:
    labels = np.arange(len(valid_images)) % 43
    model = _Oracle(labels, wrong=43)
    assert robust_accuracy(model, valid_images, labels) == pytest.approx(1 - 43 / len(labels))
    np.testing.assert_array_equal(model.seen, perturbed_copy(valid_images))


# -- the tie-break ----------------------------------------------------------------------------------
def _trial(number: int, value: float, loss: float, robust: float | None) -> FrozenTrial:
    attrs = {TrialKey.VAL_CURVE: [value], TrialKey.VAL_LOSS_CURVE: [loss], TrialKey.BEST_EPOCH: 1}
    if robust is not None:
        attrs[TrialKey.ROBUST_VAL_ACCURACY] = robust
    trial = create_trial(
        value=value,
        params={"lr": 0.001 * (number + 1)},
        distributions={"lr": FloatDistribution(1e-4, 1e-1, log=True)},
        user_attrs=attrs,
    )
    trial.number = number
    return trial


def test_rank_key_robust_orders_equal_accuracies_by_robust_accuracy_then_loss() -> None:
    low_loss = _trial(0, 0.95, loss=0.10, robust=0.80)
    robust = _trial(1, 0.95, loss=0.30, robust=0.90)
    robust_same_higher_loss = _trial(2, 0.95, loss=0.40, robust=0.90)
    unrecorded = _trial(3, 0.95, loss=0.05, robust=None)
    better = _trial(4, 0.96, loss=0.90, robust=0.10)
    trials = [low_loss, robust, robust_same_higher_loss, unrecorded, better]

    def order(**kw: str) -> list[int]:
        return [t.number for t in sorted(trials, key=lambda t: rank_key(t, **kw), reverse=True)]

    assert order() == order(tie_break="loss") == [4, 3, 0, 1, 2]  # today's rule, unchanged
    assert order(tie_break="robust") == [4, 1, 2, 0, 3]  # accuracy first, then robust, then loss
    with pytest.raises(ValueError, match="tie_break"):
        rank_key(low_loss, tie_break="latency")


def _study(tie_break: str | None) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    if tie_break is not None:
        study.set_user_attr(StudyKey.CONFIG, {"space": "lenet", "tie_break": tie_break})
    study.add_trial(_trial(0, 0.95, loss=0.10, robust=0.80))
    study.add_trial(_trial(1, 0.95, loss=0.30, robust=0.90))
    study.add_trial(_trial(2, 0.90, loss=0.01, robust=0.99))
    return study


@pytest.mark.parametrize(("stored", "best"), [(None, 0), ("loss", 0), ("robust", 1)])
def test_best_trial_follows_the_studys_stored_tie_break(stored: str | None, best: int) -> None:
    study = _study(stored)
    assert tie_break_of(study) == (stored or "loss")
    assert best_trial(study).number == best
    assert [t.number for t in ranked_trials(study)] == [best, 1 - best, 2]
    table = summary_table(study.get_trials(), tie_break=tie_break_of(study))
    rows = [line.split()[0] for line in table.splitlines()[4:]]
    assert rows == [str(best), str(1 - best), "2"]


def test_tie_break_setting() -> None:
    assert SearchConfig(data_dir=".").tie_break == "loss"
    assert SearchConfig(data_dir=".", tie_break="robust").to_json()["tie_break"] == "robust"
    with pytest.raises(UserError, match="--tie-break"):
        SearchConfig(data_dir=".", tie_break="latency")


def test_trial_line_shows_robust_accuracy_only_when_recorded() -> None:
    out = io.StringIO()
    progress = Progress(2, stream=out)
    progress.trial_line(_trial(0, 0.95, loss=0.10, robust=0.8123), 1, 0.95)
    progress.trial_line(_trial(1, 0.95, loss=0.10, robust=None), 2, 0.95)
    first, second = out.getvalue().splitlines()
    assert "loss 0.1000 robust 0.8123" in first and "robust" not in second


# -- a search ---------------------------------------------------------------------------------------
def test_search_records_robust_accuracy_and_ranks_by_it(tiny_data: Path, tmp_path: Path) -> None:
    from search.engine.loop import run_search

    cfg = SearchConfig(
        data_dir=tiny_data,
        space="lenet",
        trials=2,
        epochs=1,
        out=tmp_path,
        study="robust",
        retrain=False,
        dashboard_every=0,
        steps_per_execution=1,
        tie_break="robust",
    )
    out = io.StringIO()
    study = run_search(cfg, events=Progress(2, stream=out).events()).study
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert complete
    for trial in complete:
        assert 0.0 <= trial.user_attrs[TrialKey.ROBUST_VAL_ACCURACY] <= 1.0
    assert "robust 0." in out.getvalue()
    assert tie_break_of(study) == "robust"
    # Written out here, not through rank_key: accuracy, then the robust accuracy, then the earlier trial
    # (two trials of a real search tie on both only by chance, and then the loss would decide).
    expected = max(complete, key=lambda t: (t.value, t.user_attrs[TrialKey.ROBUST_VAL_ACCURACY], -t.number))
    assert best_trial(study).number == expected.number
