"""The data stage end to end: read sources, build records, split, write files, print a summary.

    tunebot data examples/acme.yaml
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from data_tools.readers import DataError
from data_tools.build import SourceReport, build_records
from data_tools.dedupe import cluster_ids, near_duplicates, similar_pairs
from data_tools.split import split_records
from tunebot.config import RunConfig
from tunebot.prompts import answer_of, question_of
from tunebot.rundir import RunDir, atomic_write_json, atomic_write_jsonl


def _length_stats(records: list[dict]) -> dict[str, Any]:
    if not records:
        return {}
    questions = [len(question_of(record)) for record in records]
    answers = [len(answer_of(record)) for record in records]
    return {
        "question_chars": {"mean": round(statistics.mean(questions), 1), "max": max(questions)},
        "answer_chars": {"mean": round(statistics.mean(answers), 1), "max": max(answers)},
    }


def summary_table(reports: list[SourceReport], parts: dict[str, list[dict]]) -> str:
    """Returns the table `tunebot data` prints: one line per source, then the split sizes."""
    lines = [f"{'source':<40} {'rows':>6} {'kept':>6} {'rejected':>8} {'pii':>5}  reasons"]
    for report in reports:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in report.rejected.most_common()) or "-"
        name = report.file if len(report.file) <= 40 else "…" + report.file[-39:]
        found = sum(report.pii.values())
        lines.append(f"{name:<40} {report.rows_in:>6} {report.kept:>6} {sum(report.rejected.values()):>8} {found:>5}  {reasons}")
    lines.append("split: " + ", ".join(f"{name} {len(rows)}" for name, rows in parts.items()))
    return "\n".join(lines)


def drop_near_duplicates(
    records: list[dict], rejects: list[dict], reports: list[SourceReport], duplicates: list[tuple[int, int, float]]
) -> set[int]:
    """Moves the later record of each near-duplicate pair to the rejects; returns their indices."""
    by_file = {report.file: report for report in reports}
    dropped: set[int] = set()
    for first, second, similarity in duplicates:
        if second in dropped:
            continue
        dropped.add(second)
        record = records[second]
        reason = f"near-duplicate (similarity {similarity:.2f} to {records[first]['source']})"
        rejects.append({"source": record["source"], "reason": reason, "field": None,
                        "row": {"question": question_of(record), "answer": answer_of(record)}})
        report = by_file[record["source"].rsplit(":", 1)[0]]
        report.kept -= 1
        report.rejected["near-duplicate"] += 1
    return dropped


def dedupe_and_group(
    records: list[dict], rejects: list[dict], reports: list[SourceReport], cfg: RunConfig
) -> tuple[list[dict], list[int], list[dict]]:
    """Drops near-duplicates and clusters similar questions; returns (records, cluster ids, conflicts).

    One MinHash pass at the lower of the two thresholds serves both uses.
    """
    questions = [question_of(record) for record in records]
    answers = [answer_of(record) for record in records]
    duplicate_at, leakage_at = cfg.data.near_duplicate_threshold, cfg.data.leakage_threshold
    pairs = similar_pairs(questions, min(duplicate_at, leakage_at))
    duplicates, conflicts = near_duplicates(questions, answers, duplicate_at, pairs)
    dropped = drop_near_duplicates(records, rejects, reports, duplicates)
    clusters = cluster_ids(len(records), [pair for pair in pairs if pair[2] >= leakage_at])
    kept = [index for index in range(len(records)) if index not in dropped]
    conflict_rows = [
        {"sources": [records[a]["source"], records[b]["source"]], "question_similarity": similarity,
         "answers": [answers[a], answers[b]]}
        for a, b, similarity in conflicts
    ]
    return [records[index] for index in kept], [clusters[index] for index in kept], conflict_rows


def run_data_stage(cfg: RunConfig, run_dir: RunDir) -> None:
    """Writes data/{train,val,test}.jsonl, rejects.jsonl and report.json, then DONE."""
    out = run_dir.start("data")
    records, rejects, reports = build_records(cfg.data, cfg.system_prompt)
    if not records:
        raise DataError(f"no usable records in {[r.file for r in reports]}: see {out / 'rejects.jsonl'}")
    records, groups, conflicts = dedupe_and_group(records, rejects, reports, cfg)
    split = cfg.data.split
    parts = split_records(records, split.val, split.test, split.seed, groups)
    for name, rows in parts.items():
        atomic_write_jsonl(out / f"{name}.jsonl", rows)
    atomic_write_jsonl(out / "rejects.jsonl", rejects)
    report = {
        "sources": [report.as_json() for report in reports],
        "rows_in": sum(report.rows_in for report in reports),
        "kept": len(records),
        "rejected": len(rejects),
        "splits": {name: len(rows) for name, rows in parts.items()},
        "langs": dict(Counter(record["lang"] for record in records)),
        "conflicting_answers": conflicts,
        "leakage_clusters": sum(1 for size in Counter(groups).values() if size > 1),
        "pii": {"mode": cfg.data.pii, "found": dict(sum((report.pii for report in reports), Counter()))},
        "lengths": _length_stats(records),
    }
    atomic_write_json(out / "report.json", report)
    print(summary_table(reports, parts))
    run_dir.mark_done("data", cfg.fingerprint("data"), records=len(records))
