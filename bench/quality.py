"""Benchmark of training recipes by right answers: answer_match per language, and wall time, per recipe.

    .venv/bin/python bench/quality.py --sets demo                   # ~25 min on the 2-core CPU
    .venv/bin/python bench/quality.py --sets demo,bitext --json bench/results/quality.json

Each recipe is a full `tunebot run` (data -> train -> eval -> merge) in a fresh process on the same
data, with the same seed, scored by the eval stage itself: answer_match (the reply states the
reference's facts and is closer to it than to any other answer) per language, on the test split
and, for the demo, on examples/data/acme_questions.jsonl (48 wordings the FAQ never uses). The
systems are retrieval (no model: the floor), tuned and tuned_rag; base and rag do not depend on
the recipe and are left out to save time.
Sets: demo = examples/acme-demo.yaml; bitext = examples/bitext-eval.yaml on a 560-row
intent-stratified subset of ../shared's Bitext (answers of the same intent count as the same).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
BITEXT = ROOT.parent / "shared" / "datasets" / "bitext-customer-support" / "customer_support_training.csv"
SYSTEMS = "eval.systems=[retrieval,tuned,tuned_rag]"
RECIPES = {  # name -> --set overrides on top of the set's config
    "plain": [],
    "grounded": ["sft.context=retrieved"],
    "grounded-k1": ["sft.context=retrieved", "retrieval.k=1"],
    "plain-5ep": ["sft.epochs=5"],
    "augmented": ["data.augment.variants=2"],
    "augmented+grounded": ["data.augment.variants=2", "sft.context=retrieved"],
}
SETS = {"demo": ROOT / "examples" / "acme-demo.yaml", "bitext": ROOT / "examples" / "bitext-eval.yaml"}


def _bitext_source(folder: Path) -> Path:
    from bitext_subset import subset

    with open(BITEXT, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    path = folder / "bitext-subset.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(subset(rows, 560))
    return path


def run_recipe(name: str, config: Path, overrides: list[str], folder: Path) -> dict[str, Any]:
    """One `tunebot run` in a fresh process; returns its right-answer rates and stage times."""
    command = [sys.executable, "-m", "tunebot", "run", str(config), "--set", f"runs_dir={folder}",
               "--set", f"name={name}", "--set", SYSTEMS, *(part for item in overrides for part in ("--set", item))]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:], "wall_s": round(wall, 1)}
    scores = json.loads((folder / name / "eval" / "scores.json").read_text(encoding="utf-8"))
    sft = json.loads((folder / name / "sft" / "DONE").read_text(encoding="utf-8"))
    found: dict[str, Any] = {"wall_s": round(wall, 1), "train_s": sft.get("seconds"),
                             "max_length": sft.get("examples", {}).get("max_length"),
                             "recommended": scores["recommendation"]["system"]}
    for part, section in (("test", scores), ("questions", scores.get("questions"))):
        if not section:
            continue
        for system, entry in section["systems"].items():
            by_lang = entry.get("by_lang") or {next(iter(section["langs"])): entry["metrics"]}
            found[f"{part}:{system}"] = {lang: metrics.get("answer_match", {}).get("mean") for lang, metrics in
                                         by_lang.items()}
    return found


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One row per set, recipe and system: right answers per language on test and questions, times."""
    lines = [f"{'set':<8}{'recipe':<13}{'system':<11}{'test ja':>8}{'test en':>8}{'own ja':>8}{'own en':>8}"
             f"{'train s':>9}{'wall s':>8}  recommended"]
    cell = lambda value: "-" if value is None else f"{value:.1f}"  # noqa: E731
    for set_name, recipes in results.items():
        for recipe, found in recipes.items():
            if "error" in found:
                lines.append(f"{set_name:<8}{recipe:<13}failed: {found['error']}")
                continue
            for system in ("retrieval", "tuned", "tuned_rag"):
                test, own = found.get(f"test:{system}", {}), found.get(f"questions:{system}", {})
                lines.append(f"{set_name:<8}{recipe:<13}{system:<11}{cell(test.get('ja')):>8}{cell(test.get('en')):>8}"
                             f"{cell(own.get('ja')):>8}{cell(own.get('en')):>8}{cell(found['train_s']):>9}"
                             f"{found['wall_s']:>8.0f}  {found['recommended']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="demo", help="comma-separated: demo, bitext")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated of {', '.join(RECIPES)}")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for set_name in args.sets.split(","):
            extra = [f"data.sources.0.path={_bitext_source(folder)}"] if set_name == "bitext" else []
            for recipe in args.recipes.split(","):
                found = run_recipe(f"{set_name}-{recipe}", SETS[set_name], extra + RECIPES[recipe], folder)
                results.setdefault(set_name, {})[recipe] = found
                print(f"quality: {set_name} {recipe}: {json.dumps(found)}", flush=True)
                if args.json:  # written after every recipe: a long run keeps what it measured
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps({"date": date.today().isoformat(), "machine": platform.machine(),
                                                     "results": results}, indent=1) + "\n", encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
