"""The training examples: records as prompts (grounded in retrieved pairs or not), their token lengths, and losses.

    tunebot train examples/acme-demo.yaml --set sft.context=retrieved

`sft.context: retrieved` trains RAFT-style (Zhang et al. 2024): each prompt carries the pairs the
retriever returns for its question, with the retriever and prompt of the rag systems in eval and
serve (tunebot.retrieval, tunebot.prompts.with_context), searched over the other training pairs,
never the record itself. In a share `sft.context_negatives` of the examples no retrieved pair
holds the record's answer (pairs with the same answer are left out), and the target stays the
record's answer: the model learns the FAQ itself as well as to use and ignore what it is given.

Every example is measured in tokens with the model's chat template as TRL tokenizes it; those
that `max_length` would cut (truncated) or leave without a single answer token (dropped, which
TRL does silently) are counted per language, and a run that would lose more than
`sft.max_lost_share` of its examples stops with an error naming the share and the fix.
`sft.max_length: auto` takes the longest example, rounded up to 64 tokens, up to `max_length_cap`.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from tunebot.config import RunConfig
from tunebot.errors import TunebotError
from tunebot.prompts import answer_of, question_of, with_context
from tunebot.retrieval import build_index, resolve_k
from tunebot.rundir import read_jsonl
from tunebot.text import normalize_answer

LENGTH_STEP = 64


class ExamplesLost(TunebotError, ValueError):
    """Too many training examples would be truncated or dropped at this max_length."""


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a split file (empty when the file holds none)."""
    return list(read_jsonl(path)) if path.is_file() else []


def grounded(records: list[dict[str, Any]], train: list[dict[str, Any]], cfg: RunConfig,
             is_train: bool, retrieval: Any = None) -> list[dict[str, Any]]:
    """The records with retrieved training pairs in their system message (sft.context: retrieved).

    `retrieval` is cfg.retrieval with k resolved (tunebot.retrieval.resolve_k), as eval and serve use it.
    """
    retrieval = retrieval or resolve_k(cfg.retrieval, train, cfg.model)
    index = build_index(train, retrieval)
    by_answer: dict[str, set[str]] = {}
    for record in train:
        by_answer.setdefault(normalize_answer(answer_of(record)), set()).add(str(record["id"]))
    rng = random.Random(cfg.sft.seed)
    found = []
    for record in records:
        exclude = {str(record["id"])} if is_train else set()
        if rng.random() < cfg.sft.context_negatives:  # no retrieved pair holds the answer
            exclude |= by_answer.get(normalize_answer(answer_of(record)), set())
        hits = index.search(question_of(record), retrieval.k, exclude=exclude)
        found.append({**record, "prompt": with_context(record["prompt"], hits)})
    return found


def token_lengths(tokenizer: Any, records: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(prompt tokens, prompt + answer tokens) of each record, as TRL tokenizes prompt-completion pairs."""
    def count(messages: list[dict], **kwargs: Any) -> int:
        return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])

    return [(count(record["prompt"], add_generation_prompt=True), count(record["prompt"] + record["completion"]))
            for record in records]


def choose_max_length(cfg: RunConfig, lengths: list[tuple[int, int]]) -> int:
    """sft.max_length, or for auto the longest example rounded up to 64 tokens (at most max_length_cap)."""
    if cfg.sft.max_length != "auto":
        return int(cfg.sft.max_length)
    longest = max((whole for _, whole in lengths), default=LENGTH_STEP)
    return min(cfg.sft.max_length_cap, -(-longest // LENGTH_STEP) * LENGTH_STEP)


def length_report(records: list[dict[str, Any]], lengths: list[tuple[int, int]], max_length: int) -> dict[str, Any]:
    """Examples per language that max_length truncates (answer cut) or drops (no answer token left)."""
    langs = [record.get("lang", "?") for record in records]
    truncated = Counter(lang for lang, (prompt, whole) in zip(langs, lengths) if prompt < max_length < whole)
    dropped = Counter(lang for lang, (prompt, _) in zip(langs, lengths) if prompt >= max_length)
    by_lang = {}
    for lang in sorted(set(langs)):
        mine = sorted(whole for other, (_, whole) in zip(langs, lengths) if other == lang)
        by_lang[lang] = {"n": len(mine), "truncated": truncated[lang], "dropped": dropped[lang],
                         "longest": mine[-1], "median": mine[len(mine) // 2]}
    lost = sum(truncated.values()) + sum(dropped.values())
    return {"max_length": max_length, "n": len(records), "truncated": sum(truncated.values()),
            "dropped": sum(dropped.values()), "lost_share": round(lost / len(records), 4) if records else 0.0,
            "by_lang": by_lang}


def check_losses(report: dict[str, Any], limit: float, split: str) -> None:
    """Stops the run when more than `limit` of the examples would be cut or dropped."""
    if report["lost_share"] <= limit:
        return
    worst = max(report["by_lang"].items(), key=lambda item: item[1]["truncated"] + item[1]["dropped"])
    longest = max(entry["longest"] for entry in report["by_lang"].values())
    raise ExamplesLost(
        f"sft: at max_length {report['max_length']}, {report['truncated']} {split} examples would be truncated and "
        f"{report['dropped']} dropped ({report['lost_share']:.0%} of {report['n']}, above sft.max_lost_share "
        f"{limit:.0%}; worst language {worst[0]}: {worst[1]['truncated']} truncated, {worst[1]['dropped']} dropped). "
        f"Fix: set sft.max_length to {-(-longest // LENGTH_STEP) * LENGTH_STEP} (the longest example is {longest} "
        "tokens) or auto, lower retrieval.k, or shorten the answers (data.max_chars)")
