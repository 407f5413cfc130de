"""A command resolves its run once: the study's storage is opened once and the study made once, the
space is loaded once and each warm-start source is read once, however many modules use them."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

import spaces
from cli.main import main
from search.engine import study as study_module
from search.engine import warm_start

COMMON = [
    "--space",
    "lenet",
    "--epochs",
    "1",
    "--dashboard-every",
    "0",
    "--pruner",
    "none",
    "--final-epochs",
    "1",
    "--final-candidates",
    "1",
    "--export",
    "",
    "--precision",
    "float32",
]


class Counts:
    """What one command opened and read, by study name, storage URL and source item."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.studies: Counter[str] = Counter()
        self.storages: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.spaces: Counter[str] = Counter()
        create, load, read, get_space = optuna.create_study, optuna.load_study, warm_start._read, spaces.get_space
        real_storage = study_module.RDBStorage
        counts = self

        class CountedStorage(real_storage):  # type: ignore[misc, valid-type]
            def __init__(self, url: str, *args: object, **kwargs: object) -> None:
                counts.storages[url] += 1
                super().__init__(url, *args, **kwargs)

        def counted(real, key: str):
            def call(*args: object, **kwargs: object):
                self.studies[str(kwargs.get(key))] += 1
                return real(*args, **kwargs)

            return call

        def counted_read(cfg, source):
            self.sources[source.item] += 1
            return read(cfg, source)

        def counted_space(name: str):
            self.spaces[name] += 1
            return get_space(name)

        monkeypatch.setattr(study_module, "RDBStorage", CountedStorage)
        monkeypatch.setattr(optuna, "create_study", counted(create, "study_name"))
        monkeypatch.setattr(optuna, "load_study", counted(load, "study_name"))
        monkeypatch.setattr(warm_start, "_read", counted_read)
        monkeypatch.setattr(spaces, "get_space", counted_space)


@pytest.fixture(autouse=True)
def _keep_sigterm() -> Iterator[None]:
    """``main`` makes SIGTERM a Ctrl-C for its process; this test process gets its own handler back."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


def test_a_search_opens_its_study_once_and_reads_each_source_once(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = str(tmp_path)
    assert (
        main(
            [
                "search",
                "--data-dir",
                str(tiny_data),
                "--trials",
                "1",
                "--study",
                "first",
                "--out",
                out,
                "--no-retrain",
                *COMMON,
            ]
        )
        == 0
    )

    new = Counts(monkeypatch)  # a new study that warm-starts from "first", with its final stage
    assert (
        main(
            [
                "search",
                "--data-dir",
                str(tiny_data),
                "--trials",
                "1",
                "--study",
                "second",
                "--out",
                out,
                "--warm-start",
                "first",
                *COMMON,
            ]
        )
        == 0
    )
    url = f"sqlite:///{tmp_path / 'second' / 'study.db'}"
    assert new.storages[url] == 1 and new.studies["second"] == 1
    assert new.sources == {"first": 1} and new.studies["first"] == 1  # the source, read once
    assert new.spaces == {"lenet": 1}
    monkeypatch.undo()

    again = Counts(monkeypatch)  # the same study resumed with one more trial: read, then searched
    assert main(["search", "--study", "second", "--out", out, "--trials", "1", "--no-retrain"]) == 0
    assert again.storages[url] == 1 and again.studies == {"second": 1}
    assert again.sources == {} and again.spaces == {"lenet": 1}  # "first" was enqueued already
    study = optuna.load_study(study_name="second", storage=url)
    assert len([t for t in study.trials if t.state.is_finished()]) == 2
