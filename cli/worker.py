"""One ``--workers`` child: ``python -m cli.worker INDEX reserve|no-reserve``, settings on stdin.

The parent writes its resolved settings as JSON to the child's standard input (a private pipe: a
command line is visible to every local user, and the settings may hold a storage password), so
every worker searches exactly as the parent does; the index varies the sampler's seed. Workers print
their trial lines, never retrain, never write dashboards and leave the resume command to the parent.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from .main import prepare_process, run_guarded


def main(argv: list[str]) -> int:
    from search.config import SearchConfig
    from search.progress import Progress

    from .backend import start_backend

    cfg = SearchConfig.from_json(json.loads(sys.stdin.read()))
    index = int(argv[0])
    final_stage = dataclasses.replace(cfg, retrain=True) if argv[1:] == ["reserve"] else None
    start_backend(cfg.precision, say=lambda _line: None)  # the parent printed the precision once
    from search.engine.loop import run_search
    from search.final.budget import reserve_seconds

    progress = Progress(cfg.trials, timeout=cfg.timeout, epochs=cfg.epochs)

    def reserve(study) -> float:  # the parent's final stage runs after the workers
        return reserve_seconds(study, final_stage) if final_stage else 0.0

    run_search(cfg, events=progress.events(), worker_index=index, reserve=reserve)
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(run_guarded(lambda: main(sys.argv[1:])))
