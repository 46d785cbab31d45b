"""What each system is asked: base and tuned as recorded, rag variants with retrieval, retrieval's answers.

    python -c "from eval.systems import load_probe; print(len(load_probe()))"

`base` and `tuned` answer each test record's own prompt (system prompt + turns). `rag` and
`tuned_rag` answer the same prompt with the top-k training pairs (tunebot.retrieval) added to its
system message (tunebot.prompts.with_context, the prompt serving uses too). `retrieval` needs no
model: its answer is the top pair's answer verbatim, or the configured fallback when no pair is
close enough. The forgetting probe (eval/probe/forgetting.jsonl) is asked of base and tuned with
the run's system prompt.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.generate import Generation
from tunebot.config_eval import RetrievalConfig
from tunebot.prompts import Message, question_of, with_context
from tunebot.retrieval import Hit, build_index
from tunebot.systems import SYSTEMS
from tunebot.text import detect_lang

PROBE_PATH = Path(__file__).resolve().parent / "probe" / "forgetting.jsonl"


@dataclass
class SystemInputs:
    """What one system is asked: a conversation per record, the pairs retrieved for it, and for
    `retrieval` (no model) the answers themselves."""

    conversations: list[list[Message]]
    retrieved: list[list[str]] = field(default_factory=list)
    contexts: list[list[str]] | None = None  # the texts given with each record (support for its facts)
    answers: list[Generation] | None = None


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
    return [[{"role": "system", "content": system_prompt}, {"role": "user", "content": row["question"]}]
            for row in probe]


@dataclass
class Retrieved:
    """The retriever's hits for every test record (at least 3 each, for recall@3) and its search time."""

    hits: list[list[Hit]]
    seconds: list[float]


def retrieve(records: list[dict[str, Any]], train: list[dict[str, Any]], cfg: RetrievalConfig) -> Retrieved:
    """Searches the training pairs for every test record's question."""
    index = build_index(train, cfg)
    hits, seconds = [], []
    for record in records:
        began = time.perf_counter()
        hits.append(index.search(question_of(record), max(3, cfg.k if isinstance(cfg.k, int) else 3)))
        seconds.append(time.perf_counter() - began)
    return Retrieved(hits, seconds)


def _retrieval_answers(records: list[dict[str, Any]], found: Retrieved, cfg: RetrievalConfig) -> list[Generation]:
    answers = []
    for record, hits, seconds in zip(records, found.hits, found.seconds):
        # the fallback's language comes from the question alone, as when serving (no answer is known there)
        text = hits[0].answer if hits else cfg.fallback.get(detect_lang(question_of(record)), cfg.fallback["en"])
        answers.append(Generation(question_of(record), text, 0, round(seconds, 6)))
    return answers


def system_inputs(systems: list[str], records: list[dict[str, Any]], found: Retrieved | None,
                  cfg: RetrievalConfig) -> dict[str, SystemInputs]:
    """Builds every system's inputs for the test records (`found`: the retriever's hits, when a system retrieves)."""
    plain = [list(record["prompt"]) for record in records]
    inputs: dict[str, SystemInputs] = {}
    for system in systems:
        if not SYSTEMS[system].retrieves:
            inputs[system] = SystemInputs(plain)
            continue
        if found is None:
            raise ValueError(f"system {system} retrieves: pass the retriever's hits")
        if system != "retrieval" and not isinstance(cfg.k, int):
            raise ValueError("retrieval.k is auto: resolve it first (tunebot.retrieval.resolve_k)")
        used = [hits[:1] if system == "retrieval" else hits[: cfg.k] for hits in found.hits]
        contexts = [[f"{hit.question}\n{hit.answer}" for hit in hits] for hits in used]
        retrieved = [[hit.record_id for hit in hits] for hits in used]
        if system == "retrieval":
            inputs[system] = SystemInputs(plain, retrieved, contexts, _retrieval_answers(records, found, cfg))
            continue
        conversations = [with_context(prompt, hits) for prompt, hits in zip(plain, used)]  # as serve/systems.py does
        inputs[system] = SystemInputs(conversations, retrieved, contexts)
    return inputs
