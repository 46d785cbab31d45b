"""`tunebot train`: overwrite/resume guards, and data-parallel launching with torchrun.

    tunebot train examples/acme-demo.yaml --num-processes 2     # 2 processes, gloo on CPU

With `--num-processes N` this process starts N copies of `tunebot train` under
`torch.distributed.run` (the same as `accelerate launch -m tunebot train CONFIG`); each trains on
its share of every batch and the first one writes sft/. The guards run once, here, and the
workers get an explicit `--resume` or `--overwrite`, so they all take the same decision.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from sft.checkpoints import complete_checkpoints
from tunebot.config import RunConfig
from tunebot.errors import TunebotError
from tunebot.rundir import RunDir


def check_train_flags(run_dir: RunDir, resume: bool, overwrite: bool) -> None:
    """Refuses to replace a finished adapter or an interrupted run unless told which to do.

    >>> check_train_flags(RunDir(Path("runs/new")), resume=False, overwrite=False)   # doctest: +SKIP
    """
    if resume and overwrite:
        raise TunebotError("--resume continues the interrupted run and --overwrite starts over: pass one of them")
    if resume or overwrite:
        return
    if run_dir.is_done("sft"):
        raise TunebotError(
            f"{run_dir.path('sft', 'adapter')} holds a finished adapter; pass --overwrite to train again")
    found = complete_checkpoints(run_dir.path("sft", "checkpoints"))
    if found:
        raise TunebotError(
            f"{run_dir.path('sft', 'checkpoints')} holds an interrupted run (last checkpoint at step {found[-1][0]}); "
            "pass --resume to continue it or --overwrite to start over"
        )


def launch_command(args: argparse.Namespace, processes: int) -> list[str]:
    """Returns the torchrun command line that runs `tunebot train` in `processes` workers.

    >>> launch_command(argparse.Namespace(config="a.yaml", overrides=[], resume=False), 2)[-3:]
    ['a.yaml', '--overwrite', '--num-processes=1']
    """
    overrides = [part for value in args.overrides for part in ("--set", value)]
    mode = "--resume" if args.resume else "--overwrite"  # the guards already ran in the launcher
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
        "-m", "tunebot", "train", *overrides, args.config, mode, "--num-processes=1",
    ]


def train_command(cfg: RunConfig, run_dir: RunDir, args: argparse.Namespace) -> int:
    """Runs `tunebot train` after its guards, in this process or in `--num-processes` workers."""
    worker = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if args.num_processes < 1:
        raise TunebotError(f"--num-processes must be at least 1, got {args.num_processes}")
    check_train_flags(run_dir, args.resume, args.overwrite)  # workers we launch get a flag, so pass it
    began = time.perf_counter()
    if args.num_processes > 1 and not worker:
        code = subprocess.call(launch_command(args, args.num_processes))
        if code != 0:
            raise TunebotError(f"data-parallel training failed (exit {code}); the workers' errors are above")
    else:
        from tunebot.pipeline import quiet_offline_environment
        from sft.train import train

        quiet_offline_environment(cfg.model)
        train(cfg, run_dir, resume=True if args.resume else False)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"train: done in {time.perf_counter() - began:.0f} s ({run_dir.root})")
    return 0
