"""LoRA with TRL's SFTTrainer on the tiny model: loss logged, adapter changed, base untouched."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from data_tools.stage import run_data_stage
from sft.train import build_trainer, train
from tunebot.config import load_config
from tunebot.pipeline import open_run_dir
from tunebot.rundir import StageMissing, read_jsonl


@pytest.fixture
def prepared(run_config_file: Path):
    cfg = load_config(run_config_file)
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    return cfg, run_dir


def test_lora_changes_every_adapter_weight_and_no_base_weight(prepared) -> None:
    import torch

    cfg, run_dir = prepared
    trainer = build_trainer(cfg, run_dir)
    before = {name: param.detach().clone() for name, param in trainer.model.named_parameters()}
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == cfg.sft.max_steps and all(math.isfinite(loss) for loss in losses)
    trainable = {name for name, param in trainer.model.named_parameters() if param.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    for name, param in trainer.model.named_parameters():
        changed = not torch.equal(param.detach(), before[name])
        assert changed == (name in trainable), f"{name}: changed={changed}"


def test_loss_is_on_the_answer_only(prepared) -> None:
    cfg, run_dir = prepared
    trainer = build_trainer(cfg, run_dir)
    example = trainer.train_dataset[0]
    tokenizer = trainer.processing_class
    pairs = list(zip(example["input_ids"], example["labels"]))
    answer_ids = [token for token, label in pairs if label != -100]
    prompt_ids = [token for token, label in pairs if label == -100]
    assert all(token == label for token, label in pairs if label != -100)
    record = next(read_jsonl(run_dir.path("data", "train.jsonl")))
    # the answer and its end-of-turn token are learned; the prompt (our system prompt) is not
    assert tokenizer.decode(answer_ids) == record["completion"][0]["content"] + "<|im_end|>\n"
    assert record["prompt"][0]["content"] in tokenizer.decode(prompt_ids)
    assert "SmolLM" not in tokenizer.decode(prompt_ids)


def test_train_stage_writes_adapter_metrics_and_done(prepared) -> None:
    cfg, run_dir = prepared
    summary = train(cfg, run_dir)
    adapter = run_dir.path("sft", "adapter")
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    lines = list(read_jsonl(run_dir.path("sft", "metrics.jsonl")))
    assert sum("loss" in line for line in lines) == cfg.sft.max_steps
    assert any("eval_loss" in line for line in lines)  # val split evaluated
    done = run_dir.done_info("sft")
    assert done["fingerprint"] == cfg.fingerprint("sft") and done["steps"] == summary["steps"] == cfg.sft.max_steps
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == cfg.sft.lora_r


def test_train_refuses_to_start_without_data(run_config_file: Path) -> None:
    cfg = load_config(run_config_file)
    with pytest.raises(StageMissing, match="tunebot data CONFIG"):
        train(cfg, open_run_dir(cfg))


@pytest.mark.parametrize("packing", [False, True])
def test_the_cpu_answer_loss_equals_trls_loss_and_gradients(run_config_file: Path, packing: bool) -> None:
    """sft/loss.py projects only labelled positions; TRL's kernel projects all of them: same loss, same gradients,
    on a padded batch and on a padding-free packed one."""
    import torch

    cfg = load_config(run_config_file,
                      [f"sft.packing={str(packing).lower()}", "sft.max_length=256", "sft.context=none"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    trainer = build_trainer(cfg, run_dir)
    assert type(trainer).__name__ == "AnswerLossSFTTrainer" and trainer._compact_loss_applies(trainer.model)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    if packing:
        assert "attention_mask" not in batch and int((batch["position_ids"] == 0).sum()) > 1
    else:
        assert (batch["attention_mask"] == 0).any(), "the batch should carry padding"
    labelled = int((batch["labels"][:, 1:] != -100).sum())
    found = {}
    for name, compute in (("ours", trainer.compute_loss),
                          ("trl", super(type(trainer), trainer).compute_loss)):
        trainer.model.zero_grad()
        loss = compute(trainer.model, dict(batch), num_items_in_batch=labelled)
        loss.backward()
        found[name] = (loss.item(),
                       {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
    assert found["ours"][0] == pytest.approx(found["trl"][0], rel=1e-5)
    assert found["ours"][1].keys() == found["trl"][1].keys() and found["ours"][1]
    for name, grad in found["ours"][1].items():
        torch.testing.assert_close(grad, found["trl"][1][name], rtol=1e-4, atol=1e-6)
    real = int(batch["attention_mask"].sum()) if not packing else batch["position_ids"].size(1)
    assert trainer._metrics["train"]["num_tokens"] == [real * 2]
