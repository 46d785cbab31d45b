"""The `openai` eval backend and shared client code: any OpenAI-compatible chat endpoint.

    tunebot eval run.yaml --set eval.backend=openai --set eval.openai.url=http://127.0.0.1:8000/v1

Sends each conversation's messages (the system prompt included) to /v1/chat/completions with
the configured decoding, several requests in flight; `base`/`rag` use eval.openai.base_model and
`tuned`/`tuned_rag` use eval.openai.tuned_model. The recorded prompt is the local rendering with
the model's template, which a tunebot server reproduces exactly (tests/test_serve_*). A request
that still fails after its retries stops the stage with the endpoint and the error named.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eval.backend_base import Kind
from eval.generate import Generation
from tunebot.config_eval import EndpointConfig, EvalConfig
from tunebot.prompts import Message, render_prompt


class EndpointError(RuntimeError):
    """An OpenAI-compatible endpoint did not answer."""


def make_client(endpoint: EndpointConfig) -> Any:
    """Returns an `openai.OpenAI` client for the endpoint (key from its env variable, may be empty)."""
    from openai import OpenAI

    key = os.environ.get(endpoint.api_key_env) or "not-needed"
    return OpenAI(base_url=endpoint.url, api_key=key, timeout=endpoint.timeout_s, max_retries=endpoint.max_retries)


def chat_once(client: Any, model: str, messages: list[Message], max_tokens: int, temperature: float,
              top_p: float, seed: int) -> tuple[str, int, float]:
    """Sends one chat request; returns (text, completion tokens, seconds)."""
    began = time.perf_counter()
    response = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                              temperature=temperature, top_p=top_p, seed=seed)
    text = response.choices[0].message.content or ""
    tokens = response.usage.completion_tokens if response.usage else 0
    return text.strip(), int(tokens), time.perf_counter() - began


class OpenAIBackend:
    """Answers through an endpoint, `concurrency` requests at a time, results in input order."""

    name = "openai"

    def __init__(self, cfg: EvalConfig, model_path: str | None) -> None:
        assert cfg.openai is not None  # EvalConfig requires it for backend=openai
        self.cfg, self.endpoint, self.model_path = cfg, cfg.openai, model_path

    def _tokenizer(self) -> Any:
        from tunebot.models import load_tokenizer

        try:
            return load_tokenizer(self.model_path) if self.model_path else None
        except OSError:
            return None  # a remote model we cannot render locally: the prompt is recorded as JSON

    def answer(self, batches: dict[Kind, list[list[Message]]]) -> dict[Kind, list[Generation]]:
        import json

        client, tokenizer, cfg = make_client(self.endpoint), self._tokenizer(), self.cfg
        found: dict[Kind, list[Generation]] = {}
        for kind, conversations in batches.items():
            model = self.endpoint.base_model if kind == "base" else self.endpoint.tuned_model

            def ask(messages: list[Message]) -> tuple[str, int, float]:
                try:
                    return chat_once(client, model, messages, cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed)
                except Exception as error:  # the openai client raises many types; name the endpoint
                    raise EndpointError(f"{self.endpoint.url}: model {model!r} failed: {error}") from error

            with ThreadPoolExecutor(self.endpoint.concurrency) as pool:
                answers = list(pool.map(ask, conversations))
            found[kind] = [
                Generation(render_prompt(tokenizer, messages) if tokenizer
                           else json.dumps(messages, ensure_ascii=False),
                           text, tokens, round(seconds, 4))
                for messages, (text, tokens, seconds) in zip(conversations, answers)
            ]
        return found
