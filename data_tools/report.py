"""What the data stage reports: counts per source file, the table it prints, the split warnings.

    tunebot data examples/acme-demo.yaml     # prints summary_table()
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from data_tools.records import reason_name
from data_tools.split import SPLITS
from tunebot.config import DataConfig


@dataclass
class SourceReport:
    """Counts for one input file: rows_in == kept + rejected."""

    file: str
    unit: str = "row"
    rows_in: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)
    extra: Counter = field(default_factory=Counter)

    def add(self, counts: dict[str, Any]) -> None:
        """Adds a shard's counts (what clean_shard returned)."""
        self.rows_in += counts["rows_in"]
        self.kept += counts["kept"]
        self.rejected.update(counts["rejected"])
        self.pii.update(counts["pii"])
        self.extra.update(counts["extra"])

    def reject(self, reason: str) -> None:
        """Moves one kept record to the rejected, under the reason's short name."""
        self.kept -= 1
        self.rejected[reason_name(reason)] += 1

    @property
    def duplicates(self) -> int:
        """Exact and near duplicates rejected from this file."""
        return self.rejected["duplicate"] + self.rejected["near-duplicate"]

    def as_json(self) -> dict[str, Any]:
        """Returns the report entry written to report.json."""
        extra = {key: self.extra[key]
                 for key in ("conversations", "messages", "skipped_messages", "unanswered_messages")}
        return {
            "file": self.file, "unit": self.unit, "rows_in": self.rows_in, "kept": self.kept,
            "rejected": sum(self.rejected.values()), "rejected_by_reason": dict(self.rejected),
            "duplicates": self.duplicates, "pii_found": dict(self.pii), **(extra if self.unit != "row" else {}),
        }


def summary_table(reports: list[SourceReport], splits: dict[str, int]) -> str:
    """Returns the table `tunebot data` prints: one line per source, then the split sizes."""
    lines = [
        f"{'source':<40} {'unit':<10} {'rows':>7} {'kept':>7} {'rejected':>8} {'dupes':>6} {'pii':>5}  rejected by "
        f"reason"]
    for report in reports:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in report.rejected.most_common()) or "-"
        name = report.file if len(report.file) <= 40 else "…" + report.file[-39:]
        lines.append(
            f"{name:<40} {report.unit:<10} {report.rows_in:>7} {report.kept:>7} {sum(report.rejected.values()):>8} "
            f"{report.duplicates:>6} {sum(report.pii.values()):>5}  {reasons}"
        )
    lines.append("split: " + ", ".join(f"{name} {count}" for name, count in splits.items()))
    return "\n".join(lines)


def split_warnings(chosen: np.ndarray, cfg: DataConfig, largest: int) -> list[str]:
    """Says when whole clusters kept val or test far below their configured share."""
    warnings = []
    for number, name in ((1, "val"), (2, "test")):
        wanted = getattr(cfg.split, name)
        share = float((chosen == number).mean()) if len(chosen) else 0.0
        if wanted > 0 and share < wanted / 2:
            warnings.append(
                f"{name} holds {share:.1%} of the records, not {wanted:.0%}: similar questions stay together and "
                f"the largest cluster has {largest} records; raise data.leakage_threshold (now "
                f"{cfg.leakage_threshold}) if these are not paraphrases of one question"
            )
    return warnings


def statistics(columns: dict[str, np.ndarray], kept: np.ndarray) -> dict[str, Any]:
    """Returns language counts and length statistics of the kept records."""
    ja = columns["ja"][kept]
    stats: dict[str, Any] = {"langs": {lang: count for lang, count in (("en", int((~ja).sum())), ("ja", int(ja.sum())))
                                       if count}}
    for name in ("question_chars", "answer_chars"):
        values = columns[name][kept]
        stats[name] = {"mean": round(float(values.mean()), 1), "max": int(values.max())} if len(values) else {}
    return stats


def split_counts(split: np.ndarray) -> dict[str, int]:
    """Returns the number of records in each split."""
    return {name: int((split == number).sum()) for number, name in enumerate(SPLITS)}
