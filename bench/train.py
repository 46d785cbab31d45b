"""Benchmark of training speed and memory: naive LoRA vs our defaults (CPU), LoRA bf16 vs QLoRA (GPU).

    .venv/bin/python bench/train.py --quick                    # CPU, default model (under 3 minutes)
    .venv/bin/python bench/train.py --json bench/results/train.json
    python3 bench/train.py --gpu --quick                       # on a CUDA machine (see ../shared/recipes/gpu.md)

CPU: the bundled SmolLM2-135M-Instruct trains LoRA on real support pairs (the Bitext set from
../shared when present, else the ACME sample) with
  naive    every sequence padded to sft.max_length, random batches, no packing, TRL's own loss
           (which computes every position, padding included);
  default  tunebot's defaults (length-grouped batches; on CPU the loss leaves the padding out);
  packing  sft.packing=true (best-fit packing, padding-free, no cross-example attention).
The comparison that counts is against the tools a user would pick instead: --peer (bench/train_peer.py).
GPU: a Llama model of the Llama-3.2-1B shape (random weights, the default tokenizer's vocabulary)
trains naive LoRA (bf16, padded to max_length, random batches), LoRA bf16 with our defaults and
QLoRA (4-bit NF4) on the same data. Each variant runs in a fresh child
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
# Llama-3.2-1B's and Llama-3.1-8B's shapes; the vocabulary is the default tokenizer's so real text can be fed.
GPU_SHAPES = {
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 4096, "rope_theta": 500000.0,
           "tie_word_embeddings": True},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 4096, "rope_theta": 500000.0,
           "tie_word_embeddings": False},
}
SHAPE_NAMES = {"1b": "Llama-3.2-1B shape", "8b": "Llama-3.1-8B shape"}
CPU_VARIANTS = {"naive": ["sft.group_by_length=false"], "default": [], "packing": ["sft.packing=true"]}
CKPT = "sft.gradient_checkpointing=true"
GPU_VARIANTS = {"naive-bf16": ["sft.method=lora", "sft.group_by_length=false"], "lora-bf16": ["sft.method=lora"],
                "qlora": ["sft.method=qlora"], "lora-bf16-ckpt": ["sft.method=lora", CKPT],
                "qlora-ckpt": ["sft.method=qlora", CKPT],
                # options chosen by measurement (issue 20): Liger's layer kernels, and padding-free packing
                "lora-bf16-liger": ["sft.method=lora", "sft.liger=true"],
                "qlora-ckpt-liger": ["sft.method=qlora", CKPT, "sft.liger=true"],
                "lora-bf16-packing": ["sft.method=lora", "sft.packing=true"]}
WARMUP_STEPS = {"cpu": 1, "cuda": 5}
SPEED_TARGET = 1.5
MEMORY_TARGET = 0.45


class CountingCollator:
    """Wraps the trainer's collator and counts the real tokens of every batch it builds."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.tokens = inner, 0

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.inner(examples)
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else int(
            batch["input_ids"].numel())  # padding-free: all real
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
    """Trains warm-up + `steps` steps of one variant and returns its figures (runs in its own process).

    Warm-up: 1 step on CPU; 5 on CUDA, where the first batches of new shapes compile Triton kernels
    (TRL's fused log-prob) and fill the allocator's cache, seconds that are not training speed.
    """
    from sft.train import build_trainer
    from tunebot.config import load_config
    from tunebot.models import compute_device
    from tunebot.rundir import RunDir

    device = compute_device()
    warmup = WARMUP_STEPS[device]
    cfg = load_config(run_dir / "config.yaml", [f"sft.max_steps={steps + warmup}", "sft.logging_steps=1000", *variant])
    trainer = build_trainer(cfg, RunDir(run_dir), out=Path(tempfile.mkdtemp()), save=False)
    trainer.eval_dataset = None  # the end-of-run evaluation is not training speed
    trainer.args.eval_strategy = "no"
    if naive:  # pad every batch to the full max_length and compute it all, as a naive setup does: TRL's own
        trainer.data_collator.pad_to_multiple_of = cfg.sft.max_length  # loss (on CPU tunebot's skips padding)
        trainer._compact_loss_applies = lambda model: False
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    marks: list[tuple[float, int]] = []
    trainer.add_callback(_timing_callback(counter, marks))
    trainer.train()
    (start, tokens0), (end, tokens1) = marks[warmup - 1], marks[-1]
    timed = len(marks) - warmup
    durations = sorted(b[0] - a[0] for a, b in zip(marks[warmup - 1 :], marks[warmup:]))
    return {"steps": timed, "step_s": (end - start) / timed, "median_step_s": durations[len(durations) // 2],
            "tokens_per_s": (tokens1 - tokens0) / (end - start), "tokens_per_step": (tokens1 - tokens0) / timed,
            "peak_mb": _peak_memory_mb(device), "device": device}


def _run_child(run_dir: Path, name: str, variant: list[str], steps: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(run_dir), "--steps", str(steps), "--variant", name, "--",
               *variant]
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ,
                                 "PYTHONPATH": os.pathsep.join(filter(None,
                                                                      [str(ROOT), os.environ.get("PYTHONPATH")]))})
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _sources(bitext: Path = BITEXT) -> tuple[list[dict[str, Any]], dict[str, str], str]:
    """Returns (data sources, pii patterns, description): Bitext when present, else the ACME sample."""
    if bitext.is_file():
        order_id = {"ORDER_ID": "(?<![0-9])[0-9]{8,16}(?![0-9])"}
        return [{"path": str(bitext)}], order_id, "Bitext customer support (4,514 pairs)"
    faqs = [str(path) for path in sorted((ROOT / "examples" / "data").glob("acme_faq_*.csv"))]
    return [{"path": path} for path in faqs], {}, "ACME sample FAQ (en+ja)"


