"""The decide step: every shard's columns and every partition's pairs -> duplicates, clusters and the split.

    python -c "from data_tools.decide import decide; print(decide.__doc__.splitlines()[0])"

The only step that sees all records at once, and only as columns of numbers (about 60 bytes a record):
exact duplicates and near-duplicates lose to the earliest record, leakage clusters are scipy's
connected components over the verified similar pairs (and the turns of one conversation), and
`split.assign_split_codes` places whole clusters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data_tools.jsonio import loads
from data_tools.matching import gram_sets, normalize_for_matching, pair_similarity
from data_tools.pairs import SketchStore, join_components, load_npz
from data_tools.shards import PLACE_BITS
from data_tools.split import assign_split_codes
from tunebot.config import DataConfig
from tunebot.prompts import answer_of

ANSWER_K = 256  # answers' 3-gram sets: exact up to ~250 characters, the bottom-k estimate past that
COLUMNS = ("ordinal", "line", "answer", "category", "conversation", "ja", "question_chars", "answer_chars", "ends")


@dataclass
class Decisions:
    """What happens to each record (columns in ordinal order) and what the report says of it."""

    columns: dict[str, np.ndarray]
    shard_starts: np.ndarray  # where each shard's records begin in the columns
    dropped: dict[int, str] = field(default_factory=dict)  # record index -> reject reason
    split: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))  # -1 dropped, else 0/1/2
    conflicts: tuple[np.ndarray, np.ndarray] = (np.zeros((0, 2), dtype=np.int64), np.zeros(0))  # (pairs, similarity)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    near: int = 0


def load_columns(folder: Path, shards: list[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Returns the records' columns, all shards joined in order, and each shard's first row."""
    columns: dict[str, np.ndarray] = {}
    sizes: list[int] = []
    for name in COLUMNS:  # a column at a time: memory holds the joined columns and one column's parts
        parts = [load_npz(folder / "meta" / f"{number}.npz", (name,))[name] for number in shards]
        sizes = sizes or [len(part) for part in parts]
        columns[name] = np.concatenate(parts)
    return columns, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def record_lines(folder: Path, decisions: Decisions, indexes: list[int]) -> dict[int, dict[str, Any]]:
    """Returns the records at these indexes, read back from their shards' files by byte range."""
    found, ends, ordinal = {}, decisions.columns["ends"], decisions.columns["ordinal"]
    wanted = np.unique(np.asarray(indexes, dtype=np.int64))
    shards = np.searchsorted(decisions.shard_starts, wanted, side="right") - 1
    for shard in np.unique(shards).tolist():
        mine = wanted[shards == shard]
        first = int(decisions.shard_starts[shard])
        with open(folder / "records" / f"{int(ordinal[first]) >> PLACE_BITS}.jsonl", "rb") as handle:
            descriptor = handle.fileno()
            for index in mine.tolist():
                start = int(ends[index - 1]) if index > first else 0
                found[index] = loads(os.pread(descriptor, int(ends[index]) - start, start))
    return found


