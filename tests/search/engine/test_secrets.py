"""A storage password reaches no output, run file, study attribute or process command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
from support.postgres import PG_URL, needs_pg

ROOT = Path(__file__).resolve().parents[3]
RUN = [sys.executable, str(ROOT / "run_search.py")]
# The machine's PostgreSQL trusts local connections and ignores the password; the '/' in it is what
# the old redactor missed.
PASSWORD = "Zq7/hunter2"
SECRET = "hunter2"


def _command_lines() -> dict[int, str]:
    """Every process's command line, as any local user can read it (``ps``)."""
    lines = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return lines


def _run_watching(args: list[str], env: dict[str, str], log: Path) -> tuple[int, list[str]]:
    """Run the command; meanwhile read every command line, keeping those of its workers and any
    that shows the secret."""
    seen: list[str] = []
    with open(log, "w") as fh:
        proc = subprocess.Popen([*RUN, *args], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 400
        while proc.poll() is None and time.monotonic() < deadline:
            seen += [line for line in _command_lines().values() if SECRET in line or "cli.worker" in line]
            time.sleep(0.1)
        code = proc.wait(timeout=60)
    return code, seen


@needs_pg
def test_a_password_in_the_storage_url_is_never_shown_stored_or_on_a_command_line(
    tiny_data: Path, tmp_path: Path
) -> None:
    name = f"pg-secret-{uuid.uuid4().hex[:8]}"
    url = PG_URL.replace("postgres@", f"postgres:{PASSWORD}@")
    env = {**os.environ, "HPSEARCH_STORAGE": url}
    out = tmp_path / "runs"
    code, seen = _run_watching(
        [
            "search",
            "--data-dir",
            str(tiny_data),
            "--space",
            "lenet",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--pruner",
            "none",
            "--study",
            name,
            "--out",
            str(out),
            "--workers",
            "2",
            "--heartbeat",
            "2",
            "--dashboard-every",
            "0",
            "--final-epochs",
            "1",
            "--final-candidates",
            "1",
            "--export",
            "",
        ],
        env,
        tmp_path / "search.log",
    )
    output = (tmp_path / "search.log").read_text()
    assert code == 0, output[-3000:]
    assert any("cli.worker" in line for line in seen), "the workers' command lines were never seen"
    assert not [line for line in seen if SECRET in line]
    outputs = [output]
    for command in (
        ["export", "--study", name, "--out", str(out)],
        ["dashboard", "--study", name, "--out", str(out)],
        ["retrain", "--study", name, "--out", str(out), "--final-epochs", "1"],
        # an override of a secret setting is printed: without the password
        ["retrain", "--study", name, "--out", str(out), "--final-epochs", "1", "--warm-start", f"{url}#{name}-old"],
    ):
        done = subprocess.run([*RUN, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == (2 if "--warm-start" in command else 0), outputs[-1][-3000:]
    assert not [text for text in outputs if SECRET in text]
    assert "postgres:***@" in outputs[-1]  # the refusal names the source, redacted
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"best_config.json", "test_report.json", "dashboard.html"} <= {p.name for p in files}
    assert not [p for p in files if SECRET.encode() in p.read_bytes()]
    study = optuna.load_study(study_name=name, storage=PG_URL)
    stored = json.dumps(
        [study.user_attrs, [(t.user_attrs, t.system_attrs) for t in study.get_trials(deepcopy=False)]], default=str
    )
    assert SECRET not in stored and "postgres:***@" in stored  # the stored settings keep the redacted URL
