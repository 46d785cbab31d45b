"""Batched greedy generation with transformers (`hf` backend): chat records in, answers out.

    python -m pytest tests/test_eval_generate.py

Prompts are rendered by tunebot.prompts with the model's own chat template, left padded and
generated in batches sorted by length, so padding stays small and the order of results is
the order of the input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tunebot.prompts import render_prompt


@dataclass
class Generation:
    """One generated answer with its rendered prompt and cost."""

    prompt: str
    text: str
    new_tokens: int
    latency_s: float


def generate_answers(
    model: Any, tokenizer: Any, conversations: list[list[dict]], max_new_tokens: int, batch_size: int = 16,
    temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
) -> list[Generation]:
    """Answers each conversation (greedy unless temperature > 0); `latency_s` is its batch's wall time
    over the batch size.

    >>> chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    >>> generate_answers(model, tok, [chat], 32)  # doctest: +SKIP
    [Generation(prompt='<|im_start|>system...', text='...', new_tokens=12, latency_s=0.4)]
    """
    import torch

    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {
        "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    prompts = [render_prompt(tokenizer, messages) for messages in conversations]
    order = sorted(range(len(prompts)), key=lambda index: len(prompts[index]))
    results: list[Generation | None] = [None] * len(prompts)
    tokenizer.padding_side = "left"
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        # The template already holds the special tokens; adding BOS again would shift the prompt.
        batch = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(model.device)
        began = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                **sampling,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        seconds = (time.perf_counter() - began) / len(chunk)
        new = output[:, batch["input_ids"].shape[1] :]
        for row, index in enumerate(chunk):
            tokens = new[row]
            count = int((tokens != tokenizer.pad_token_id).sum())
            # A character cut by max_new_tokens decodes to U+FFFD; vLLM holds such bytes back: drop it.
            text = tokenizer.decode(tokens, skip_special_tokens=True).rstrip("\ufffd").strip()
            results[index] = Generation(prompts[index], text, count, round(seconds, 4))
    return [result for result in results if result is not None]
