"""Merging: the merged model answers exactly as base + adapter does."""

from __future__ import annotations

from pathlib import Path

from data_tools.stage import run_data_stage
from eval.generate import generate_answers
from sft.merge import merge_adapter
from sft.train import train
from tunebot.config import load_config
from tunebot.models import load_adapted, load_causal_lm, load_tokenizer
from tunebot.pipeline import open_run_dir
from tunebot.rundir import read_jsonl


def test_merged_equals_base_plus_adapter(run_config_file: Path) -> None:
    import torch

    cfg = load_config(run_config_file, ["sft.lr=0.05"])  # a large step so the adapter matters
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    train(cfg, run_dir)
    merge_adapter(cfg, run_dir)
    merged_dir = run_dir.path("merged")
    assert (merged_dir / "model.safetensors").is_file() and (merged_dir / "chat_template.jinja").is_file()
    assert run_dir.is_done("merged")

    conversations = [record["prompt"] for record in read_jsonl(run_dir.path("data", "train.jsonl"))][:4]
    tokenizer = load_tokenizer(str(merged_dir))
    adapted = load_adapted(cfg.model, run_dir.path("sft", "adapter"), "cpu")
    merged = load_causal_lm(str(merged_dir), "cpu")
    base = load_causal_lm(cfg.model, "cpu")
    via_adapter = [g.text for g in generate_answers(adapted, tokenizer, conversations, 12)]
    via_merged = [g.text for g in generate_answers(merged, tokenizer, conversations, 12)]
    via_base = [g.text for g in generate_answers(base, tokenizer, conversations, 12)]
    assert via_merged == via_adapter
    assert via_base != via_adapter  # the adapter really changes the answers

    batch = tokenizer(["<|im_start|>user\nhello<|im_end|>"], return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(adapted(**batch).logits, merged(**batch).logits, atol=1e-4)
