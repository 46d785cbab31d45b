"""Merges the trained adapter into the base weights and writes a standalone model to merged/.

    tunebot merge examples/acme.yaml

The base is loaded unquantized (float32 on CPU, bf16 on CUDA) and merged there, also after
QLoRA: merging into 4-bit weights ruins quality. merged/ holds safetensors, the tokenizer and its
chat template, so vLLM or transformers can load it with no adapter. freeze/full training already
saved a whole model, which is copied as it is; prompt/prefix tuning learns virtual tokens that no
weight can hold, so those runs have no merged model (serve and eval use base + adapter).
"""

from __future__ import annotations

import json
from pathlib import Path

from tunebot.config import RunConfig
from tunebot.errors import StageNotApplicable
from tunebot.models import is_peft_adapter, load_adapted, load_tokenizer, resolve_model
from tunebot.rundir import RunDir, atomic_directory

VIRTUAL_TOKEN_TYPES = ("PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING")


def mergeable(adapter_dir: Path) -> bool:
    """Tells whether sft/adapter can become a standalone model (False for prompt/prefix tuning)."""
    if not is_peft_adapter(adapter_dir):
        return True
    peft_type = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8")).get("peft_type")
    return peft_type not in VIRTUAL_TOKEN_TYPES


def merge_adapter(cfg: RunConfig, run_dir: RunDir) -> None:
    """Writes merged/ (weights, tokenizer, chat template) and merged/DONE."""
    adapter = run_dir.path("sft", "adapter")
    if not mergeable(adapter):
        raise StageNotApplicable(
            f"{adapter} holds prompt/prefix-tuning virtual tokens, which cannot be merged into weights; "
            "evaluate and serve base + adapter, or train with method: lora to get a standalone model"
        )
    out = run_dir.start("merged")
    dtype = save_merged(resolve_model(cfg.model), adapter, out)
    run_dir.mark_done("merged", cfg.fingerprint("merged"), dtype=dtype)
    print(f"merge: wrote {out}")


def save_merged(model_path: str, adapter: Path, out: Path) -> str:
    """Writes base + adapter merged (or the whole tuned model) with its tokenizer to `out`, atomically;
    returns the dtype name."""
    tuned = load_adapted(model_path, adapter)
    merged = tuned.merge_and_unload() if is_peft_adapter(adapter) else tuned
    tokenizer = load_tokenizer(model_path)
    with atomic_directory(out) as scratch:
        merged.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
    return str(merged.dtype).replace("torch.", "")
