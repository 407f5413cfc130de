"""The first screen: after one epoch only the top share of all first-epoch scores goes on."""

from __future__ import annotations

import optuna
import pytest

from search.sampling.screen import MIN_COMPARED, SCREEN_IMAGES, SCREEN_STEP, ScreenPruner, promoted, screen_images

optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_promotion_rule_keeps_the_top_share() -> None:
    others = [0.9, 0.8, 0.7, 0.6, 0.5]  # with the trial: six scores, the top third is two places
    assert promoted(0.95, others, 1 / 3)  # best
    assert promoted(0.85, others, 1 / 3)  # second
    assert not promoted(0.75, others, 1 / 3)  # third: two scores above it fill the top third
    assert promoted(0.8, others, 1 / 3)  # a tie with the second counts in the trial's favour
    assert promoted(0.75, others, 1 / 2) and not promoted(0.65, others, 1 / 2)
    assert not promoted(float("nan"), others, 1 / 3)


def test_too_few_scores_promote_everything() -> None:
    assert promoted(0.0, [0.9] * (MIN_COMPARED - 1), 1 / 3)
    assert not promoted(0.0, [0.9] * MIN_COMPARED, 1 / 3)


def test_the_pruner_judges_only_at_the_first_look_against_the_whole_study() -> None:
    study = optuna.create_study(direction="maximize", pruner=ScreenPruner(1 / 3))
    decisions: dict[int, list[bool]] = {}
    first_epoch = [0.5, 0.6, 0.7, 0.95, 0.1, 0.65]

    def objective(trial: optuna.Trial) -> float:
        decisions[trial.number] = []
        for epoch, value in enumerate((first_epoch[trial.number], 0.0, 0.0), start=SCREEN_STEP):
            trial.report(value, epoch)
            decisions[trial.number].append(trial.should_prune())
        return first_epoch[trial.number]

    study.optimize(objective, n_trials=len(first_epoch))
    # Trials 0-2 meet fewer than three earlier scores and go on; trial 3 is the best so far; trial 4
    # is the worst; trial 5 (0.65) has 0.7 and 0.95 above it, which fill the top third of six.
    assert [d[0] for d in decisions.values()] == [False, False, False, False, True, True]
    # Never judged after the screen: a later epoch's poor score does not prune a promoted trial.
    assert all(d[1:] == [False, False] for d in decisions.values())


def test_share_is_checked() -> None:
    with pytest.raises(ValueError, match="screen share"):
        ScreenPruner(0.0)


def test_large_data_is_screened_on_part_of_its_first_epoch() -> None:
    assert screen_images(1_000) is None and screen_images(SCREEN_IMAGES) is None
    assert screen_images(22_054) == SCREEN_IMAGES
