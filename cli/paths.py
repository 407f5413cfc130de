"""Where a command writes: checked before the work starts, so a wrong path is one line, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from search.errors import UserError


def output_file(path: Path | str, flag: str) -> Path:
    """A file to (over)write: not a folder, and inside a folder (made if missing) rather than a file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; {flag} names the file to write")
    _folder_or_missing(path.parent, flag)
    return path


def output_folder(path: Path | str, flag: str) -> Path:
    """A folder to write into: a folder already, or nothing yet (no file of that name)."""
    path = Path(path)
    _folder_or_missing(path, flag)
    return path


def _folder_or_missing(path: Path, flag: str) -> None:
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise UserError(f"{part}: is not a folder ({flag} {path})")
            return


@contextmanager
def writing(path: Path | str, what: str) -> Iterator[None]:
    """A failed write (a full disk, a file-size limit, no permission) as one line naming the file;
    the atomic writers leave the old file in place."""
    try:
        yield
    except OSError as exc:
        raise UserError(f"{path}: cannot write {what} ({exc.strerror or exc})") from None
