"""House rules a reviewer should not have to check by eye: short functions in the product code, and a
repository that states facts with their dates and hosts instead of citing a working session."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("cli", "search", "spaces", "results")
MAX_FUNCTION_LINES = 50
SESSION = re.compile(r"\bsessions? ?-?\d+", re.IGNORECASE)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function or method longer than ``limit`` lines, decorators excluded."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_long_functions_are_found() -> None:
    body = "\n".join(f"    x = {i}" for i in range(60))
    assert long_functions(f"def short():\n    return 1\n\ndef long():\n{body}\n") == [("long", 61)]


def test_no_product_function_is_over_fifty_lines() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {name} ({lines} lines)"
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, lines in long_functions(path.read_text())
    ]
    assert found == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(found)


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [
        ROOT / name
        for name in listed.splitlines()
        if name.endswith((".py", ".md", ".toml", ".txt", ".sh", ".yml", ".yaml", ".cfg")) or name == ".ci/run"
    ]


def test_session_numbers_are_recognised() -> None:
    number = "12"  # kept apart from the word, or this file would cite a session itself
    assert SESSION.search(f"measured in session {number}") and SESSION.search(f"the session-{number} benchmark")
    assert not SESSION.search("clear_session() before every trial")


def test_nothing_cites_a_session_number() -> None:
    files = _tracked_text_files()
    assert files, "git ls-files found nothing"
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}"
        for path in files
        if path.is_file()
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if SESSION.search(line)
    ]
    assert found == [], "state the date and host instead of a session number:\n" + "\n".join(found)
