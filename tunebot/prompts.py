"""Record -> chat messages -> prompt text: the one place train, eval and serve build prompts.

    python -c "from tunebot.prompts import *; print(make_record('q-1', 'faq.csv:2', 'en', 'Brief.', 'Hi?', 'Hello.'))"

Records use TRL's conversational prompt-completion format (DESIGN.md), so SFTTrainer puts the
loss on the answer only and every consumer sees the same system prompt.
"""

from __future__ import annotations

from typing import Any, Protocol

from tunebot.text import detect_lang

Message = dict[str, str]

# How retrieved pairs are introduced in the system message, in the question's language.
CONTEXT_HEADINGS = {
    "en": "Answer using these entries from the support knowledge base where they are relevant:",
    "ja": "関連する場合は、サポートのナレッジベースにある次の項目を使って回答してください。",
}


class Pair(Protocol):
    """A retrieved pair as the prompt needs it (tunebot.retrieval.Hit is one)."""

    question: str
    answer: str


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


def context_block(pairs: list[Pair], lang: str) -> str:
    """Formats retrieved pairs as the text appended to the system message.

    >>> from tunebot.retrieval import Hit
    >>> context_block([Hit('a', 'Refund?', 'Within 30 days.', 1.2)], 'en').splitlines()[-2:]
    ['Q: Refund?', 'A: Within 30 days.']
    """
    lines = [CONTEXT_HEADINGS.get(lang, CONTEXT_HEADINGS["en"])]
    for pair in pairs:
        lines += ["", f"Q: {pair.question}", f"A: {pair.answer}"]
    return "\n".join(lines)


def with_context(messages: list[Message], pairs: list[Pair], lang: str | None = None) -> list[Message]:
    """Returns the conversation with the retrieved pairs added to its system message.

    The one prompt of `rag`, `tuned_rag`, grounded training and serving: the user turns stay as
    they are, so a grounded prompt differs from the plain one only by the retrieved text.
    >>> with_context([{'role': 'system', 'content': 'S'}, {'role': 'user', 'content': 'Q'}], [])[0]['content']
    'S'
    """
    if not pairs:
        return list(messages)
    if not messages or messages[0]["role"] != "system":
        raise ValueError("a conversation must start with the system prompt before context is added")
    question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    block = context_block(pairs, lang or detect_lang(question))
    return [{"role": "system", "content": f"{messages[0]['content']}\n\n{block}"}, *messages[1:]]


def render_prompt(tokenizer: Any, messages: list[Message]) -> str:
    """Renders messages with the model's own chat template, ending where the assistant speaks.

    >>> render_prompt(tok, [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])  # doctest: +SKIP
    '<|im_start|>system\\nS<|im_end|>\\n<|im_start|>user\\nQ<|im_end|>\\n<|im_start|>assistant\\n'
    """
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