def prepare(folder: Path, model: str, batch_size: int, bitext: Path = BITEXT) -> tuple[Path, str]:
    """Writes a run config over the benchmark data, builds its splits and returns (run dir, data name)."""
    from data_tools.stage import run_data_stage
    from tunebot.config import parse_config
    from tunebot.pipeline import open_run_dir

    sources, patterns, described = _sources(bitext)
    cfg = parse_config({
        "name": "bench-train", "model": model, "runs_dir": str(folder),
        "system_prompt": "You are a customer-support assistant. Answer helpfully and concisely.",
        "data": {"sources": sources, "pii_patterns": patterns, "split": {"val": 0.05, "test": 0.05, "seed": 0}},
        "sft": {"batch_size": batch_size, "max_length": 512, "max_lost_share": 1.0, "context": "none", "seed": 0},
    })
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    return run_dir.root, described


def build_gpu_model(folder: Path, tokenizer_dir: Path, shape: str = "1b") -> str:
    """Saves a Llama model of `shape` with random bf16 weights and the given tokenizer; returns its path.

    Built on the GPU (initialising 8B weights on the CPU takes minutes), then freed for the children.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **GPU_SHAPES[shape])
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    target = folder / f"llama-{shape}-shape"
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    del model
    torch.cuda.empty_cache()
    return str(target)


def table(rows: dict[str, dict[str, Any]]) -> str:
    """Renders the figures of each variant as a fixed-width table."""
    lines = [
        f"{'variant':<14} {'steps':>5} {'s/step':>8} {'median':>7} {'tokens/step':>11} {'tokens/s':>9} {'peak MB':>8}"]
    for name, row in rows.items():
        lines.append(
            f"{name:<14} {row['steps']:>5} {row['step_s']:>8.3f} {row.get('median_step_s', row['step_s']):>7.3f} "
                     f"{row['tokens_per_step']:>11.0f} {row['tokens_per_s']:>9.1f} {row['peak_mb']:>8.0f}")
    return "\n".join(lines)


def verdicts(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Returns the ratios the targets are about, with pass/fail."""
    found: dict[str, Any] = {}
    if "naive" in rows and "default" in rows:
        speedup = rows["default"]["tokens_per_s"] / rows["naive"]["tokens_per_s"]
        found["default_over_naive_tokens_per_s"] = {"value": round(speedup, 2), "target": f">= {SPEED_TARGET}",
                                                    "met": speedup >= SPEED_TARGET}
    if "naive-bf16" in rows and "lora-bf16" in rows:
        speedup = rows["lora-bf16"]["tokens_per_s"] / rows["naive-bf16"]["tokens_per_s"]
        found["gpu_default_over_naive_tokens_per_s"] = {"value": round(speedup, 2), "target": f">= {SPEED_TARGET}",
                                                        "met": speedup >= SPEED_TARGET}
    for suffix in ("", "-ckpt"):  # same settings on both sides: without and with gradient checkpointing
        if f"lora-bf16{suffix}" in rows and f"qlora{suffix}" in rows:
            share = rows[f"qlora{suffix}"]["peak_mb"] / rows[f"lora-bf16{suffix}"]["peak_mb"]
            found[f"qlora_over_lora_peak_memory{suffix}"] = {"value": round(share, 3), "target": f"<= {MEMORY_TARGET}",
                                                             "met": share <= MEMORY_TARGET}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="few steps, naive and default only (under 3 minutes on CPU)")
    parser.add_argument("--gpu", action="store_true", help="naive vs LoRA bf16 vs QLoRA on a CUDA GPU (random weights)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant")
    parser.add_argument("--tokenizer", default=None, help="--gpu: tokenizer folder (default: the bundled model's)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--data", type=Path, default=BITEXT, help="the Bitext CSV (default: ../shared's)")
    parser.add_argument("--shape", choices=sorted(GPU_SHAPES), default="1b", help="--gpu: the model's shape")
    parser.add_argument("--variants", default="", help="comma-separated subset of the variants to run")
    parser.add_argument("--peer", choices=["llamafactory"], default=None,
                        help="the same job in tunebot, LLaMA-Factory and plain Trainer+PEFT, interleaved "
                             "(bench/train_peer.py)")
    parser.add_argument("--rounds", type=int, default=None, help="--peer: runs per tool (default 2; --quick 1)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.overrides, args.steps, args.variant.startswith("naive"))))
        return 0
    if args.peer:
        return peer(args)
    steps = args.steps or ((2 if args.quick else 8) if not args.gpu else (5 if args.quick else 20))
    with tempfile.TemporaryDirectory() as scratch:
        rows, described, model = _measure(Path(scratch), args, steps)
    machine = f"{platform.machine()}, {os.cpu_count()} cores" + (f", {_gpu_name()}" if args.gpu else "")
    print(f"\ntraining benchmark: {described}, model {model}, {steps} timed steps per variant, {machine}\n")
    print(table(rows))
    found = verdicts(rows)
    for name, verdict in found.items():
        print(f"{name}: {verdict['value']} (target {verdict['target']}: {'met' if verdict['met'] else 'NOT met'})")
    if args.json:
        document = {"date": date.today().isoformat(), "machine": machine,
                    "data": described, "model": model, "steps": steps, "variants": rows, "targets": found}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def peer(args: argparse.Namespace) -> int:
    """--peer: one job, every tool, interleaved; prints the table and writes bench/results/train-peer.json."""
    import train_peer

    rounds, steps = args.rounds or (1 if args.quick else 2), 6 if args.quick else args.steps
    with tempfile.TemporaryDirectory() as scratch:
        runs = train_peer.measure(Path(scratch), rounds, steps)
    text, figures = train_peer.summary(runs)
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"\ntraining peers: the demo's training split, SmolLM2-135M-Instruct, LoRA r16/a32 all-linear, batch 4, "
          f"{f'{steps} steps' if steps else 'one epoch'}, {rounds} interleaved round(s), {machine}\n\n{text}")
    target = args.json or ROOT / "bench" / "results" / ("train-peer-quick.json" if args.quick else "train-peer.json")
    document = {"date": date.today().isoformat(), "machine": machine, "job": train_peer.JOB, "rounds": rounds,
                "quick": args.quick, "runs": runs, **figures}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"


def _measure(scratch: Path, args: argparse.Namespace, steps: int) -> tuple[dict[str, Any], str, str]:
    from tunebot.models import ensure_default_model

    if args.gpu:
        model = build_gpu_model(scratch, Path(args.tokenizer) if args.tokenizer else ensure_default_model(), args.shape)
        variants, shown = GPU_VARIANTS, f"{SHAPE_NAMES[args.shape]} (random weights, bf16)"
    else:
        model, variants, shown = str(ensure_default_model()), CPU_VARIANTS, "SmolLM2-135M-Instruct (float32)"
    run_dir, described = prepare(scratch, model, 4 if not args.gpu else 8, args.data)
    if args.quick and not args.gpu:  # packing is not part of a target ratio and the slowest on CPU
        variants = {name: variant for name, variant in variants.items() if name != "packing"}
    if args.variants:
        variants = {name: variants[name] for name in args.variants.split(",")}
    rows = {}
    for name, variant in variants.items():
        print(f"bench: {name} ...", flush=True)
        rows[name] = _run_child(run_dir, name, variant, steps)
    return rows, described, shown


if __name__ == "__main__":
    sys.exit(main())
