"""tunebot tune: Optuna trials over the tiny model, pruning, results table, best config, resumable study."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sft.tune import grid_space
from tunebot.cli import main
from tunebot.config import TuneConfig, load_config
from tunebot.pipeline import open_run_dir
from tunebot.rundir import read_jsonl

SEARCH = ["sft.batch_size=2", "tune.max_steps=6", "tune.eval_steps=2", "tune.lora_r=[2,4]", "tune.epochs=[1,2]"]


def _args(config: Path, *extra: str) -> list[str]:
    return ["tune", str(config), *[part for value in SEARCH for part in ("--set", value)], *extra]


def test_tpe_search_writes_table_and_a_best_config_that_runs(run_config_file: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    assert main(["data", str(run_config_file)]) == 0
    assert main(_args(run_config_file, "--trials", "4")) == 0
    out = capsys.readouterr().out
    assert "tune: trial 4/4" in out and "best val loss" in out
    cfg = load_config(run_config_file, SEARCH)
    run_dir = open_run_dir(cfg)
    rows = list(read_jsonl(run_dir.path("tune", "trials.jsonl")))
    assert len(rows) == 4 and rows[0]["state"] == "complete"
    complete = [row["val_loss"] for row in rows if row["state"] == "complete"]
    assert complete == sorted(complete)
    for row in rows:
        assert 2e-5 <= row["lr"] <= 2e-3 and row["lora_r"] in (2, 4) and row["lora_alpha"] in (row["lora_r"],
                2 * row["lora_r"])
        assert row["steps"] <= 6
    best = yaml.safe_load(run_dir.path("tune", "best.yaml").read_text(encoding="utf-8"))
    assert best["sft"]["lr"] == rows[0]["lr"] and best["sft"]["lora_r"] == rows[0]["lora_r"]
    assert best["sft"]["max_steps"] == cfg.sft.max_steps  # the trials' cap is not written into the best config
    assert "| trial | state | val loss |" in run_dir.path("tune", "results.md").read_text(encoding="utf-8")

    assert main(_args(run_config_file, "--trials", "5")) == 0  # the study continues: one more trial only
    assert "tune: trial 5/5" in capsys.readouterr().out
    assert len(list(read_jsonl(run_dir.path("tune", "trials.jsonl")))) == 5


def test_pruning_stops_a_trial_worse_than_the_median(run_config_file: Path, capsys: pytest.CaptureFixture) -> None:
    from sft.tune import open_study

    settings = [*SEARCH, "tune.lr=[1.0e-9,0.2]", "tune.max_steps=8", "tune.trials=3"]
    cfg = load_config(run_config_file, settings)
    run_dir = open_run_dir(cfg)
    assert main(["data", str(run_config_file)]) == 0
    run_dir.path("tune").mkdir()
    study = open_study(cfg, run_dir.path("tune"))  # the order of trials is fixed: two that learn, then one that cannot
    for lr, r in ((0.2, 2), (0.2, 4), (1.0e-9, 4)):
        study.enqueue_trial({"lr": lr, "lora_dropout": 0.0, "lora_r": r, "alpha_over_r": 2.0, "epochs": 1.0})
    assert main(["tune", str(run_config_file), *[part for value in settings for part in ("--set", value)]]) == 0
    rows = {row["trial"]: row for row in read_jsonl(run_dir.path("tune", "trials.jsonl"))}
    assert rows[0]["state"] == rows[1]["state"] == "complete" and rows[0]["steps"] == 8
    assert rows[2]["state"] == "pruned" and rows[2]["lr"] == 1.0e-9 and rows[2]["steps"] < 8
    out = capsys.readouterr().out
    assert "pruned at step" in out, "\n".join(line for line in out.splitlines() if "tune:" in line)


def test_grid_space_and_range_validation() -> None:
    space = grid_space(TuneConfig(lr=(1e-4, 1e-2), lora_dropout=(0.0, 0.1)))
    assert space["lr"] == [1e-4, 1e-3, 1e-2] and space["lora_dropout"] == [0.0, 0.1]
    with pytest.raises(ValueError, match="low <= high"):
        TuneConfig(lr=(1e-3, 1e-4))
