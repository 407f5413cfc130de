"""Settings in one place: validated when built, the parser's defaults, stored whole in the study."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from cli.parser import build_parser, given_settings
from search.config import SearchConfig
from search.engine.study import load_space, make_storage, open_study, record_overrides
from search.errors import UserError
from search.schema import StudyKey


def _not_defaults(data_dir: Path, out: Path) -> SearchConfig:
    """A value other than the default in every field."""
    return SearchConfig(
        data_dir=data_dir,
        space="lenet",
        trials=7,
        timeout=123.0,
        epochs=3,
        patience=1,
        final_epochs=5,
        study="roundtrip",
        storage=f"sqlite:///{out / 'r.db'}",
        out=out,
        sampler="random",
        local_share=0.25,
        pruner="sha",
        seed=11,
        objectives=("accuracy", "params"),
        named_points=False,
        retrain=False,
        final_data="train+valid",
        final_candidates=1,
        keep_models=4,
        export=("savedmodel",),
        n_classes=12,
        valid_fraction=0.3,
        workers=3,
        precision="mixed_bfloat16",
        heartbeat=7.0,
        max_failures=2,
        dashboard_every=0,
        trial_time_fraction=0.5,
        continue_cut=False,
        steps_per_execution=2,
        warm_start=("src",),
        tie_break="robust",
        engine="fit",
        population=3,
        command="python run_search.py search --made-up",
    )


def test_every_setting_survives_the_round_trip_through_the_study(tmp_path: Path) -> None:
    cfg = _not_defaults(tmp_path / "data", tmp_path)
    defaults = SearchConfig(data_dir=".")
    for f in dataclasses.fields(SearchConfig):
        assert getattr(cfg, f.name) != getattr(defaults, f.name), f"{f.name} is at its default in the test"
    optuna.create_study(study_name="src", storage=cfg.storage_url)  # the --warm-start source (no trials)
    open_study(cfg, make_storage(cfg), "hash0", load_space(cfg.space))
    study = optuna.load_study(study_name="roundtrip", storage=cfg.storage_url)
    back = SearchConfig.from_study_attrs(study.user_attrs)
    for f in dataclasses.fields(SearchConfig):
        assert getattr(back, f.name) == getattr(cfg, f.name), f.name
    assert back == cfg


def test_an_override_is_returned_recorded_and_optionally_stored(tmp_path: Path) -> None:
    cfg = SearchConfig(data_dir=tmp_path, space="lenet", study="ov", out=tmp_path)
    open_study(cfg, make_storage(cfg), "h", load_space(cfg.space))
    study = optuna.load_study(study_name="ov", storage=cfg.storage_url)
    new, changes = SearchConfig.from_study_attrs(study.user_attrs).with_overrides(
        {"final_epochs": 4, "patience": 3, "command": "retrain"}
    )
    assert changes == {"final_epochs": (None, 4)}  # patience 3 is the stored value: no change
    record_overrides(study, new, changes, store=False)
    assert study.user_attrs[StudyKey.OVERRIDES][0]["changes"] == {"final_epochs": [None, 4]}
    assert SearchConfig.from_study_attrs(study.user_attrs).final_epochs is None  # retrain keeps the study's
    record_overrides(study, new, changes, store=True)
    assert SearchConfig.from_study_attrs(study.user_attrs).final_epochs == 4


def test_parser_defaults_are_the_config_defaults() -> None:
    args = build_parser("x").parse_args(["search", "--data-dir", "d"])
    assert given_settings(args) == {"data_dir": Path("d")}  # nothing but what was typed
    typed = build_parser("x").parse_args(
        [
            "search",
            "--data-dir",
            "d",
            "--epochs",
            "4",
            "--no-retrain",
            "--objective",
            "accuracy,params",
            "--local-share",
            "0",
        ]
    )
    assert given_settings(typed) == {
        "data_dir": Path("d"),
        "epochs": 4,
        "retrain": False,
        "objectives": ("accuracy", "params"),
        "local_share": 0.0,
    }
    help_text = build_parser("x")._subparsers._group_actions[0].choices["search"].format_help()
    assert "(default 10)" in help_text and "(default screen)" in help_text  # from the dataclass


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("trials", 0, "--trials: must be a positive number"),
        ("local_share", 1.0, "--local-share: must be at least 0 and below 1"),
        ("valid_fraction", 1.5, "--valid-fraction: must be between 0 and 1"),
        ("sampler", "magic", "--sampler: 'magic' is not one of tpe"),
        ("objectives", ("params",), "expected 'accuracy', 'accuracy,params' or 'accuracy,latency'"),
        ("export", ("pdf",), "--export: unknown format 'pdf'"),
        ("n_classes", 1, "--n-classes: must be an integer of at least 2"),
        ("space", " ", "--space: must name a space"),
    ],
)
def test_bad_settings_are_refused_when_built(field: str, value: object, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SearchConfig(data_dir=".", **{field: value})


def test_unknown_stored_keys_are_ignored_and_missing_ones_default() -> None:
    cfg = SearchConfig.from_json({"data_dir": "d", "epochs": 2, "from_a_newer_version": 1})
    assert cfg.epochs == 2 and cfg.patience == SearchConfig.patience


def test_what_a_study_is_cannot_be_overridden_and_is_not_recorded(tmp_path: Path) -> None:
    from cli.settings import resolve

    cfg = SearchConfig(data_dir=tmp_path, space="lenet", study="fixed", out=tmp_path)
    open_study(cfg, make_storage(cfg), "h", load_space(cfg.space))
    for typed in ({"space": "cnn"}, {"objectives": ("accuracy", "params")}):
        with pytest.raises(UserError, match="pick another --study name"):
            resolve({"study": "fixed", "out": tmp_path, **typed}, "search", print, store=True)
    study = optuna.load_study(study_name="fixed", storage=cfg.storage_url)
    assert study.user_attrs[StudyKey.CONFIG]["space"] == "lenet" and StudyKey.OVERRIDES not in study.user_attrs
    again = resolve({"study": "fixed", "out": tmp_path, "epochs": 2}, "search", print, store=True).cfg
    assert again.space == "lenet" and again.epochs == 2  # other settings still override
