"""Merges the trained LoRA adapter into the base weights and writes a standalone model to merged/.

    tunebot merge examples/acme.yaml

The base is loaded unquantized (float32 on CPU, bf16 on CUDA) and merged there: merging into
4-bit weights ruins quality. merged/ holds safetensors, the tokenizer and its chat template, so
vLLM or transformers can load it with no adapter.
"""

from __future__ import annotations

from tunebot.config import RunConfig
from tunebot.models import load_adapted, load_tokenizer, resolve_model
from tunebot.rundir import RunDir, atomic_directory


def merge_adapter(cfg: RunConfig, run_dir: RunDir) -> None:
    """Writes merged/ (weights, tokenizer, chat template) and merged/DONE."""
    out = run_dir.start("merged")
    model_path = resolve_model(cfg.model)
    merged = load_adapted(model_path, run_dir.path("sft", "adapter")).merge_and_unload()
    tokenizer = load_tokenizer(model_path)
    with atomic_directory(out) as scratch:
        merged.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
    run_dir.mark_done("merged", cfg.fingerprint("merged"), dtype=str(merged.dtype).replace("torch.", ""))
    print(f"merge: wrote {out}")