def decide(folder: Path, shards: list[int], files: list[str], categories: dict[int, list[str]], cfg: DataConfig,
           train_only: set[str]) -> Decisions:
    """Decides duplicates, conflicts, clusters and splits of every record."""
    columns, starts = load_columns(folder, shards)
    decisions = Decisions(columns, starts)
    ordinal = columns["ordinal"]
    names = sorted(part.stem for part in (folder / "pairs").glob("*.npz"))
    found = [load_npz(folder / "pairs" / f"{name}.npz") for name in names]
    exact = np.concatenate([item["exact"] for item in found]) if found else np.zeros((0, 2), dtype=np.int64)
    pairs = np.searchsorted(ordinal, np.concatenate([item["pairs"] for item in found]) if found
                            else np.zeros((0, 2), np.int64))
    similarity = np.concatenate([item["similarity"] for item in found]) if found else np.zeros(0, dtype=np.float32)
    leaked = np.concatenate([np.full(len(item["pairs"]), name == "leakage") for name, item in zip(names, found)]) \
        if found else np.zeros(0, dtype=bool)
    gone = np.zeros(len(ordinal), dtype=bool)
    later, first = np.searchsorted(ordinal, exact[:, 0]), np.searchsorted(ordinal, exact[:, 1])
    gone[later] = True
    for index, earlier in zip(later.tolist(), first.tolist()):
        decisions.dropped[index] = f"duplicate (same question and answer as {_source(columns, files, earlier)})"
    codes, unique = np.unique(pairs[:, 0] * len(ordinal) + pairs[:, 1], return_index=True)  # a pair shares bands
    pairs, similarity = np.stack([codes // len(ordinal), codes % len(ordinal)], axis=1), similarity[unique]
    alive = ~gone[pairs].any(axis=1)  # an exact duplicate is no near-duplicate, but still links its cluster
    near = _exact_where_estimated(folder, ordinal, pairs, similarity, leaked[unique], cfg.near_duplicate_threshold)
    _near_duplicates(folder, decisions, files, pairs[alive], near[alive], cfg.near_duplicate_threshold)
    decisions.labels = _clusters(columns, pairs[similarity >= cfg.leakage_threshold])
    kept = np.ones(len(ordinal), dtype=bool)
    kept[list(decisions.dropped)] = False
    decisions.split = np.full(len(ordinal), -1, dtype=np.int8)
    shard_of = np.repeat(np.arange(len(shards)), np.diff(starts))[kept]
    names = sorted({name for number in shards for name in categories[number]})
    table = [np.searchsorted(names, categories[number]).astype(np.int64) for number in shards]  # shard's code -> global
    offsets = np.concatenate([[0], np.cumsum([len(codes) for codes in table])]).astype(np.int64)
    lookup = np.concatenate(table) if names else np.zeros(0, dtype=np.int64)
    strata = lookup[offsets[shard_of] + columns["category"][kept]] if names else np.zeros(len(shard_of), np.int64)
    split = cfg.split
    decisions.split[kept] = assign_split_codes(np.asarray(shards, dtype=np.int64)[shard_of] >> 16, files, strata,
                                               decisions.labels[kept], split.val, split.test, split.seed,
                                               columns["answer"][kept], train_only)
    return decisions


def _source(columns: dict[str, np.ndarray], files: list[str], index: int) -> str:
    return f"{files[int(columns['ordinal'][index]) >> PLACE_BITS >> 16]}:{int(columns['line'][index])}"


def _exact_where_estimated(folder: Path, ordinal: np.ndarray, pairs: np.ndarray, similarity: np.ndarray,
                           leaked: np.ndarray, threshold: float) -> np.ndarray:
    """Returns the question similarities with the exact value wherever a pair only the leakage task found
    reaches `threshold`: the pairs it was sure of carry their signatures' estimate, and a near-duplicate
    is decided on the exact similarity (at 1M rows: 1,930 such pairs, every one under 0.9 exactly)."""
    recheck = leaked & (similarity >= threshold)
    if not recheck.any():
        return similarity
    exact = similarity.copy()
    exact[recheck] = SketchStore(folder).similarity(ordinal[pairs[recheck]])
    return exact


def _near_duplicates(folder: Path, decisions: Decisions, files: list[str], pairs: np.ndarray, similarity: np.ndarray,
                     threshold: float, chunk: int = 100_000) -> None:
    """Pairs whose questions and answers are both `threshold` similar: the later one is dropped;
    the same question with a different answer is a conflict a team should resolve. Answers that differ
    are read back `chunk` pairs at a time, so memory does not grow with the number of pairs."""
    close = similarity >= threshold
    pairs, similarity = pairs[close], similarity[close]
    order = np.argsort(pairs[:, 1] * len(decisions.columns["ordinal"]) + pairs[:, 0])  # by later, then earlier record
    pairs, similarity = pairs[order], similarity[order]
    answer_key = decisions.columns["answer"]
    answers = np.ones(len(pairs))  # the same answer: similarity 1, nothing to read back
    differ = np.flatnonzero(answer_key[pairs[:, 0]] != answer_key[pairs[:, 1]])
    for at in range(0, len(differ), chunk):
        answers[differ[at : at + chunk]] = _answer_similarity(folder, decisions, pairs[differ[at : at + chunk]])
    for at in np.flatnonzero(answers >= threshold).tolist():
        a, b = pairs[at].tolist()
        if b not in decisions.dropped:
            both = min(float(similarity[at]), float(answers[at]))
            decisions.dropped[b] = f"near-duplicate (similarity {both:.2f} to {_source(decisions.columns, files, a)})"
            decisions.near += 1
    conflict = answers < threshold
    by_earlier = np.lexsort((pairs[conflict, 1], pairs[conflict, 0]))
    decisions.conflicts = (pairs[conflict][by_earlier], similarity[conflict][by_earlier])


def _answer_similarity(folder: Path, decisions: Decisions, pairs: np.ndarray) -> np.ndarray:
    """Returns the 3-gram similarity of the answers of each (i, j) pair of records."""
    records = record_lines(folder, decisions, pairs.reshape(-1).tolist())
    indexes = np.array(sorted(records), dtype=np.int64)
    values, offsets = gram_sets([normalize_for_matching(answer_of(records[index])) for index in indexes.tolist()],
                                ANSWER_K)
    return pair_similarity(values, offsets[:-1], np.diff(offsets), np.searchsorted(indexes, pairs), ANSWER_K)


def _clusters(columns: dict[str, np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Returns a cluster label per record: similar questions and one conversation's turns join."""
    conversation = columns["conversation"]
    same = np.flatnonzero((conversation[1:] == conversation[:-1]) & (conversation[1:] >= 0))
    edges = np.concatenate([pairs.reshape(-1, 2), np.stack([same, same + 1], axis=1)])
    return join_components(np.arange(len(conversation)), edges)
