"""The data stage: read -> normalise -> PII -> filters -> dedupe -> leakage-aware split -> write.

    tunebot data examples/acme-demo.yaml

The whole flow is `run_data_stage` below. Each task runs on the configured engine (`data.engine`:
this machine's processes, or a Ray cluster) and talks only through files in data/.work:
1. read_source (a task per file): the format readers' units, cut into shards   (shards.py)
2. clean_shard (a task per shard): the steps of steps.py, then records, rejects and LSH keys (records.py)
3. match_task (a task per partition, and one for leakage clusters): duplicates and similar pairs (pairs.py)
4. decide (here, on columns of numbers): duplicates, clusters, the split        (decide.py)
5. write (here): the split files and rejects.jsonl, shard by shard, then report.json
A killed run resumes: finished tasks left a marker with the stage's fingerprint (engine.run_tasks).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from data_tools.decide import Decisions, decide, record_lines
from data_tools.engine import make_engine, run_tasks
from data_tools.jsonio import dumps_line
from data_tools.pairs import load_npz, match_task, match_tasks
from data_tools.readers import DataError
from data_tools.records import clean_shard
from data_tools.rejects import all_rejected
from data_tools.report import SourceReport, split_counts, split_warnings, statistics, summary_table
from data_tools.shards import SHARD_UNITS, expand_sources, id_prefixes, read_source
from tunebot.config import RunConfig
from tunebot.prompts import answer_of, question_of
from tunebot.rundir import RunDir, atomic_open, atomic_write_json

MAX_CONFLICTS_LISTED = 1000
IN_PROCESS_BYTES = 4 << 20  # smaller inputs run in this process: starting workers costs more than they save


def run_data_stage(cfg: RunConfig, run_dir: RunDir) -> None:
    """Writes data/{train,val,test}.jsonl, rejects.jsonl and report.json, then DONE."""
    out = run_dir.start("data")
    sources = expand_sources(cfg.data.sources)
    files = [str(path) for _, path in sources]
    prefixes = id_prefixes([path for _, path in sources])
    work, fingerprint = out / ".work", _fingerprint(cfg, files)
    if (work / "FINGERPRINT").is_file() and (work / "FINGERPRINT").read_text() != fingerprint:
        shutil.rmtree(work)  # another config or other inputs: nothing in it can be reused
    work.mkdir(parents=True, exist_ok=True)
    (work / "FINGERPRINT").write_text(fingerprint)
    small = sum(os.path.getsize(file) for file in files if os.path.isfile(file)) < IN_PROCESS_BYTES
    engine = make_engine(cfg.data.engine, 1 if small and cfg.data.engine == "local" else cfg.data.workers,
                         cfg.data.ray_address)
    done = work / "done"
    try:
        read = run_tasks(engine, read_source, {f"read-{index}": (index, source, file, str(work), SHARD_UNITS)
                                               for index, ((source, _), file) in enumerate(zip(sources, files))},
                         done, fingerprint)
        shards = [number for result in read.values() for number in result["shards"]]
        cleaned = run_tasks(engine, clean_shard, {f"clean-{number}": (number, cfg.data, cfg.system_prompt,
                                                                      prefixes[number >> 16], str(work))
                                                  for number in shards}, done, fingerprint)
        shutil.rmtree(work / "units", ignore_errors=True)  # the rows as read, before PII redaction: gone once cleaned
        thresholds = (cfg.data.near_duplicate_threshold, cfg.data.leakage_threshold)
        matches = {f"match-{name}": (name, str(work), shards, *thresholds) for name in match_tasks()}
        run_tasks(engine, match_task, matches, done, fingerprint)
    finally:
        engine.close()
    reports = _reports(sources, cleaned, shards)
    if not sum(report.kept for report in reports):
        _write(out, work, shards, None, reports)  # rejects.jsonl is written all the same: the user finds out why there
        raise DataError(all_rejected(reports, out / "rejects.jsonl"))
    train_only = {file for (source, _), file in zip(sources, files) if not source.held_out}
    categories = {number: cleaned[f"clean-{number}"]["categories"] for number in shards}
    decisions = decide(work, shards, files, categories, cfg.data, train_only)
    _write(out, work, shards, decisions, reports)
    report = _report(cfg, work, reports, decisions)
    if cfg.data.augment.variants:
        report["augmented"] = _augment(cfg, out / "train.jsonl")
    atomic_write_json(out / "report.json", report)
    shutil.rmtree(work)
    _print(reports, report)
    run_dir.mark_done("data", cfg.fingerprint("data"), records=report["kept"])


def built_records(cfg: RunConfig) -> tuple[list[dict], list[dict], list[dict[str, Any]]]:
    """Runs the stage into a temporary run folder; returns (records of every split in file order,
    rejects, report.json's sources). For previews (`tunebot init`) and tests: the stage's own code."""
    import tempfile

    from data_tools.jsonio import loads

    with tempfile.TemporaryDirectory(prefix="tunebot-data-") as folder:
        run_dir = RunDir(Path(folder) / cfg.name)
        try:
            run_data_stage(cfg, run_dir)
        except DataError:
            if not (run_dir.stage_dir("data") / "rejects.jsonl").is_file():
                raise
        data = run_dir.stage_dir("data")

        def read(name: str) -> list[dict[str, Any]]:
            return [loads(line) for line in (data / name).read_bytes().splitlines()] if (data / name).is_file() else []

        records = [record for name in ("train.jsonl", "val.jsonl", "test.jsonl") for record in read(name)]
        found = data / "report.json"
        report = json.loads(found.read_text(encoding="utf-8")) if found.is_file() else {}
        order = {file: index for index, file in enumerate(source["file"] for source in report.get("sources", []))}
        records.sort(key=lambda record: (order.get(record["source"].rsplit(":", 1)[0], 0),
                                         int(record["source"].rsplit(":", 1)[1]), record["id"]))
        return records, read("rejects.jsonl"), report.get("sources", [])


def _fingerprint(cfg: RunConfig, files: list[str]) -> str:
    """The stage's config fingerprint and each input's size and modification time."""
    stats = [(file, os.stat(file).st_size, os.stat(file).st_mtime_ns) for file in files if os.path.exists(file)]
    return hashlib.sha256(json.dumps([cfg.fingerprint("data"), stats]).encode()).hexdigest()[:16]


def _reports(sources: list, cleaned: dict[str, dict[str, Any]], shards: list[int]) -> list[SourceReport]:
    reports = [SourceReport(str(path), "row" if source.kind == "faq" else "agent turn") for source, path in sources]
    for number in shards:
        reports[number >> 16].add(cleaned[f"clean-{number}"])
    return reports


def _write(out: Path, work: Path, shards: list[int], decisions: Decisions | None, reports: list[SourceReport]) -> None:
    """Writes the split files (unless no record survived) and rejects.jsonl, shard by shard, each
    shard's rejects in row order."""
    with ExitStack() as stack:
        rejects = stack.enter_context(atomic_open(out / "rejects.jsonl", binary=True))
        names = ("train", "val", "test") if decisions is not None else ()
        handles = [stack.enter_context(atomic_open(out / f"{name}.jsonl", binary=True)) for name in names]
        for position, number in enumerate(shards):
            meta = load_npz(work / "meta" / f"{number}.npz", ("rejected",))
            lines = (work / "rejects" / f"{number}.jsonl").read_bytes().splitlines(keepends=True)
            entries = list(zip(meta["rejected"].tolist(), lines))
            if decisions is not None:
                low, high = int(decisions.shard_starts[position]), int(decisions.shard_starts[position + 1])
                data = memoryview((work / "records" / f"{number}.jsonl").read_bytes())
                bounds = np.concatenate([[0], decisions.columns["ends"][low:high]]).tolist()  # record i: i to i + 1
                split = decisions.split[low:high]
                runs = np.flatnonzero(np.diff(split, prepend=-2, append=-2)).tolist()  # where a run of one split begins
                for first, end in zip(runs[:-1], runs[1:]):  # one write a run of records
                    if split[first] >= 0:
                        handles[split[first]].write(data[bounds[first] : bounds[end]])
                dropped = [index for index in range(low, high) if index in decisions.dropped]
                entries += _duplicate_rejects(work, number, decisions, dropped, reports, low)
            for _, line in sorted(entries, key=lambda entry: entry[0]):
                rejects.write(line)


def _duplicate_rejects(work: Path, number: int, decisions: Decisions, dropped: list[int], reports: list[SourceReport],
                       low: int) -> list[tuple[int, bytes]]:
    """Returns (ordinal, reject line) of a shard's dropped duplicates: an exact duplicate FAQ row with its
    fields as given (scrubbed like the records), otherwise the record's question and answer."""
    if not dropped:
        return []
    import pickle

    with open(work / "rows" / f"{number}.pickle", "rb") as handle:
        rows = pickle.load(handle)
    records = record_lines(work, decisions, dropped)
    ordinals = decisions.columns["ordinal"]
    found = []
    for index in dropped:
        record, reason = records[index], decisions.dropped[index]
        given = rows[index - low] if reason.startswith("duplicate") else None
        row = given if given is not None else {"question": question_of(record), "answer": answer_of(record)}
        reports[number >> 16].reject(reason)
        found.append((int(ordinals[index]),
                      dumps_line({"source": record["source"], "reason": reason, "field": None, "row": row})))
    return found


def _report(cfg: RunConfig, work: Path, reports: list[SourceReport], decisions: Decisions) -> dict[str, Any]:
    """Returns report.json: counts per source, splits, duplicates, conflicts, clusters, PII."""
    kept = decisions.split >= 0
    conflicts, conflict_similarity = decisions.conflicts
    listed = [(int(a), int(b), float(similarity)) for (a, b), similarity in
              zip(conflicts[:MAX_CONFLICTS_LISTED].tolist(), conflict_similarity[:MAX_CONFLICTS_LISTED].tolist())]
    records = record_lines(work, decisions, [index for a, b, _ in listed for index in (a, b)])
    sizes = np.bincount(np.unique(decisions.labels[kept], return_inverse=True)[1]) if kept.any() else np.zeros(0,
            dtype=np.int64)
    largest = int(sizes.max()) if len(sizes) else 0
    return {
        "sources": [report.as_json() for report in reports],
        "rows_in": sum(report.rows_in for report in reports),
        "kept": int(kept.sum()),
        "rejected": sum(sum(report.rejected.values()) for report in reports),
        "splits": split_counts(decisions.split[kept]),
        **statistics(decisions.columns, kept),
        "duplicates": {"exact": sum(report.rejected["duplicate"] for report in reports), "near": decisions.near},
        "conflicting_answers_total": len(conflicts),
        "conflicting_answers": [
            {"sources": [records[a]["source"], records[b]["source"]], "question_similarity": round(similarity, 3),
             "answers": [answer_of(records[a]), answer_of(records[b])]} for a, b, similarity in listed
        ],
        "leakage_clusters": int((sizes > 1).sum()),
        "largest_cluster": largest,
        "warnings": split_warnings(decisions.split[kept], cfg.data, largest),
        "pii": {"mode": cfg.data.pii, "found": dict(sum((report.pii for report in reports), Counter()))},
    }


def _print(reports: list[SourceReport], report: dict[str, Any]) -> None:
    print(summary_table(reports, report["splits"]))
    if report.get("augmented"):
        made = report["augmented"]
        print(
            f"augment: {made['rows']} question variants of {made['from_records']} training records ({made['method']}) "
              f"added to train.jsonl: {made['by_lang']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")


def _augment(cfg: RunConfig, train_path: Path) -> dict[str, Any]:
    """Appends question variants of the training records to train.jsonl (atomically); returns the counts."""
    from data_tools.augment import augment_records, endpoint_writer, summary
    from data_tools.jsonio import loads
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
