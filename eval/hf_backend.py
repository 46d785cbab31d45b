"""The `hf` eval backend: transformers `generate`, batched with left padding; each model loaded once.

    tunebot eval examples/acme.yaml --set eval.backend=hf
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.backend_base import Kind
from eval.generate import Generation, generate_answers
from tunebot.config_eval import EvalConfig
from tunebot.prompts import Message


class HfBackend:
    """transformers `generate` over the base model, or base + adapter for the tuned one."""

    name = "hf"

    def __init__(self, cfg: EvalConfig, model_path: str, adapter_dir: Path) -> None:
        self.cfg, self.model_path, self.adapter_dir = cfg, model_path, adapter_dir

    def _load(self, kind: Kind) -> Any:
        from tunebot.models import load_adapted, load_causal_lm

        if kind == "base":
            return load_causal_lm(self.model_path)
        return load_adapted(self.model_path, self.adapter_dir)

    def answer(self, batches: dict[Kind, list[list[Message]]]) -> dict[Kind, list[Generation]]:
        from tunebot.models import load_tokenizer

        tokenizer = load_tokenizer(self.model_path)
        found: dict[Kind, list[Generation]] = {}
        for kind, conversations in batches.items():
            model = self._load(kind)
            found[kind] = generate_answers(model, tokenizer, conversations, self.cfg.max_new_tokens,
                                           self.cfg.batch_size, self.cfg.temperature, self.cfg.top_p, self.cfg.seed)
            del model
        return found
