"""The final model's files as one set, swapped in with one rename.

A final stage writes files that only make sense together: ``best_model.keras``, its members, the test
report and the misclassified images of that model, its ``best_config.json`` and export artifacts. Written
one by one over the old ones, a crash or Ctrl-C between two writes leaves a new model beside old reports.
So each final stage writes its whole set into a new folder (``new_final_set``), which becomes
``runs/<study>/final-<time>-<pid>-<random>/`` when complete; ``final`` is a symlink to the current set,
replaced by one ``os.replace``, and the run folder's well-known names are stable symlinks ``NAME ->
final/NAME`` (``RunFile`` in search/schema.py). A reader that opens ``runs/<study>/best_model.keras`` gets
the old set's file or the new set's, and every step of a swap leaves the one or the other whole.

Swapping a set in, removing superseded ones and adding a file to the current set (``current_final_set``,
for ``export-model``) hold an exclusive ``flock`` on ``runs/<study>/.final.lock``: two ``retrain``
commands each build their own set and the last swap wins; a set is never removed while an export writes
into it. Run folders of the older layout (plain files at the top) are adopted first, name by name, each
step showing the same old files (on Linux; elsewhere the plain ``final_members/`` folder is absent for one
moment, ``_put_link_over_folder``). POSIX only: symlinks and flock.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..schema import RunFile, atomic_path, in_final_set, private_dir, private_tmp

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_TMP = ".tmp-"  # how temporary names start (``private_tmp``, ``_new_symlink``)


@contextmanager
def new_final_set(run_dir: Path) -> Iterator[Path]:
    """An empty private folder for a final stage's whole set. When the block ends normally the set becomes
    the current one; when it raises (an error, Ctrl-C) the folder is removed and the old set stays."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    build = private_dir(run_dir, f"{RunFile.FINAL_BUILD_PREFIX}{os.getpid()}-{socket.gethostname()}-")
    try:
        yield build
        with _locked(run_dir):
            _publish(run_dir, build)
    finally:
        shutil.rmtree(build, ignore_errors=True)  # gone already once published (renamed)


@contextmanager
def current_final_set(run_dir: Path) -> Iterator[Path]:
    """The current set's folder, to add files to (``export-model``), or ``run_dir`` itself when it holds no
    final model. Locked meanwhile: no swap removes the folder, and two exports do not lose each other's
    entries in ``export_report.json``. New files get their stable names in ``run_dir`` when the block ends."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        yield run_dir
        return
    with _locked(run_dir):
        folder = _settle(run_dir)
        if folder is None:
            yield run_dir
            return
        for name in os.listdir(folder):  # left by an interrupted export: only lock holders write here
            if name.startswith(_TMP):
                _remove(folder / name)
        try:
            yield folder
        finally:
            for name in _members(folder):
                _link_name(run_dir, name)


def current_folder(run_dir: Path) -> Path | None:
    """The current set's folder, or None (no final stage has run, only one of the older layout, or the
    folder was deleted by hand)."""
    final = Path(run_dir) / RunFile.FINAL_DIR
    folder = Path(run_dir) / os.readlink(final) if final.is_symlink() else None
    return folder if folder is not None and folder.is_dir() else None


# -- the steps; each leaves the old set or the new set visible, whole --------------------------------------
@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """An exclusive flock on ``run_dir/.final.lock`` (O_NOFOLLOW: a planted symlink is refused)."""
    fd = os.open(run_dir / RunFile.FINAL_LOCK, os.O_RDONLY | os.O_CREAT | _NOFOLLOW, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _publish(run_dir: Path, build: Path) -> None:
    """Make the complete set in ``build`` the current one: rename it to a set folder, give its new names
    links (they dangle until the swap: absent, as in the old set), swap ``final``, remove what is stale."""
    _settle(run_dir)
    folder = _new_set_folder(run_dir)
    os.replace(build, folder)  # over the empty folder that reserved the name
    for name in _members(folder):
        _link_name(run_dir, name)
    _replace_with_symlink(folder.name, run_dir / RunFile.FINAL_DIR)  # the swap
    _prune(run_dir)


def _settle(run_dir: Path) -> Path | None:
    """The current set's folder, after the set's names that are plain files or folders (the older layout,
    or an interrupted adoption) became links into it: each is first cloned into the set (hard links, so
    the same bytes), then replaced by its link. None when there is no set and nothing to adopt."""
    plain = [name for name in _members(run_dir) if not (run_dir / name).is_symlink()]
    folder = current_folder(run_dir)
    if folder is None and plain:
        folder = _new_set_folder(run_dir)
        _replace_with_symlink(folder.name, run_dir / RunFile.FINAL_DIR)
    for name in plain:
        if not os.path.lexists(folder / name):
            _clone(run_dir / name, folder / name)
        _link_name(run_dir, name)
    return folder


def _prune(run_dir: Path) -> None:
    """Remove superseded sets, sets left by dead builders on this host, links to names the current set lacks
    (a dangling link reads as absent already; this only tidies) and temporary entries of the set's names
    left by an interrupted swap (only swaps, under the lock, make them at the top of the run folder)."""
    current = os.readlink(run_dir / RunFile.FINAL_DIR)
    for entry in os.scandir(run_dir):
        name = entry.name
        if entry.is_dir(follow_symlinks=False) and (
            (name.startswith(RunFile.FINAL_SET_PREFIX) and name != current)
            or (name.startswith(RunFile.FINAL_BUILD_PREFIX) and _abandoned(name))
        ):
            shutil.rmtree(entry.path, ignore_errors=True)
        elif in_final_set(name) and entry.is_symlink() and not os.path.exists(entry.path):
            os.unlink(entry.path)
        elif name.startswith(_TMP) and in_final_set(name.split("-", 3)[-1]):  # .tmp-<pid>-<random>-<name>
            _remove(Path(entry.path))


def _abandoned(build_name: str) -> bool:
    """Whether a ``.final-build-<pid>-<host>-<random>`` folder's builder ran on this host and is gone."""
    pid, _, rest = build_name[len(RunFile.FINAL_BUILD_PREFIX) :].partition("-")
    if not pid.isdigit() or rest.rsplit("-", 1)[0] != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


