"""sft: fine-tuning with TRL's SFTTrainer (train.py, methods.py, checkpoints.py, launch.py),
merging (merge.py) and hyper-parameter search (tune.py).

    tunebot train examples/acme.yaml && tunebot merge examples/acme.yaml
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunebot.config import RunConfig
    from tunebot.rundir import RunDir


def run(cfg: "RunConfig", run_dir: "RunDir") -> None:
    """Fine-tunes the configured model on data/train.jsonl and writes sft/adapter.

    A run killed mid-training continues from its last checkpoint of the same config.
    """
    from sft.train import train

    train(cfg, run_dir, resume=None)


def run_merge(cfg: "RunConfig", run_dir: "RunDir") -> None:
    """Merges sft/adapter into the base model and writes merged/."""
    from sft.merge import merge_adapter

    merge_adapter(cfg, run_dir)


def run_tune(cfg: "RunConfig", run_dir: "RunDir") -> None:
    """Searches sft hyper-parameters with Optuna and writes tune/ (results table, best.yaml)."""
    from sft.tune import tune

    tune(cfg, run_dir)
