"""eval: answer the test split with each system, score it and write the report.

    tunebot eval examples/acme.yaml
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunebot.config import RunConfig
    from tunebot.rundir import RunDir


def run(cfg: "RunConfig", run_dir: "RunDir") -> None:
    """Generates answers for every configured system and writes eval/predictions, scores and report."""
    from eval.stage import run_eval_stage

    run_eval_stage(cfg, run_dir)
