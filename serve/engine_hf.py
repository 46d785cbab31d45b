"""The in-process transformers engine: base and tuned loaded once, one request at a time.

    tunebot serve runs/acme-demo --engine transformers

Used where vLLM is not installed, and by the tests. Prompts are rendered exactly as in training
and eval (tunebot.prompts.render_prompt with the model's own chat template); requests are
served one at a time under a lock (generation itself is multi-threaded by torch). Streaming uses
transformers' TextIteratorStreamer in a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunebot.prompts import Message, render_prompt


@dataclass
class Completion:
    """A finished answer."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


@dataclass
class Sampling:
    """Decoding settings of one request."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


class TransformersEngine:
    """Serves `base` and `tuned` (base + adapter, or the whole tuned model) from this process."""

    kind = "transformers"

    def __init__(self, model_path: str, adapter_dir: Path | None, max_model_len: int = 2048) -> None:
        from tunebot.models import load_adapted, load_causal_lm, load_tokenizer

        self.tokenizer = load_tokenizer(model_path)
        self.models: dict[str, Any] = {"base": load_causal_lm(model_path)}
        if adapter_dir is not None and Path(adapter_dir).is_dir():
            self.models["tuned"] = load_adapted(model_path, Path(adapter_dir))
        for model in self.models.values():
            model.eval()
        self.max_model_len = max_model_len
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The model names this engine answers to."""
        return list(self.models)

    def healthy(self) -> bool:
        """In-process: healthy as long as the process runs."""
        return True

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """Token ids of the rendered prompt (no extra BOS: the template has its own tokens)."""
        return self.tokenizer(render_prompt(self.tokenizer, messages), add_special_tokens=False)["input_ids"]

    def _generate_kwargs(self, ids: list[int], sampling: Sampling) -> dict[str, Any]:
        import torch

        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        decoding = ({"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
                    if sampling.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
        return {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                "max_new_tokens": sampling.max_tokens, "pad_token_id": self.tokenizer.pad_token_id,
                "eos_token_id": self.tokenizer.eos_token_id, **decoding}

    def _complete(self, model: str, ids: list[int], sampling: Sampling) -> Completion:
        import torch

        with self._lock, torch.inference_mode():
            output = self.models[model].generate(**self._generate_kwargs(ids, sampling))[0, len(ids):]
        tokens = [t for t in output.tolist() if t != self.tokenizer.pad_token_id]
        finished = len(output) < sampling.max_tokens or int(output[-1]) == self.tokenizer.eos_token_id
        text = self.tokenizer.decode(tokens, skip_special_tokens=True).rstrip("\ufffd").strip()
        return Completion(text, len(ids), len(tokens), "stop" if finished else "length")

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        """Answers one conversation (waits its turn)."""
        return await asyncio.to_thread(self._complete, model, self.prompt_ids(messages), sampling)

    async def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncIterator[str]:
        """Yields the answer in text pieces as they are generated."""
        from transformers import TextIteratorStreamer

        ids = self.prompt_ids(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)

        def run() -> None:
            import torch

            with self._lock, torch.inference_mode():
                self.models[model].generate(**self._generate_kwargs(ids, sampling), streamer=streamer)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        done = object()
        while (piece := await asyncio.to_thread(next, streamer, done)) is not done:
            if piece:
                yield piece
        worker.join()

    async def close(self) -> None:
        """Nothing to stop in-process."""
