"""Record -> chat messages -> prompt text: the one place train, eval and serve build prompts.

    python -c "from tunebot.prompts import make_record; print(make_record('q-1', 'faq.csv:2', 'en', 'Be brief.', 'Hi?', 'Hello.'))"

Records use TRL's conversational prompt-completion format (DESIGN.md), so SFTTrainer puts the
loss on the answer only and every consumer sees the same system prompt.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, str]


def make_record(
    record_id: str, source: str, lang: str, system_prompt: str, question: str, answer: str
) -> dict[str, Any]:
    """Builds one instruction record from a question/answer pair.

    >>> make_record("faq-1", "faq.csv:2", "ja", "丁寧に。", "返品できますか？", "はい。")["prompt"][1]
    {'role': 'user', 'content': '返品できますか？'}
    """
    return {
        "id": record_id,
        "source": source,
        "lang": lang,
        "prompt": [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}],
        "completion": [{"role": "assistant", "content": answer}],
    }


def with_system_prompt(messages: list[Message], system_prompt: str) -> list[Message]:
    """Returns the messages with our system prompt first, replacing none that the caller sent.

    SmolLM2's template inserts its own system prompt when a conversation has none, so a
    conversation must never reach the template without one.

    >>> with_system_prompt([{"role": "user", "content": "hi"}], "Be brief.")[0]["content"]
    'Be brief.'
    """
    if messages and messages[0].get("role") == "system":
        return list(messages)
    return [{"role": "system", "content": system_prompt}, *messages]


def question_of(record: dict[str, Any]) -> str:
    """Returns the last user message of a record's prompt (what the customer asked)."""
    for message in reversed(record["prompt"]):
        if message["role"] == "user":
            return message["content"]
    raise ValueError(f"record {record.get('id')} has no user message")


def answer_of(record: dict[str, Any]) -> str:
    """Returns the reference answer of a record."""
    return record["completion"][-1]["content"]


def render_prompt(tokenizer: Any, messages: list[Message]) -> str:
    """Renders messages with the model's own chat template, ending where the assistant speaks.

    >>> render_prompt(tok, [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])  # doctest: +SKIP
    '<|im_start|>system\\nS<|im_end|>\\n<|im_start|>user\\nQ<|im_end|>\\n<|im_start|>assistant\\n'
    """
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