# -- names and links ---------------------------------------------------------------------------------------
def _members(folder: Path) -> list[str]:
    """The set's entries in ``folder``, temporary names (``.tmp-...``) left out."""
    return sorted(name for name in os.listdir(folder) if in_final_set(name))


def _new_set_folder(run_dir: Path) -> Path:
    return private_dir(run_dir, f"{RunFile.FINAL_SET_PREFIX}{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-")


def _link_name(run_dir: Path, name: str) -> None:
    """``run_dir/name`` becomes the link ``final/name``, in one rename over a file or another link."""
    path, target = run_dir / name, f"{RunFile.FINAL_DIR}/{name}"
    if path.is_symlink() and os.readlink(path) == target:
        return
    link = _new_symlink(target, path)
    try:
        if path.is_dir() and not path.is_symlink():
            _put_link_over_folder(link, path)
        else:
            os.replace(link, path)
    finally:
        _remove(link)


def _put_link_over_folder(link: Path, folder: Path) -> None:
    """A plain folder (the older layout's ``final_members/``) gives way to ``link``. No rename replaces a
    folder with a link: Linux exchanges the two names in one step (renameat2), after which ``link``'s name
    holds the folder; elsewhere the folder is moved aside first, the one moment the name is absent. Either
    way its files are in the set already."""
    if _exchange(link, folder):
        return
    aside = private_tmp(folder, folder=True)
    try:
        os.replace(folder, aside)  # over the empty folder that reserved the name
        os.replace(link, folder)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _replace_with_symlink(target: str, path: Path) -> None:
    """``path`` (a file, a link or nothing) becomes a symlink to ``target`` in one rename."""
    link = _new_symlink(target, path)
    try:
        os.replace(link, path)
    finally:
        _remove(link)


def _new_symlink(target: str, beside: Path) -> Path:
    """A symlink to ``target`` under an unpredictable name beside ``beside`` (``os.symlink`` creates
    exclusively: nothing planted under that name is followed or reused)."""
    while True:
        link = beside.with_name(f"{_TMP}{os.getpid()}-{secrets.token_hex(6)}-{beside.name}")
        try:
            os.symlink(target, link)
            return link
        except FileExistsError:
            continue


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28 or musl, e.g. macOS
        return None


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` in one step (renameat2 with RENAME_EXCHANGE); False where the C
    library, the kernel or the file system lacks it."""
    call = _renameat2()
    at_fdcwd, rename_exchange = -100, 2
    return call is not None and call(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _clone(src: Path, dst: Path) -> None:
    """``dst`` with ``src``'s content, appearing whole or not at all: hard links where the file system has
    them (no bytes copied), copies where not."""
    if src.is_dir():
        tmp = private_tmp(dst, folder=True)
        try:
            shutil.copytree(src, tmp, symlinks=True, copy_function=_link_or_copy, dirs_exist_ok=True)
            os.replace(tmp, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        with atomic_path(dst) as tmp:
            shutil.copy2(src, tmp)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst)
