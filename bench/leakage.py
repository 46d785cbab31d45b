"""Benchmark of the split's leakage: held-out questions with a similar question in train, by brute force.

    .venv/bin/python bench/leakage.py                      # Bitext (../shared) and 10,000 generated rows, ~15 s
    .venv/bin/python bench/leakage.py --rows 0 --json bench/results/leakage.json

The data stage puts questions at least `data.leakage_threshold` (0.6) similar into one split, and it
finds them with LSH, which misses some pairs right at the threshold. This runs `tunebot data` on each
set and then compares every held-out (val and test) question with every train question by their
exact character-3-gram Jaccard similarity (the stage's own folding and 3-grams, whole sets), so it
counts what the stage's clusters missed: held-out questions with a train question at least 0.6
(leakage) or 0.9 (near-duplicate) similar. Sets: bitext = ../shared's Bitext support data (real
questions, 4,514 rows); generated = bench/data_tools.py's templated FAQ rows.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BITEXT = ROOT.parent / "shared" / "datasets" / "bitext-customer-support" / "customer_support_training.csv"


def bench_data_tools() -> Any:
    """Returns bench/data_tools.py as a module: its row generator and its run config."""
    spec = importlib.util.spec_from_file_location("bench_data_tools", ROOT / "bench" / "data_tools.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def run_stage(folder: Path, files: list[Path]) -> Path:
    """Runs `tunebot data` on the files with the data bench's config; returns its data folder."""
    from tunebot.cli import main

    config = bench_data_tools().write_config(folder, files)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # its summary table: not ours to print
        code = main(["data", str(config)])
    if code != 0:
        raise SystemExit(f"the data stage failed on {files}")
    return folder / "runs" / "bench" / "data"


def nearest_in_train(data: Path) -> tuple[list[str], list[float], list[str]]:
    """Returns each held-out question, its highest similarity to a train question, and that question."""
    import numpy as np
    from scipy.sparse import csr_matrix

    from data_tools.matching import gram_sets, normalize_for_matching
    from tunebot.prompts import question_of

    def questions(name: str) -> list[str]:
        return [question_of(json.loads(line)) for line in (data / f"{name}.jsonl").read_bytes().splitlines()]

    train, held = questions("train"), questions("val") + questions("test")
    values, offsets = gram_sets([normalize_for_matching(text) for text in train + held], k=1 << 30)
    sizes = np.diff(offsets)
    columns = np.unique(values, return_inverse=True)[1]
    grams = csr_matrix((np.ones(len(values), dtype=np.float32), columns, offsets),
                       shape=(len(sizes), columns.max() + 1))
    shared = (grams[len(train):] @ grams[: len(train)].T).toarray()  # held-out x train: the grams in common
    union = sizes[len(train):, None] + sizes[None, : len(train)] - shared
    similarity = shared / np.maximum(union, 1)
    best = similarity.argmax(axis=1)
    return held, similarity.max(axis=1).tolist(), [train[index] for index in best]


def measure(name: str, files: list[Path]) -> dict[str, Any]:
    """Runs the stage on one set and counts its held-out questions with a similar question in train."""
    with tempfile.TemporaryDirectory(prefix="tunebot-leak-") as folder:
        held, best, nearest = nearest_in_train(run_stage(Path(folder), files))
    leaked = sorted(range(len(held)), key=lambda index: -best[index])
    at = {threshold: sum(value >= threshold for value in best) for threshold in (0.6, 0.9)}
    worst = leaked[0] if leaked else None
    return {"set": name, "held_out": len(held), "leak_0.6": at[0.6], "leak_0.9": at[0.9],
            "highest": round(best[worst], 3) if worst is not None else None,
            "example": [held[worst], nearest[worst]] if worst is not None and best[worst] >= 0.6 else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="generated rows (0: none)")
    parser.add_argument("--bitext", type=Path, default=BITEXT, help="the Bitext CSV (skipped if missing)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="the same run: it takes well under a minute")
    args = parser.parse_args()
    results = []
    if args.bitext.is_file():
        results.append(measure("bitext", [args.bitext]))
    if args.rows:
        with tempfile.TemporaryDirectory(prefix="tunebot-leak-rows-") as folder:
            results.append(measure(f"generated {args.rows:,}", bench_data_tools().generate(args.rows, Path(folder))))
    print(f"{'set':>18} {'held out':>8} {'twin >= 0.6 in train':>21} {'twin >= 0.9':>11} {'highest':>7}")
    for r in results:
        print(f"{r['set']:>18} {r['held_out']:>8,} {r['leak_0.6']:>21,} {r['leak_0.9']:>11,} {r['highest']!s:>7}")
        if r["example"]:
            print(f"{'':>18} e.g. held out {r['example'][0]!r}, train {r['example'][1]!r}")
    if args.json:
        args.json.write_text(json.dumps({"date": str(date.today()), "results": results}, ensure_ascii=False, indent=1)
                             + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
