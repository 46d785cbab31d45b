"""Runs stages in order over one run directory, skipping those already finished for this config.

    tunebot run examples/acme-demo.yaml

Stages are imported only when they run, so `tunebot --help` and `tunebot data` never import torch.
A killed run resumes: a stage whose DONE file carries the current config's fingerprint is kept.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from tunebot.config import RunConfig, dump_config
from tunebot.errors import StageNotApplicable
from tunebot.rundir import RunDir, atomic_write_text

# command name -> (run-directory stage, "module:function")
STAGE_ENTRIES: dict[str, tuple[str, str]] = {
    "data": ("data", "data_tools:run"),
    "train": ("sft", "sft:run"),
    "eval": ("eval", "eval:run"),
    "merge": ("merged", "sft:run_merge"),
    "tune": ("tune", "sft:run_tune"),
}
PIPELINE = ("data", "train", "eval", "merge")


def quiet_offline_environment(model: str) -> None:
    """Keeps libraries from phoning home: no telemetry, and no hub at all unless the model is a hub id."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if model == "default" or Path(model).expanduser().exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def open_run_dir(cfg: RunConfig) -> RunDir:
    """Returns the run directory for `cfg` and writes the resolved config into it."""
    run_dir = RunDir(Path(cfg.runs_dir) / cfg.name)
    run_dir.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir.path("config.yaml"), dump_config(cfg))
    return run_dir


def stage_function(command: str) -> Callable[[RunConfig, RunDir], object]:
    """Imports and returns the entry point of a stage command (data, train, eval, merge)."""
    module_name, function_name = STAGE_ENTRIES[command][1].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def run_stage(command: str, cfg: RunConfig, run_dir: RunDir) -> float:
    """Runs one stage and returns its wall time in seconds."""
    quiet_offline_environment(cfg.model)
    began = time.perf_counter()
    stage_function(command)(cfg, run_dir)
    return time.perf_counter() - began


def run_pipeline(cfg: RunConfig, force: bool = False) -> tuple[RunDir, dict[str, float]]:
    """Runs data -> train -> eval -> merge; returns the run dir and each stage's seconds (0 = kept)."""
    run_dir = open_run_dir(cfg)
    timings: dict[str, float] = {}
    for command in PIPELINE:
        stage = STAGE_ENTRIES[command][0]
        if not force and run_dir.done_info(stage).get("fingerprint") == cfg.fingerprint(stage):
            print(f"== {command}: already done for this config, kept ({run_dir.path(stage)})")
            timings[command] = 0.0
            continue
        print(f"== {command}")
        try:
            timings[command] = run_stage(command, cfg, run_dir)
        except StageNotApplicable as reason:
            print(f"== {command}: skipped: {reason}")
            timings[command] = 0.0
    return run_dir, timings
