"""What the data stage says when no row of the sources survived: the top reasons, each with where it first happened.

    tunebot data CONFIG        # "all 3 rows were rejected; top reasons: 2 x empty answer (first: faq.jsonl:1 ...)"
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from data_tools.jsonio import loads


def all_rejected(reports: list[Any], rejects: Path, shown: int = 5) -> str:
    """The error when no row survived: the top reasons, each with the count and its first file:line."""
    reasons: Counter = Counter()
    for report in reports:
        reasons.update(report.rejected)
    first: dict[str, str] = {}
    with open(rejects, "rb") as handle:
        for number, line in enumerate(handle):
            if number > 100_000 or len(first) == len(reasons):
                break
            entry = loads(line)
            first.setdefault(re.split(r" \(|:", entry["reason"], maxsplit=1)[0],
                             f"{entry['source']}: {entry['reason'][:160]}")
    lines = [f"  {count} x {reason} (first: {first.get(reason, '?')})" for reason, count in reasons.most_common(shown)]
    files = ", ".join(report.file for report in reports)
    return (f"no usable records in {files}: all {sum(reasons.values())} rows were rejected; top reasons:\n"
            + "\n".join(lines) + f"\nevery rejected row and its reason: {rejects}")
