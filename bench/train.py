"""Benchmark of training speed and memory: naive LoRA vs our defaults (CPU), LoRA bf16 vs QLoRA (GPU).

    .venv/bin/python bench/train.py --quick                    # CPU, default model (under 3 minutes)
    .venv/bin/python bench/train.py --json bench/results/train.json
    python3 bench/train.py --gpu --quick                       # on a CUDA machine (see ../shared/recipes/gpu.md)

CPU: the bundled SmolLM2-135M-Instruct trains LoRA on real support pairs (the Bitext set from
../shared when present, else the ACME sample) with
  naive    every sequence padded to sft.max_length, random batches, no packing;
  default  tunebot's defaults (length-grouped batches padded to the longest in the batch);
  packing  sft.packing=true (best-fit packing, padding-free, no cross-example attention).
GPU: a Llama model of the Llama-3.2-1B shape (random weights, the default tokenizer's vocabulary)
trains LoRA in bf16 and QLoRA (4-bit NF4) on the same data. Each variant runs in a fresh child
process; the first step is warm-up and not timed. tokens/s counts real (non-padding) tokens.
Targets (issue 4): default >= 1.5x naive tokens/s; QLoRA peak GPU memory <= 45% of LoRA bf16.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BITEXT = ROOT.parent / "shared" / "datasets" / "bitext-customer-support" / "customer_support_training.csv"
# Llama-3.2-1B's shape; the vocabulary is the default tokenizer's so real text can be fed.
GPU_SHAPE = {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
             "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 4096, "rope_theta": 500000.0,
             "tie_word_embeddings": True}
CPU_VARIANTS = {"naive": ["sft.group_by_length=false"], "default": [], "packing": ["sft.packing=true"]}
GPU_VARIANTS = {"lora-bf16": ["sft.method=lora"], "qlora": ["sft.method=qlora"]}
SPEED_TARGET = 1.5
MEMORY_TARGET = 0.45


class CountingCollator:
    """Wraps the trainer's collator and counts the real tokens of every batch it builds."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.tokens = inner, 0

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.inner(examples)
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())  # padding-free: all real
        return batch


def _timing_callback(counter: CountingCollator, marks: list[tuple[float, int]]) -> Any:
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks.append((time.perf_counter(), counter.tokens))

    return StepTimes()


