"""Benchmark of the retriever: recall@1 and recall@3 of each variant on held-out and novel questions.

    .venv/bin/python bench/retrieval.py                      # ~1 minute on the 2-core CPU
    .venv/bin/python bench/retrieval.py --json bench/results/retrieval.json

Question sets (a hit is a retrieved pair with the question's answer: the same answer text for
the ACME FAQ, the same intent for Bitext, whose replies are all worded anew):
  demo-heldout  the demo's val + test questions (paraphrases of FAQ entries) against the train split;
  demo-novel    examples/data/acme_questions.jsonl (48 wordings the FAQ never uses, written before
                the lexicon was) against every kept record, as `tunebot serve` searches;
  bitext        a 560-row intent-stratified Bitext subset (../shared): its test split against train.
Variants: words (lemmas / stemmed words only), + lexicon (concept tokens), + char n-grams, and
questions and answers as two BM25 fields with the answers weighted a (else one field).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import tempfile
import time
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
BITEXT = ROOT.parent / "shared" / "datasets" / "bitext-customer-support" / "customer_support_training.csv"
VARIANTS = {  # (retrieval.synonyms, gram_weight, answer_weight)
    "words (one field)": ("none", 0.0, None),
    "words+lexicon": ("builtin", 0.0, None),
    "words+lexicon+grams": ("builtin", 0.5, None),
    "lexicon, fields a=0.3": ("builtin", 0.0, 0.3),
    "lexicon, fields a=0.5 (default)": ("builtin", 0.0, 0.5),
    "lexicon, fields a=1": ("builtin", 0.0, 1.0),
    "words, fields a=0.5": ("none", 0.0, 0.5),
    "lexicon+grams, fields a=0.5": ("builtin", 0.5, 0.5),
}


def _data(config: Path, overrides: list[str], folder: Path) -> dict[str, list[dict]]:
    """Runs the data stage of a config into `folder`; returns its splits."""
    from tunebot.config import load_config
    from tunebot.pipeline import open_run_dir
    from tunebot.rundir import read_jsonl
    import data_tools

    cfg = load_config(config, [f"runs_dir={folder}", *overrides])
    run_dir = open_run_dir(cfg)
    data_tools.run(cfg, run_dir)
    return {split: list(read_jsonl(run_dir.path("data", f"{split}.jsonl"))) for split in ("train", "val", "test")}


def _sets(folder: Path) -> dict[str, tuple[list[dict], list[tuple[str, str]], dict[str, str]]]:
    """{name: (index records, [(question, wanted key)], {record id: key})}."""
    from tunebot.prompts import answer_of, question_of

    demo = _data(ROOT / "examples" / "acme-demo.yaml", [], folder)
    key = {record["id"]: answer_of(record) for split in demo.values() for record in split}
    held = [(question_of(r), answer_of(r)) for r in demo["val"] + demo["test"]]
    everything = demo["train"] + demo["val"] + demo["test"]
    by_question = {unicodedata.normalize("NFKC", question_of(record)): answer_of(record) for record in everything}
    novel = []
    with open(ROOT / "examples" / "data" / "acme_questions.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            novel.append((row["question"], by_question[unicodedata.normalize("NFKC", row["same_as"])]))
    sets = {"demo-heldout": (demo["train"], held, key), "demo-novel": (everything, novel, key)}
    if BITEXT.is_file():
        sets["bitext"] = _bitext(folder)
    return sets


def _bitext(folder: Path) -> tuple[list[dict], list[tuple[str, str]], dict[str, str]]:
    from bitext_subset import subset

    from tunebot.prompts import question_of

    with open(BITEXT, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    chosen = subset(rows, 560)
    source = folder / "bitext-subset.csv"
    with open(source, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen)
    splits = _data(ROOT / "examples" / "bitext-eval.yaml", [f"data.sources.0.path={source}"], folder)
    intent, start = {}, 2  # the line each row starts on (responses hold line breaks)
    with open(source, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            intent[start] = row["intent"]
            start = reader.line_num + 1
    key = {r["id"]: intent[int(r["source"].rsplit(":", 1)[1])] for split in splits.values() for r in split}
    return splits["train"], [(question_of(r), key[r["id"]]) for r in splits["test"]], key


def measure(records: list[dict], questions: list[tuple[str, str]], key: dict[str, str], synonyms: str,
            gram_weight: float, answer_weight: float | None) -> dict[str, Any]:
    """Recall@1/@3 (0-100), overall and per language, and the median search time of one variant."""
    from tunebot.config_eval import RetrievalConfig
    from tunebot.retrieval import build_index
    from tunebot.text import detect_lang

    cfg = RetrievalConfig(synonyms=synonyms, gram_weight=gram_weight, answer_weight=answer_weight)
    index = build_index(records, cfg)
    rows, times = [], []
    for question, wanted in questions:
        began = time.perf_counter()
        hits = index.search(question, 3)
        times.append(time.perf_counter() - began)
        keys = [key[hit.record_id] for hit in hits]
        rows.append((detect_lang(question), keys[:1] == [wanted], wanted in keys))
    found = {"n": len(rows), "search_ms_median": round(1000 * sorted(times)[len(times) // 2], 2)}
    for lang in ["all", *sorted({row[0] for row in rows})]:
        chosen = [row for row in rows if lang in ("all", row[0])]
        found[lang] = {"n": len(chosen), "recall_at_1": round(100 * sum(r[1] for r in chosen) / len(chosen), 1),
                       "recall_at_3": round(100 * sum(r[2] for r in chosen) / len(chosen), 1)}
    return found


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The printed table: one row per question set and variant."""
    lines = [f"{'set':<14}{'variant':<34}{'n':>4}{'R@1':>7}{'R@3':>7}{'R@1 ja':>8}{'R@1 en':>8}{'ms':>7}"]
    for name, variants in results.items():
        for variant, found in variants.items():
            ja, en = found.get("ja", {}).get("recall_at_1"), found.get("en", {}).get("recall_at_1")
            lines.append(f"{name:<14}{variant:<34}{found['n']:>4}{found['all']['recall_at_1']:>7.1f}"
                         f"{found['all']['recall_at_3']:>7.1f}{'-' if ja is None else f'{ja:.1f}':>8}"
                         f"{'-' if en is None else f'{en:.1f}':>8}{found['search_ms_median']:>7.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sets = _sets(Path(folder))
        results = {name: {variant: measure(records, questions, key, *settings)
                          for variant, settings in VARIANTS.items()}
                   for name, (records, questions, key) in sets.items()}
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": date.today().isoformat(), "machine": platform.machine(),
                                         "results": results}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
