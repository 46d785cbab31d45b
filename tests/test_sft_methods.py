"""sft.method: each adapter method trains on the tiny model, touches only its own weights, and merges."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_tools.stage import run_data_stage
from sft.merge import merge_adapter
from sft.methods import MethodError, resolve_method
from sft.train import build_trainer, train
from tunebot.config import SftConfig, load_config
from tunebot.models import load_adapted, load_causal_lm, load_tokenizer
from tunebot.pipeline import open_run_dir
from tunebot.rundir import read_jsonl


def test_auto_is_lora_on_cpu_and_qlora_needs_cuda() -> None:
    assert resolve_method(SftConfig(method="auto"), "cpu") == "lora"
    assert resolve_method(SftConfig(method="dora"), "cpu") == "dora"
    with pytest.raises(MethodError, match="needs a CUDA GPU .* use method: lora"):
        resolve_method(SftConfig(method="qlora"), "cpu")


@pytest.mark.parametrize(("method", "marker"), [("dora", "lora_"), ("ia3", "ia3_")])
def test_method_trains_only_its_adapter_and_merges_exactly(run_config_file: Path, method: str, marker: str) -> None:
    import torch

    cfg = load_config(run_config_file, [f"sft.method={method}", "sft.lr=0.05"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    trainer = build_trainer(cfg, run_dir)
    before = {name: param.detach().clone() for name, param in trainer.model.named_parameters()}
    trainer.train()
    trainable = {name for name, param in trainer.model.named_parameters() if param.requires_grad}
    assert trainable and all(marker in name for name in trainable)
    for name, param in trainer.model.named_parameters():
        assert (not torch.equal(param.detach(), before[name])) == (name in trainable), name

    summary = train(cfg, run_dir)
    assert summary["method"] == method and run_dir.done_info("sft")["method"] == method
    merge_adapter(cfg, run_dir)
    tokenizer = load_tokenizer(str(run_dir.path("merged")))
    adapted = load_adapted(cfg.model, run_dir.path("sft", "adapter"), "cpu")
    merged = load_causal_lm(str(run_dir.path("merged")), "cpu")
    base = load_causal_lm(cfg.model, "cpu")
    batch = tokenizer(["<|im_start|>user\n返品できますか？<|im_end|>\n<|im_start|>assistant\n"], return_tensors="pt")
    with torch.inference_mode():
        tuned_logits, merged_logits = adapted(**batch).logits, merged(**batch).logits
        assert torch.allclose(tuned_logits, merged_logits, atol=1e-4)
        assert not torch.allclose(tuned_logits, base(**batch).logits, atol=1e-3)  # the adapter matters


def test_early_stopping_ends_training_when_val_loss_stops_falling(run_config_file: Path) -> None:
    # a huge learning rate keeps the val loss from falling for long
    cfg = load_config(run_config_file, ["sft.max_steps=12", "sft.eval_steps=1", "sft.early_stopping_patience=2", "sft.lr=5.0"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    summary = train(cfg, run_dir)
    evals = [line["eval_loss"] for line in read_jsonl(run_dir.path("sft", "metrics.jsonl")) if "eval_loss" in line]
    assert summary["steps"] == len(evals) < cfg.sft.max_steps  # stopped early, one evaluation per step
    best = evals.index(min(evals))
    assert best == len(evals) - 1 - cfg.sft.early_stopping_patience  # then exactly `patience` without progress
    assert summary["best_val_loss"] == min(evals)
    assert len(list(run_dir.path("sft", "checkpoints").glob("checkpoint-*"))) <= cfg.sft.keep_checkpoints


def test_train_refuses_to_overwrite_a_finished_adapter(run_config_file: Path, capsys: pytest.CaptureFixture) -> None:
    from tunebot.cli import main

    assert main(["data", str(run_config_file)]) == 0
    assert main(["train", str(run_config_file)]) == 0
    assert main(["train", str(run_config_file)]) == 2
    assert "holds a finished adapter; pass --overwrite" in capsys.readouterr().err
    assert main(["train", str(run_config_file), "--overwrite"]) == 0