def _peak_memory_mb(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(run_dir: Path, variant: list[str], steps: int, naive: bool) -> dict[str, Any]:
    """Trains `steps` + 1 steps of one variant and returns its figures (runs in its own process)."""
    from sft.train import build_trainer
    from tunebot.config import load_config
    from tunebot.models import compute_device
    from tunebot.rundir import RunDir

    cfg = load_config(run_dir / "config.yaml", [f"sft.max_steps={steps + 1}", "sft.logging_steps=1000", *variant])
    trainer = build_trainer(cfg, RunDir(run_dir), out=Path(tempfile.mkdtemp()), save=False)
    trainer.eval_dataset = None  # the end-of-run evaluation is not training speed
    trainer.args.eval_strategy = "no"
    if naive:  # pad every batch to the full max_length, as a naive setup does
        trainer.data_collator.pad_to_multiple_of = cfg.sft.max_length
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    marks: list[tuple[float, int]] = []
    trainer.add_callback(_timing_callback(counter, marks))
    trainer.train()
    (start, tokens0), (end, tokens1) = marks[0], marks[-1]
    device = compute_device()
    return {"steps": len(marks) - 1, "step_s": (end - start) / (len(marks) - 1), "tokens_per_s": (tokens1 - tokens0) / (end - start),
            "tokens_per_step": (tokens1 - tokens0) / (len(marks) - 1), "peak_mb": _peak_memory_mb(device), "device": device}


def _run_child(run_dir: Path, name: str, variant: list[str], steps: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(run_dir), "--steps", str(steps), "--variant", name, "--",
               *variant]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _sources() -> tuple[list[dict[str, Any]], dict[str, str], str]:
    """Returns (data sources, pii patterns, description): Bitext when present, else the ACME sample."""
    if BITEXT.is_file():
        return [{"path": str(BITEXT)}], {"ORDER_ID": "(?<![0-9])[0-9]{8,16}(?![0-9])"}, "Bitext customer support (4,514 pairs)"
    faqs = [str(path) for path in sorted((ROOT / "examples" / "data").glob("acme_faq_*.csv"))]
    return [{"path": path} for path in faqs], {}, "ACME sample FAQ (en+ja)"


def prepare(folder: Path, model: str, batch_size: int) -> tuple[Path, str]:
    """Writes a run config over the benchmark data, builds its splits and returns (run dir, data name)."""
    from data_tools.stage import run_data_stage
    from tunebot.config import parse_config
    from tunebot.pipeline import open_run_dir

    sources, patterns, described = _sources()
    cfg = parse_config({
        "name": "bench-train", "model": model, "runs_dir": str(folder),
        "system_prompt": "You are a customer-support assistant. Answer helpfully and concisely.",
        "data": {"sources": sources, "pii_patterns": patterns, "split": {"val": 0.05, "test": 0.05, "seed": 0}},
        "sft": {"batch_size": batch_size, "max_length": 512, "seed": 0},
    })
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    return run_dir.root, described


def build_gpu_model(folder: Path, tokenizer_dir: Path) -> str:
    """Saves a Llama-3.2-1B-shaped model with random bf16 weights and the given tokenizer; returns its path."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **GPU_SHAPE)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    target = folder / "llama-1b-shape"
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return str(target)


def table(rows: dict[str, dict[str, Any]]) -> str:
    """Renders the figures of each variant as a fixed-width table."""
    lines = [f"{'variant':<10} {'steps':>5} {'s/step':>8} {'tokens/step':>11} {'tokens/s':>9} {'peak MB':>8}"]
    for name, row in rows.items():
        lines.append(f"{name:<10} {row['steps']:>5} {row['step_s']:>8.2f} {row['tokens_per_step']:>11.0f} "
                     f"{row['tokens_per_s']:>9.1f} {row['peak_mb']:>8.0f}")
    return "\n".join(lines)


def verdicts(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Returns the ratios the targets are about, with pass/fail."""
    found: dict[str, Any] = {}
    if "naive" in rows and "default" in rows:
        speedup = rows["default"]["tokens_per_s"] / rows["naive"]["tokens_per_s"]
        found["default_over_naive_tokens_per_s"] = {"value": round(speedup, 2), "target": f">= {SPEED_TARGET}", "met": speedup >= SPEED_TARGET}
    if "lora-bf16" in rows and "qlora" in rows:
        share = rows["qlora"]["peak_mb"] / rows["lora-bf16"]["peak_mb"]
        found["qlora_over_lora_peak_memory"] = {"value": round(share, 3), "target": f"<= {MEMORY_TARGET}", "met": share <= MEMORY_TARGET}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, naive and default only (under 3 minutes on CPU)")
    parser.add_argument("--gpu", action="store_true", help="LoRA bf16 vs QLoRA on a CUDA GPU (Llama-3.2-1B shape)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant")
    parser.add_argument("--tokenizer", default=None, help="--gpu: tokenizer folder (default: the bundled model's)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.overrides, args.steps, args.variant == "naive")))
        return 0
    steps = args.steps or ((2 if args.quick else 8) if not args.gpu else (5 if args.quick else 20))
    with tempfile.TemporaryDirectory() as scratch:
        rows, described, model = _measure(Path(scratch), args, steps)
    print(f"\ntraining benchmark: {described}, model {model}, {steps} timed steps per variant, "
          f"{platform.machine()} {os.cpu_count()} cores\n")
    print(table(rows))
    found = verdicts(rows)
    for name, verdict in found.items():
        print(f"{name}: {verdict['value']} (target {verdict['target']}: {'met' if verdict['met'] else 'NOT met'})")
    if args.json:
        document = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                    "data": described, "model": model, "steps": steps, "variants": rows, "targets": found}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def _measure(scratch: Path, args: argparse.Namespace, steps: int) -> tuple[dict[str, Any], str, str]:
    from tunebot.models import ensure_default_model

    if args.gpu:
        model = build_gpu_model(scratch, Path(args.tokenizer) if args.tokenizer else ensure_default_model())
        variants, shown = GPU_VARIANTS, "Llama-3.2-1B shape (random weights, bf16)"
    else:
        model, variants, shown = str(ensure_default_model()), CPU_VARIANTS, "SmolLM2-135M-Instruct (float32)"
    run_dir, described = prepare(scratch, model, batch_size=4 if not args.gpu else 8)
    if args.quick and not args.gpu:  # packing is not part of a target ratio and the slowest on CPU
        variants = {name: variant for name, variant in variants.items() if name != "packing"}
    rows = {}
    for name, variant in variants.items():
        print(f"bench: {name} ...", flush=True)
        rows[name] = _run_child(run_dir, name, variant, steps)
    return rows, described, shown


if __name__ == "__main__":
    sys.exit(main())
