"""The merge stage: the trained adapter merged into the base weights, a standalone model in merged/.

    tunebot merge examples/acme.yaml

merged/ holds safetensors, the tokenizer and its chat template, so vLLM or transformers can load
it with no adapter, and README.md, the model card (tunebot/model_card.py) with the run's evidence (the merging itself is
tunebot/merging.py, which eval's vLLM backend shares). prompt/prefix tuning learns virtual tokens that no weight can
hold, so those runs have no merged model (serve and eval use base + adapter).
"""

from __future__ import annotations

from tunebot.config import RunConfig
from tunebot.errors import StageNotApplicable
from tunebot.merging import mergeable, save_merged
from tunebot.model_card import model_card
from tunebot.models import resolve_model
from tunebot.rundir import RunDir, atomic_write_text


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
    atomic_write_text(out / "README.md", model_card(run_dir.root))  # the evidence travels with the weights
    run_dir.mark_done("merged", cfg.fingerprint("merged"), dtype=dtype)
    print(f"merge: wrote {out}")
