"""data_tools: FAQ files -> instruction records in data/{train,val,test}.jsonl (never imports torch).

    tunebot data examples/acme.yaml
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunebot.config import RunConfig
    from tunebot.rundir import RunDir


def run(cfg: "RunConfig", run_dir: "RunDir") -> None:
    """Builds, splits and writes the records, rejects and report of the data stage."""
    from data_tools.stage import run_data_stage

    run_data_stage(cfg, run_dir)
