"""Merges an adapter into its base model's weights: what the merge stage writes and what eval's vLLM backend needs.

    python -c "from tunebot.merging import *; print(mergeable(Path('runs/acme/sft/adapter')))"

The base is loaded unquantized (float32 on CPU, bf16 on CUDA) and merged there, also after
QLoRA: merging into 4-bit weights ruins quality. A whole tuned model (freeze/full training) is
copied as it is; prompt/prefix tuning learns virtual tokens that no weight can hold.
"""

from __future__ import annotations

import json
from pathlib import Path

from tunebot.models import is_peft_adapter, load_adapted, load_tokenizer
from tunebot.rundir import atomic_directory

VIRTUAL_TOKEN_TYPES = ("PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING")


def mergeable(adapter_dir: Path) -> bool:
    """Tells whether sft/adapter can become a standalone model (False for prompt/prefix tuning)."""
    if not is_peft_adapter(adapter_dir):
        return True
    peft_type = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8")).get("peft_type")
    return peft_type not in VIRTUAL_TOKEN_TYPES


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
