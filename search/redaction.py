"""Storage URLs without their secrets: the one redactor for every URL the tool stores, prints or logs.

A study is shared through a database URL such as ``postgresql://USER:PASSWORD@HOST/DB``. The password
must never reach the study (its stored settings and command line), a run file, a message or a log.
SQLAlchemy, which Optuna's storage uses, decides what the password is, so its parser
(``make_url``) does the hiding; two scrubs cover what it leaves: a raw ``@`` inside the password
(SQLAlchemy reads ``user:p@ss@host`` as password ``p`` on host ``ss@host``, so everything up to the
last ``@`` is hidden first) and passwords in the query string (``?password=...``, which libpq
reads and ``render_as_string`` shows).
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

HIDDEN = "***"
# Query-string and DSN keys whose values are secrets (libpq, MySQL drivers, generic tokens).
SECRET_KEYS = (
    "password",
    "passwd",
    "pwd",
    "pass",
    "sslpassword",
    "sslkey_password",
    "secret",
    "token",
    "access_token",
    "api_key",
    "apikey",
)
_KEYS = "|".join(SECRET_KEYS)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A URL inside a longer text (a driver's error message): up to whitespace, a quote or a bracket.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]]*[^\s'\"<>()\[\]:,.;]")
# scheme://user:PASSWORD@host...: the password runs to the last '@' (so a raw '@' or '/' in it is hidden).
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*:)(?P<password>.*)@(?P<host>[^@]*)$", re.S)
_QUERY_SECRET = re.compile(rf"(?i)([?&;](?:{_KEYS})=)[^&;#]*")
_DSN_SECRET = re.compile(rf"(?i)\b((?:{_KEYS})\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,]+)")
_STUDY_SUFFIX = re.compile(r"#[A-Za-z0-9_.-]+$")  # --warm-start's STORAGE_URL#NAME


def redact_url(url: str) -> str:
    """``url`` with its password and query-string secrets replaced by ``***``; other text as is.

    ``postgresql://u:p@ss@h/db?password=x#old`` -> ``postgresql://u:***@h/db?password=***#old``.
    """
    match = _SCHEME.search(url)
    if match is None:
        return _DSN_SECRET.sub(rf"\1{HIDDEN}", url)
    head, url = url[: match.start()], url[match.start() :]
    suffix = _STUDY_SUFFIX.search(url)
    tail = suffix.group() if suffix else ""
    url = url[: len(url) - len(tail)]
    url = _USERINFO.sub(lambda m: f"{m['head']}{HIDDEN}@{m['host']}", url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        parsed = None  # not a URL SQLAlchemy reads: the scrubs above and below still apply
    if parsed is not None and parsed.password not in (None, HIDDEN):  # a password the scrub above missed
        url = parsed.render_as_string(hide_password=True)
    return head + _QUERY_SECRET.sub(rf"\1{HIDDEN}", url) + tail


def redact(text: str) -> str:
    """Every URL inside ``text`` redacted (``redact_url``), and ``password=...`` pairs of a DSN."""
    return _DSN_SECRET.sub(rf"\1{HIDDEN}", _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text))


def redact_argument(arg: str) -> str:
    """One command-line argument: a URL in it runs to the argument's end, spaces included
    (``--storage=postgresql://u:pass word@h/db`` is one argument)."""
    match = _SCHEME.search(arg)
    return redact(arg) if match is None else arg[: match.start()] + redact_url(arg[match.start() :])
