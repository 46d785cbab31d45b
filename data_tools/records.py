"""The clean task: one shard of units -> its records, rejects, columns for dedupe, and LSH partitions.

    python -c "from data_tools.records import clean_shard; print(clean_shard.__doc__.splitlines()[0])"

Files written under the work folder, per shard N (each atomically):
- records/N.jsonl   the records that passed every step, in order
- rejects/N.jsonl   the pairs a step rejected, with file:line, reason, field and the (scrubbed) row
- meta/N.npz        per record: ordinal, line, duplicate and answer keys, sizes, language,
                    category, conversation, where its line ends
- sets/N.*.npy      each record's question 3-gram set (values, offsets, ordinal) and leakage band keys,
                    memory-mapped by pairs.py
- rows/N.pickle     each record's row as given, scrubbed (an exact duplicate's reject shows it)
- parts/P/N.npz     the duplicate keys and duplicate-layout band keys that fall in partition P (key % PARTITIONS)
"""

from __future__ import annotations

import pickle
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from data_tools.jsonio import dumps_line
from data_tools.pairs import PARTITIONS
from data_tools.shards import PLACE_BITS, load_units
from data_tools.steps import STEPS, Context, Pair, answer_key, faq_pairs, to_record
from tunebot.config import DataConfig
from tunebot.rundir import atomic_open


def reason_name(reason: str) -> str:
    """The short name a reject is counted under in the report (the reason before any detail)."""
    return re.split(r" \(|:", reason, maxsplit=1)[0]


def clean_shard(number: int, cfg: DataConfig, system_prompt: str, prefix: str, work: str) -> dict[str, Any]:
    """Runs the steps over shard `number` and writes its files; returns its counts for the report."""
    from data_tools.turns import log_pairs

    folder = Path(work)
    ctx = Context(cfg, system_prompt, load_units(folder, number), prefix)
    extra: Counter = Counter()
    found: Counter = Counter()
    pairs = faq_pairs(ctx) if ctx.head["kind"] == "faq" else log_pairs(ctx, number, extra, found)
    for step in STEPS:
        pairs = step(pairs, ctx)
    kept = [index for index, pair in enumerate(pairs) if pair.reject is None]
    rejected = Counter()
    with atomic_open(folder / "rejects" / f"{number}.jsonl", binary=True) as handle:
        for pair in pairs:
            found.update(pair.found)
            if pair.reject is not None:
                reason, field = pair.reject
                rejected[reason_name(reason)] += 1
                handle.write(dumps_line({"source": pair.source, "reason": ctx.scrubbed(reason), "field": field,
                                         "row": ctx.scrubbed(pair.row)}))
    categories = _write_records(folder, number, [pairs[index] for index in kept], kept, ctx,
                                [index for index, pair in enumerate(pairs) if pair.reject is not None])
    _write_rows(folder, number, [pairs[index] for index in kept], ctx)
    return {"rows_in": len(pairs), "kept": len(kept), "rejected": dict(rejected), "pii": dict(found),
            "extra": dict(extra), "categories": categories}


def _write_records(folder: Path, number: int, pairs: list[Pair], places: list[int], ctx: Context,
                   rejected: list[int]) -> list[str]:
    """Writes records/N.jsonl, meta/N.npz and parts/*/N.npz; returns the category names meta indexes."""
    from data_tools.matching import layout_bands, sketch

    ends, langs = [], []
    with atomic_open(folder / "records" / f"{number}.jsonl", binary=True) as handle:
        for pair in pairs:
            record = to_record(pair, ctx)
            langs.append(record["lang"] == "ja")
            ends.append(handle.tell() + handle.write(dumps_line(record)))
    names: dict[str, int] = {}
    ordinal = (np.int64(number) << np.int64(PLACE_BITS)) + np.array(places, dtype=np.int64)
    values, offsets, bands, signatures = sketch([pair.match for pair in pairs])
    key = np.array([pair.key for pair in pairs], dtype=np.uint64)
    meta = {
        "ordinal": ordinal,
        "line": np.array([int(pair.source.rsplit(":", 1)[1]) for pair in pairs], dtype=np.int64),
        "key": key, "answer": np.array([answer_key(pair.answer) for pair in pairs], dtype=np.int64),
        "question_chars": np.array([len(pair.question) for pair in pairs], dtype=np.int32),
        "answer_chars": np.array([len(pair.answer) for pair in pairs], dtype=np.int32),
        "ja": np.array(langs, dtype=bool),
        "conversation": np.array([pair.conversation for pair in pairs], dtype=np.int64),
        "category": np.array([names.setdefault(pair.category, len(names)) for pair in pairs], dtype=np.int32),
        "ends": np.array(ends, dtype=np.int64),
        "rejected": (np.int64(number) << np.int64(PLACE_BITS)) + np.array(rejected, dtype=np.int64),
    }
    _save(folder / "meta" / f"{number}.npz", meta)
    for name, array in (("ordinal", ordinal), ("offsets", offsets), ("values", values), ("signature", signatures)):
        with atomic_open(folder / "sets" / f"{number}.{name}.npy", binary=True) as handle:
            np.save(handle, array)
    layouts = layout_bands()
    duplicate, leakage = bands[:, layouts["duplicate"]], bands[:, layouts["leakage"]]
    with atomic_open(folder / "sets" / f"{number}.leakage.npy", binary=True) as handle:
        np.save(handle, np.ascontiguousarray(leakage.T))  # a band's keys of the shard in one run
    band = np.broadcast_to(np.arange(duplicate.shape[1], dtype=np.uint8), duplicate.shape)
    rows = np.broadcast_to(ordinal[:, None], duplicate.shape)
    for part in range(PARTITIONS):
        exact, banded = key % np.uint64(PARTITIONS) == part, duplicate % np.uint64(PARTITIONS) == part
        _save(folder / "parts" / str(part) / f"{number}.npz", {
            "key": key[exact], "key_ordinal": ordinal[exact],
            "band": band[banded], "band_key": duplicate[banded], "band_ordinal": rows[banded]})
    return list(names)


def _write_rows(folder: Path, number: int, pairs: list[Pair], ctx: Context) -> None:
    """Writes rows/N.pickle: each record's row as the user gave it, scrubbed, for the reject it becomes if
    it turns out an exact duplicate (FAQ rows only; the question and answer are the record's, redacted)."""
    columns = ctx.head["columns"] if ctx.head["kind"] == "faq" else None
    rows = []
    for pair in pairs:
        if columns is None:
            rows.append(None)
            continue
        redacted = {columns[0]: pair.question, columns[1]: pair.answer}
        rows.append({key: redacted[key] if key in redacted else ctx.scrubbed(value) for key, value in pair.row.items()})
    with atomic_open(folder / "rows" / f"{number}.pickle", binary=True) as handle:
        pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_open(path, binary=True) as handle:
        np.savez(handle, **arrays)
