"""The conversations each system answers: base and tuned as recorded, rag variants with retrieval.

    python -c "from eval.systems import load_probe; print(len(load_probe()))"

`base` and `tuned` answer each test record's own prompt (system prompt + turns). `rag` and
`tuned_rag` answer the same prompt with the top-k training pairs (BM25) added to its system
message. The forgetting probe (eval/probe/forgetting.jsonl) is asked of base and tuned with the
run's system prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.retrieval import PairIndex, with_context
from tunebot.prompts import Message, question_of

PROBE_PATH = Path(__file__).resolve().parent / "probe" / "forgetting.jsonl"


@dataclass
class SystemInputs:
    """What one system is asked: a conversation per record, and the ids of pairs retrieved for it."""

    conversations: list[list[Message]]
    retrieved: list[list[str]] = field(default_factory=list)


def load_probe(path: Path = PROBE_PATH) -> list[dict[str, Any]]:
    """Reads the forgetting probe: [{id, lang, question, answer}, ...]."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                row = json.loads(line)
                missing = {"id", "lang", "question", "answer"} - set(row)
                if missing:
                    raise ValueError(f"{path}: line {number}: missing {sorted(missing)}")
                rows.append(row)
    return rows


def probe_conversations(probe: list[dict[str, Any]], system_prompt: str) -> list[list[Message]]:
    """The probe's questions as conversations with the run's system prompt."""
    return [[{"role": "system", "content": system_prompt}, {"role": "user", "content": row["question"]}] for row in probe]


def system_inputs(systems: list[str], records: list[dict[str, Any]], train: list[dict[str, Any]],
                  rag_k: int) -> dict[str, SystemInputs]:
    """Builds every system's conversations for the test records (retrieval from the training pairs)."""
    plain = [list(record["prompt"]) for record in records]
    found: dict[str, SystemInputs] = {}
    hits = None
    for system in systems:
        if system in ("base", "tuned"):
            found[system] = SystemInputs(plain)
            continue
        if hits is None:
            index = PairIndex(train)
            hits = [index.search(question_of(record), rag_k) for record in records]
        conversations = [with_context(prompt, found_hits, record.get("lang"))
                         for prompt, found_hits, record in zip(plain, hits, records)]
        found[system] = SystemInputs(conversations, [[hit.record_id for hit in found_hits] for found_hits in hits])
    return found
