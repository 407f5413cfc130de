"""Errors that reach the user as one line and exit status 2, never as a traceback."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input that the user can fix: printed as one line, exit status 2."""


class DataError(UserError):
    """A data file that cannot be used; the message always names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
