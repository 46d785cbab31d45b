"""Writes a deterministic, intent-stratified subset of the Bitext customer-support CSV.

    python examples/bitext_subset.py --rows 560 --out runs/bitext-subset.csv
    tunebot run examples/bitext-eval.yaml          # ~400 train / 56 val / 100 test of it

The dataset (CDLA-Sharing-1.0, see ../shared/datasets/bitext-customer-support/NOTICE.md) is read
from ../shared and never copied into this repository; the subset goes wherever --out says
(runs/ is ignored by git). Rows are taken round-robin over intents in file order, so every
intent is represented and the same --rows always gives the same file.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets" / "bitext-customer-support" / "customer_support_training.csv"


def subset(rows: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    """Takes `count` rows round-robin over the `intent` column, keeping file order within an intent."""
    by_intent: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_intent[row["intent"]].append(row)
    chosen: list[dict[str, str]] = []
    depth = 0
    while len(chosen) < count and any(depth < len(group) for group in by_intent.values()):
        for intent in sorted(by_intent):
            if depth < len(by_intent[intent]) and len(chosen) < count:
                chosen.append(by_intent[intent][depth])
        depth += 1
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--rows", type=int, default=560)
    parser.add_argument("--out", type=Path, default=Path("runs/bitext-subset.csv"))
    args = parser.parse_args()
    if not args.source.is_file():
        print(f"bitext_subset: {args.source} not found: pass --source PATH", file=sys.stderr)
        return 2
    with open(args.source, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    chosen = subset(rows, args.rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen)
    os.replace(tmp, args.out)
    print(
        f"bitext_subset: {len(chosen)} of {len(rows)} rows ({len({r['intent'] for r in chosen})} intents) -> "
        f"{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
