"""benchmarks/versus.py gives KerasTuner independent draw sequences per seed (its oracle draws the
k-th value of a run with seed + k, so consecutive seeds passed as is draw the same values shifted)."""

from __future__ import annotations

import keras_tuner as kt

from benchmarks.versus import kerastuner_seed


def _draws(seed: int, trials: int = 3) -> list[float]:
    """The values KerasTuner's random oracle draws for its first ``trials`` trials of a 4-parameter space."""
    hps = kt.HyperParameters()
    for name in "abcd":
        hps.Float(name, 0.0, 1.0)
    oracle = kt.oracles.RandomSearchOracle(hyperparameters=hps, max_trials=trials, seed=seed)
    return [value for i in range(trials) for value in oracle.populate_space(str(i))["values"].values()]


def test_plain_consecutive_seeds_draw_the_same_values_shifted() -> None:
    """The flaw the spacing mends, shown on KerasTuner itself: seed 2's draws are seed 1's minus one."""
    one, two = _draws(kerastuner_seed(1, "plain")), _draws(kerastuner_seed(2, "plain"))
    assert one[1:4] == two[0:3]


def test_spaced_seeds_draw_no_shared_values() -> None:
    draws = [_draws(kerastuner_seed(seed)) for seed in (0, 1, 2, 3)]
    for i, first in enumerate(draws):
        for second in draws[i + 1 :]:
            assert not set(first) & set(second)


def test_seed_zero_is_a_seed_for_kerastuner() -> None:
    """KerasTuner takes a seed of 0 as "no seed" and picks a random one, so a run could not be repeated."""
    assert kerastuner_seed(0) != 0
    assert _draws(kerastuner_seed(0)) == _draws(kerastuner_seed(0))
