"""Storage URLs lose their secrets before they are stored, printed or logged."""

from __future__ import annotations

import json

import pytest

from search.config import SearchConfig
from search.redaction import redact, redact_argument, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://me:secret@db/x", "postgresql://me:***@db/x"),
        # SQLAlchemy reads a '/' inside the password as part of it; the old pattern stopped there.
        ("postgresql://me:se/cret@db:5432/x", "postgresql://me:***@db:5432/x"),
        # A raw '@' inside the password: SQLAlchemy would take 'p' as the password and 'ss@db' as the host.
        ("postgresql://me:p@ss@db/x", "postgresql://me:***@db/x"),
        ("postgresql://me:p%40ss@db/x", "postgresql://me:***@db/x"),
        # libpq reads ?password= as the password; render_as_string shows it.
        ("postgresql://me@db/x?sslmode=require&password=secret", "postgresql://me@db/x?sslmode=require&password=***"),
        ("mysql+pymysql://me@db/x?passwd=secret", "mysql+pymysql://me@db/x?passwd=***"),
        ("postgresql+psycopg://me:secret@db/x#old", "postgresql+psycopg://me:***@db/x#old"),  # --warm-start URL#NAME
        ("sqlite:///runs/a/study.db", "sqlite:///runs/a/study.db"),
        ("postgresql://me@db/x", "postgresql://me@db/x"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_finds_urls_and_dsn_passwords_inside_text() -> None:
    text = "cannot open storage postgresql://me:se/cret@db/x: failed; dsn host=db password=secret user=me."
    assert redact(text) == ("cannot open storage postgresql://me:***@db/x: failed; dsn host=db password=*** user=me.")
    assert redact("trial 3 [warm:old#2] lr=0.01, no URL here") == "trial 3 [warm:old#2] lr=0.01, no URL here"


def test_an_argument_with_a_space_in_its_password_is_hidden_whole() -> None:
    assert redact_argument("--storage=postgresql://me:pass word@db/x") == "--storage=postgresql://me:***@db/x"
    assert redact_argument("postgresql://me:pass word@db/x") == "postgresql://me:***@db/x"
    assert redact_argument("--epochs") == "--epochs"


def test_stored_settings_hold_no_password_but_the_private_form_does() -> None:
    cfg = SearchConfig(
        data_dir=".",
        storage="postgresql://me:se/cret@db/x",
        warm_start=("old", "postgresql://me:se/cret@db/y#old"),
        command="python run_search.py search --storage postgresql://me:se/cret@db/x",
    )
    stored = json.dumps(cfg.to_json())
    assert "cret" not in stored and "postgresql://me:***@db/x" in stored and "postgresql://me:***@db/y#old" in stored
    private = cfg.to_json(secrets=True)
    assert private["storage"] == cfg.storage and private["warm_start"] == list(cfg.warm_start)
    assert SearchConfig.from_json(json.loads(cfg.dumps(secrets=True))) == cfg


def test_an_override_of_a_secret_setting_is_shown_redacted() -> None:
    cfg = SearchConfig(data_dir=".")
    _, changes = cfg.with_overrides({"warm_start": ("postgresql://me:secret@db/y#old",)})
    assert "secret" not in json.dumps(changes) and changes["warm_start"][1] == ["postgresql://me:***@db/y#old"]
