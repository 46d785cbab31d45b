"""The data stage end to end, streaming: read sources, build records, dedupe, split, write, summarize.

    tunebot data examples/acme-demo.yaml

Pass 1 streams every unit through `RecordBuilder`: rejects go straight to `rejects.jsonl`,
records to a spool file, and only compact per-record arrays and sketches stay in memory
(about 0.5 KB a record). Then near-duplicates and leakage clusters are found on the sketches,
the split is chosen, and pass 2 copies the spooled lines into their split files (the spool
remembers where each line ends, so runs of neighbours go in one read and write).
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from data_tools.build import Candidate, CandidateBatch, RecordBuilder, SourceReport, answer_key, expand_sources, worker_count
from data_tools.dedupe import DUPLICATE_BAND_ROWS, SketchStore, normalize_for_matching, split_duplicates
from data_tools.forks import PARALLEL_MIN_TEXTS, aside
from data_tools.jsonio import dumps_line, loads
from data_tools.readers import DataError
from data_tools.rejects import all_rejected
from data_tools.split import SPLITS, assign_splits
from tunebot.config import RunConfig
from tunebot.prompts import answer_of, question_of
from tunebot.rundir import RunDir, atomic_open, atomic_write_json

BATCH = 8192
COPY_BYTES = 8 << 20
MAX_CONFLICTS_LISTED = 1000


class Spool:
    """Pass 1's memory: records spooled to disk, with the arrays and sketches the later steps need."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.questions = SketchStore()
        self._texts: list[str] = []
        self._sketched: list[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[int]]] = []  # (batch, rows kept)
        self._queued = 0
        self.files, self.strata, self.conversations = array("i"), array("i"), array("q")
        self.lengths = (array("i"), array("i"))
        self.answers = array("q")  # answer_key of each record
        self.ja = array("b")
        self.strata_names: dict[str, int] = {}
        self.count = 0
        self.ends = array("q")  # where each record's line ends in the spool

    def add(self, candidate: Candidate) -> None:
        """Writes the record to the spool and queues its texts (or its worker-made sketches) for the store."""
        line = candidate.line or dumps_line(candidate.record)
        self.handle.write(line)
        self.ends.append((self.ends[-1] if self.ends else 0) + len(line))
        if candidate.sketch is None:
            if self._sketched:
                self.flush()
            self._texts.append(candidate.match or normalize_for_matching(candidate.question))
        else:
            if self._texts:
                self.flush()
            batch, row = candidate.sketch
            if not self._sketched or self._sketched[-1][0] is not batch:
                self._sketched.append((batch, []))
            self._sketched[-1][1].append(row)
        self.files.append(candidate.file_index)
        self.strata.append(self.strata_names.setdefault(candidate.category, len(self.strata_names)))
        self.conversations.append(candidate.conversation)
        question_chars, answer_chars = candidate.sizes or (len(candidate.question), len(candidate.answer))
        self.lengths[0].append(question_chars)
        self.lengths[1].append(answer_chars)
        self.answers.append(candidate.answer_key or answer_key(candidate.answer))
        self.ja.append(candidate.lang == "ja")
        self.count += 1
        self._queued += 1
        if self._queued >= BATCH:
            self.flush()

    def add_batch(self, batch: CandidateBatch) -> None:
        """Writes a batch of worker-made records to the spool, as `add` would one by one."""
        if self._texts:
            self.flush()
        names, count = self.strata_names, batch.count
        strata = np.array([names.setdefault(name, len(names)) for name in batch.category_names], dtype=np.int32)
        self.handle.write(batch.lines)
        self.ends.frombytes((batch.line_ends + (self.ends[-1] if self.ends else 0)).astype(np.int64).tobytes())
        self._sketched.append((batch.sketches, batch.sketch_rows))
        self.files.extend(array("i", [batch.file_index]) * count)
        self.strata.frombytes(strata[batch.categories].tobytes())
        self.conversations.extend(array("q", [-1]) * count)
        self.lengths[0].frombytes(batch.question_chars.astype(np.int32).tobytes())
        self.lengths[1].frombytes(batch.answer_chars.astype(np.int32).tobytes())
        self.answers.frombytes(batch.answer_keys.astype(np.int64).tobytes())
        self.ja.frombytes(batch.ja.astype(np.int8).tobytes())
        self.count += count
        self._queued += count
        if self._queued >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Sketches the queued questions, or stores the rows kept of the sketch batches workers made."""
        if self._texts:
            self.questions.add(self._texts, normalized=True)
            self._texts = []
        for (signatures, values, lengths), rows in self._sketched:
            kept = np.zeros(len(lengths), dtype=bool)
            kept[rows] = True  # rows that were not exact duplicates, in order
            self.questions.add_sketched(signatures[kept], values[np.repeat(kept, lengths)], lengths[kept])
        self._sketched = []
        self._queued = 0

    def conversation_links(self) -> np.ndarray:
        """Returns (i-1, i) pairs joining consecutive records of one conversation."""
        conversations = np.frombuffer(self.conversations, dtype=np.int64)
        same = np.flatnonzero((conversations[1:] == conversations[:-1]) & (conversations[1:] >= 0))
        return np.stack([same, same + 1], axis=1)

    def statistics(self, kept: np.ndarray) -> dict[str, Any]:
        """Returns language counts and length statistics of the kept records."""
        ja = np.frombuffer(self.ja, dtype=np.int8)[kept]
        stats: dict[str, Any] = {"langs": {lang: count for lang, count in (("en", int((ja == 0).sum())), ("ja", int(ja.sum()))) if count}}
        for name, lengths in zip(("question_chars", "answer_chars"), self.lengths):
            values = np.frombuffer(lengths, dtype=np.int32)[kept]
            stats[name] = {"mean": round(float(values.mean()), 1), "max": int(values.max())} if len(values) else {}
        return stats


def _pass_one(builder: RecordBuilder, spool: Spool, rejects: IO[bytes]) -> None:
    for _, outcome in builder.units():
        if isinstance(outcome, Candidate):
            spool.add(outcome)
        elif isinstance(outcome, CandidateBatch):
            spool.add_batch(outcome)
        else:
            rejects.write(dumps_line(outcome))
    spool.flush()


def _duplicates(spool: Spool, spool_path: Path, cfg: RunConfig) -> tuple[dict[int, tuple[int, float]], list[tuple[int, int, float]]]:
    """Returns ({later index: (earlier index, similarity)}, conflicts) among the spooled records.

    Answers are compared exactly, read back from the spool for the few similar-question pairs.
    """
    threshold = cfg.data.near_duplicate_threshold
    pairs, scores = spool.questions.similar(threshold, DUPLICATE_BAND_ROWS)
    answer_similarity = _answer_similarity(spool_path, spool.ends, pairs)
    duplicates, conflicts = split_duplicates(pairs, scores, answer_similarity, threshold)
    dropped: dict[int, tuple[int, float]] = {}
    for first, second, similarity in duplicates.tolist():
        dropped.setdefault(int(second), (int(first), similarity))
    return dropped, [(int(a), int(b), s) for a, b, s in conflicts.tolist()]


def _answer_similarity(spool_path: Path, ends: array, pairs: np.ndarray) -> np.ndarray:
    """Returns the answer similarity of each pair, reading the needed answers back from the spool.

    Their sketches (bottom-256: exact for answers up to ~250 characters) take ~1 KB each.
    """
    wanted = np.unique(pairs)
    store = SketchStore(k=256, searchable=False)
    with _lines(spool_path, ends) as line:
        for at in range(0, len(wanted), BATCH):
            store.add([answer_of(loads(line(index))) for index in wanted[at : at + BATCH].tolist()])
    local = np.searchsorted(wanted, pairs.reshape(-1)).reshape(-1, 2)
    return store.similarity(local)


@contextmanager
def _lines(spool_path: Path, ends: array) -> Iterator[Callable[[int], bytes]]:
    """Yields a function that returns the spool's line `index` (by its byte range, not by reading up to it).

    pread, not mmap: a mapped page read counts in this process's memory, and the spool is ~0.5 KB a record.
    """
    with open(spool_path, "rb") as handle:
        descriptor = handle.fileno()
        yield lambda index: os.pread(descriptor, ends[index] - (start := ends[index - 1] if index else 0), start)


def _route(spool_path: Path, out: Path, chosen: np.ndarray, dropped: dict[int, tuple[int, float]],
           wanted: set[int], rejects: IO[bytes], reports: list[SourceReport], spool: Spool) -> dict[int, dict]:
    """Pass 2: copies the spooled records into their split files, runs of neighbours in one write,
    and the near-duplicates into the rejects.

    Returns the records of the `wanted` indices (earlier twins and conflicts, for messages and the report).
    """
    seen: dict[int, dict] = {}
    with _lines(spool_path, spool.ends) as line:
        for index in sorted(wanted | dropped.keys()):  # an earlier twin comes before its later one
            record = loads(line(index))
            if index in wanted:  # earlier twins need only their source; conflicts their answer too
                seen[index] = {"source": record["source"], "completion": record["completion"]}
            if index in dropped:
                earlier, similarity = dropped[index]
                reason = f"near-duplicate (similarity {similarity:.2f} to {seen[earlier]['source']})"
                row = {"question": question_of(record), "answer": answer_of(record)}
                rejects.write(dumps_line({"source": record["source"], "reason": reason, "field": None, "row": row}))
                reports[spool.files[index]].kept -= 1
                reports[spool.files[index]].reject(reason)
    target = chosen.copy()
    target[list(dropped)] = len(SPLITS)  # nowhere
    with open(spool_path, "rb") as spool_file, atomic_open(out / "train.jsonl", binary=True) as train, \
            atomic_open(out / "val.jsonl", binary=True) as val, atomic_open(out / "test.jsonl", binary=True) as test:
        write = [handle.write for handle in (train, val, test)]
        ends = np.frombuffer(spool.ends, dtype=np.int64)
        starts = np.flatnonzero(np.concatenate([[True], target[1:] != target[:-1]])) if len(target) else np.zeros(0, dtype=np.int64)
        for first, last, split in zip(starts.tolist(), [*(starts[1:] - 1).tolist(), len(target) - 1], target[starts].tolist()):
            begin, end = (ends[first - 1] if first else 0), ends[last]
            spool_file.seek(begin)
            while split < len(SPLITS) and begin < end:  # a run of records bound for one split, 8 MB at a time
                data = spool_file.read(min(end - begin, COPY_BYTES))
                write[split](data)
                begin += len(data)
    return seen


def summary_table(reports: list[SourceReport], splits: dict[str, int]) -> str:
    """Returns the table `tunebot data` prints: one line per source, then the split sizes."""
    lines = [f"{'source':<40} {'unit':<10} {'rows':>7} {'kept':>7} {'rejected':>8} {'dupes':>6} {'pii':>5}  rejected by reason"]
    for report in reports:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in report.rejected.most_common()) or "-"
        name = report.file if len(report.file) <= 40 else "…" + report.file[-39:]
        found = sum(report.pii.values())
        lines.append(
            f"{name:<40} {report.unit:<10} {report.rows_in:>7} {report.kept:>7} {sum(report.rejected.values()):>8} "
            f"{report.duplicates:>6} {found:>5}  {reasons}"
        )
    lines.append("split: " + ", ".join(f"{name} {count}" for name, count in splits.items()))
    return "\n".join(lines)


def _split_warnings(chosen: np.ndarray, cfg: RunConfig, largest: int) -> list[str]:
    """Says when whole clusters kept val or test far below their configured share."""
    warnings = []
    for number, name in ((1, "val"), (2, "test")):
        wanted = getattr(cfg.data.split, name)
        share = float((chosen == number).mean()) if len(chosen) else 0.0
        if wanted > 0 and share < wanted / 2:
            warnings.append(
                f"{name} holds {share:.1%} of the records, not {wanted:.0%}: similar questions stay together and "
                f"the largest cluster has {largest} records; raise data.leakage_threshold (now "
                f"{cfg.data.leakage_threshold}) if these are not paraphrases of one question"
            )
    return warnings


def run_data_stage(cfg: RunConfig, run_dir: RunDir) -> None:
    """Writes data/{train,val,test}.jsonl, rejects.jsonl and report.json, then DONE."""
    out = run_dir.start("data")
    builder = RecordBuilder(cfg.data, cfg.system_prompt)
    spool_path = out / ".records.spool.jsonl"
    try:
        with atomic_open(out / "rejects.jsonl", binary=True) as rejects:
            with open(spool_path, "wb") as handle:
                spool = Spool(handle)
                _pass_one(builder, spool, rejects)
            if spool.count:
                report = _finish(cfg, spool, spool_path, out, rejects, builder.reports)
    finally:
        spool_path.unlink(missing_ok=True)
    if not spool.count:  # rejects.jsonl is written all the same: it is where the user finds out why
        raise DataError(all_rejected(builder.reports, out / "rejects.jsonl"))
    if cfg.data.augment.variants:
        report["augmented"] = _augment(cfg, out / "train.jsonl")
    atomic_write_json(out / "report.json", report)
    print(summary_table(builder.reports, report["splits"]))
    if report.get("augmented"):
        made = report["augmented"]
        print(f"augment: {made['rows']} question variants of {made['from_records']} training records ({made['method']}) "
              f"added to train.jsonl: {made['by_lang']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    run_dir.mark_done("data", cfg.fingerprint("data"), records=report["kept"])


def _augment(cfg: RunConfig, train_path: Path) -> dict[str, Any]:
    """Appends question variants of the training records to train.jsonl (atomically); returns the counts."""
    from data_tools.augment import augment_records, endpoint_writer, summary
    from tunebot.lexicon import Lexicon

    settings = cfg.data.augment
    with open(train_path, "rb") as handle:
        train = [loads(line) for line in handle if line.strip()]
    writer = endpoint_writer(settings.endpoint) if settings.endpoint is not None else None
    made = augment_records(train, settings.variants, settings.seed, Lexicon.builtin(), writer)
    with atomic_open(train_path, binary=True) as handle:
        for record in train + made:
            handle.write(dumps_line(record))
    return summary(made, train, "endpoint + rules" if writer else "rules")


def _finish(cfg: RunConfig, spool: Spool, spool_path: Path, out: Path, rejects: IO[bytes], reports: list[SourceReport]) -> dict[str, Any]:
    """Dedupes, clusters and splits the spooled records, routes them, and returns report.json."""
    store = spool.questions
    store.pack()  # before the fork, so both processes share the arrays
    aside_ok = worker_count(cfg.data) > 1 and store.count >= PARALLEL_MIN_TEXTS
    # Leakage clusters are found in a forked process while this one finds the near-duplicates.
    with aside(store.clusters, cfg.data.leakage_threshold, spool.conversation_links(), run_aside=aside_ok) as clusters:
        dropped, conflicts = _duplicates(spool, spool_path, cfg)
        labels = clusters()
    kept = np.ones(spool.count, dtype=bool)
    kept[list(dropped)] = False
    names = [report.file for report in reports]
    strata = {number: name for name, number in spool.strata_names.items()}
    kept_index = np.flatnonzero(kept)
    files = np.frombuffer(spool.files, dtype=np.int32)[kept_index]
    stratum = np.frombuffer(spool.strata, dtype=np.int32)[kept_index]
    split = cfg.data.split
    chosen = np.zeros(spool.count, dtype=np.int8)
    train_only = {str(path) for source, path in expand_sources(cfg.data.sources) if not source.held_out}
    chosen[kept_index] = assign_splits([names[f] for f in files.tolist()], [strata[s] for s in stratum.tolist()],
                                       labels[kept_index], split.val, split.test, split.seed,
                                       np.frombuffer(spool.answers, dtype=np.int64)[kept_index], train_only)
    listed = conflicts[:MAX_CONFLICTS_LISTED]
    wanted = {first for first, _ in dropped.values()} | {i for a, b, _ in listed for i in (a, b)}
    seen = _route(spool_path, out, chosen, dropped, wanted, rejects, reports, spool)
    cluster_sizes = np.bincount(np.unique(labels[kept_index], return_inverse=True)[1])
    return {
        "sources": [report.as_json() for report in reports],
        "rows_in": sum(report.rows_in for report in reports),
        "kept": int(kept.sum()),
        "rejected": sum(sum(report.rejected.values()) for report in reports),
        "splits": {name: int((chosen[kept_index] == number).sum()) for number, name in enumerate(SPLITS)},
        **spool.statistics(kept_index),
        "duplicates": {"exact": sum(r.rejected["duplicate"] for r in reports), "near": len(dropped)},
        "conflicting_answers_total": len(conflicts),
        "conflicting_answers": [
            {"sources": [seen[a]["source"], seen[b]["source"]], "question_similarity": round(similarity, 3),
             "answers": [answer_of(seen[a]), answer_of(seen[b])]}
            for a, b, similarity in listed
        ],
        "leakage_clusters": int((cluster_sizes > 1).sum()),
        "largest_cluster": int(cluster_sizes.max()) if len(cluster_sizes) else 0,
        "warnings": _split_warnings(chosen[kept_index], cfg, int(cluster_sizes.max()) if len(cluster_sizes) else 0),
        "pii": {"mode": cfg.data.pii, "found": dict(sum((report.pii for report in reports), Counter()))},
    }
