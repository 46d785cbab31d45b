"""hf generation: batching with left padding gives the same greedy answers as one at a time."""

from __future__ import annotations

from pathlib import Path

from conftest import EN_PAIRS, JA_PAIRS
from eval.generate import generate_answers
from tunebot.models import load_causal_lm, load_tokenizer
from tunebot.prompts import render_prompt


def test_batched_equals_one_at_a_time(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir), "cpu")
    conversations = [
        [{"role": "system", "content": "S"}, {"role": "user", "content": question}]
        for question, _ in EN_PAIRS[:3] + JA_PAIRS[:3]
    ]
    batched = generate_answers(model, tokenizer, conversations, max_new_tokens=10, batch_size=6)
    single = [generate_answers(model, tokenizer, [c], max_new_tokens=10, batch_size=1)[0] for c in conversations]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.new_tokens > 0 and g.latency_s > 0 for g in batched)
    assert [g.prompt for g in batched] == [render_prompt(tokenizer, c) for c in conversations]  # order kept
