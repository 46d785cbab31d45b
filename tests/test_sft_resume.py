"""Resume after kill -9 continues with the same optimizer/scheduler/data state; DDP in 2 CPU processes."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_tools.stage import run_data_stage
from sft.checkpoints import complete_checkpoints
from sft.train import train
from tunebot.cli import main
from tunebot.config import load_config
from tunebot.pipeline import open_run_dir
from tunebot.rundir import RunDir, read_jsonl

SETTINGS = ["sft.max_steps=24", "sft.eval_steps=4", "sft.keep_checkpoints=2", "sft.threads=1"]


def _adapter_weights(run_dir: RunDir) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir.path("sft", "adapter", "adapter_model.safetensors")))


def _kill_after_checkpoint(config: Path, run_dir: RunDir, step: int) -> int:
    """Starts `tunebot train` in a subprocess and kill -9s it once a checkpoint at >= `step` is complete."""
    command = [sys.executable, "-m", "tunebot", "train", str(config), "--set", "name=killed",
               *sum((["--set", s] for s in SETTINGS), [])]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        found = complete_checkpoints(run_dir.path("sft", "checkpoints"))
        if found and found[-1][0] >= step:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    return process.returncode


def test_resume_after_kill_matches_an_uninterrupted_run(run_config_file: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    reference_cfg = load_config(run_config_file, ["name=reference", *SETTINGS])
    reference = open_run_dir(reference_cfg)
    run_data_stage(reference_cfg, reference)
    train(reference_cfg, reference)

    cfg = load_config(run_config_file, ["name=killed", *SETTINGS])
    killed = open_run_dir(cfg)
    run_data_stage(cfg, killed)
    assert _kill_after_checkpoint(run_config_file, killed, step=8) == -signal.SIGKILL
    assert not killed.is_done("sft")
    stopped_at = complete_checkpoints(killed.path("sft", "checkpoints"))[-1][0]
    assert stopped_at < 24

    args = ["train", str(run_config_file), "--set", "name=killed", *sum((["--set", s] for s in SETTINGS), [])]
    assert main(args) == 2  # neither --resume nor --overwrite: refuses to throw the progress away
    assert f"interrupted run (last checkpoint at step {stopped_at})" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert f"resuming from {killed.path('sft', 'checkpoints', f'checkpoint-{stopped_at}')}" in capsys.readouterr().out

    assert killed.done_info("sft")["steps"] == 24
    resumed, uninterrupted = _adapter_weights(killed), _adapter_weights(reference)
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.allclose(resumed[name], tensor, atol=1e-5), name
    logged = [line["step"] for line in read_jsonl(killed.path("sft", "metrics.jsonl")) if "loss" in line]
    assert logged == sorted(set(logged)) and logged[-1] == 24  # no step logged twice after the resume


def test_resume_refuses_checkpoints_of_other_settings(run_config_file: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["train", str(run_config_file), "--set", "sft.max_steps=4", "--set", "sft.eval_steps=2"]
    assert main(["data", str(run_config_file)]) == 0
    assert main(args) == 0
    assert main([*args, "--resume", "--set", "sft.lr=0.1"]) == 2
    assert "different data or sft settings" in capsys.readouterr().err
    assert main([*args, "--resume", "--overwrite"]) == 2


def test_data_parallel_training_in_two_cpu_processes(run_config_file: Path) -> None:
    cfg = load_config(run_config_file, ["sft.max_steps=-1", "sft.epochs=1"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    examples = len(list(read_jsonl(run_dir.path("data", "train.jsonl"))))
    args = ["train", str(run_config_file), "--set", "sft.max_steps=-1", "--set", "sft.epochs=1", "--num-processes", "2"]
    assert main(args) == 0
    info = run_dir.done_info("sft")
    assert info["processes"] == 2
    assert info["steps"] == math.ceil(examples / (cfg.sft.batch_size * 2))  # each step saw two batches
    assert (run_dir.path("sft", "adapter", "adapter_model.safetensors")).is_file()


@pytest.mark.parametrize("name", ["ddp", "fsdp", "zero2", "zero3"])
def test_shipped_accelerate_configs_parse_with_known_options(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    path = Path(__file__).resolve().parent.parent / "examples" / "accelerate" / f"{name}.yaml"
    config = load_config_from_file(str(path))  # accelerate's own loader rejects unknown top-level keys
    known = {action.dest for action in launch_command_parser()._actions}
    sections = {"fsdp": config.fsdp_config, "zero2": config.deepspeed_config, "zero3": config.deepspeed_config}
    options = sections.get(name) or {}
    assert not [key for key in options if key not in known], f"{path}: options accelerate launch does not know"
    assert config.num_processes == 2 and config.mixed_precision == "bf16"
