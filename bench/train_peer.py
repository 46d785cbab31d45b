"""The same LoRA job trained by tunebot, LLaMA-Factory (twice) and a plain transformers Trainer + PEFT, interleaved.

    .venv/bin/python bench/train.py --peer llamafactory            # 2 rounds, the demo's 72 training pairs
    .venv/bin/python bench/train.py --peer llamafactory --quick    # 1 round of 6 steps each

The job (one for all): the bundled SmolLM2-135M-Instruct (a float32 copy), the demo's training split
(examples/acme-demo.yaml through `tunebot data`), its system prompt, the prompt masked out of the
loss, LoRA r16 / alpha 32 / dropout 0 on every linear layer, batch 4, cut at 512 tokens, one epoch,
lr 2e-3 cosine without warm-up, seed 0, float32 on the CPU, no evaluation and no checkpoints.
  tunebot      sft.train.build_trainer with the job's settings (TRL's SFTTrainer and tunebot's defaults);
  llamafactory LLaMA-Factory 0.9.5 (`run_exp`, template smollm2, mask_history), in its own venv under
               bench/.cache (made on first use; a benchmark-only dependency, never the project's), with its
               defaults, gradient checkpointing included;
  llamafactory-nockpt  the same with `disable_gradient_checkpointing: true`, as tunebot and Trainer run;
  trainer      the textbook recipe: chat template, labels -100 on the prompt, DataCollatorForSeq2Seq,
               peft.get_peft_model, transformers.Trainer.
Each run is a fresh process. The same patch on transformers.Trainer times every step and counts the
real (non-padding) tokens it was given; the first step is warm-up and not timed. Also reported:
the trainer's own runtime, peak RSS and the final train loss.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
LF_VENV = CACHE / "llamafactory-venv"
LF_VERSION = "0.9.5"
# LLaMA-Factory 0.9.5's requirements with the versions pip picks, minus torchvision/torchaudio/torchdata/av
# (no wheels for torch 2.13; a text SFT job does not use them) and with the CPU torch kept.
LF_REQUIREMENTS = ["torch==2.13.0", "accelerate==1.11.0", "datasets==4.0.0", "einops", "fastapi", "fire",
                   "gradio==5.50.0",
                   "matplotlib", "modelscope", "numpy", "omegaconf", "packaging", "pandas", "peft==0.18.1", "protobuf",
                   "pydantic", "pyyaml", "safetensors", "scipy", "sentencepiece", "sse-starlette", "tiktoken",
                   "transformers==5.6.0", "trl==0.24.0", "tyro<0.9.0", "uvicorn"]
TORCHAUDIO_SHIM = '''"""Benchmark shim (bench/train_peer.py): LLaMA-Factory 0.9.5 imports torchaudio
when data/mm_plugin.py loads; no torchaudio wheel exists for torch 2.13, and a text SFT job never calls it."""


def __getattr__(name):
    raise ImportError(f"torchaudio.{name}: torchaudio is a shim in this benchmark venv")
'''
JOB = {"lora_r": 16, "lora_alpha": 32, "batch_size": 4, "max_length": 512, "epochs": 1, "lr": 2e-3, "seed": 0}
TOOLS = ("tunebot", "llamafactory", "llamafactory-nockpt", "trainer")


def ensure_llamafactory() -> Path:
    """Returns the python of LLaMA-Factory's own venv, making it on first use (~3 min)."""
    python = LF_VENV / "bin" / "python"
    if (LF_VENV / ".ready").is_file():
        return python
    print(f"bench: installing LLaMA-Factory {LF_VERSION} into {LF_VENV} (first use only) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(LF_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "--no-deps", f"llamafactory=={LF_VERSION}"], check=True)
    subprocess.run([*pip, *LF_REQUIREMENTS], check=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "torchaudio").mkdir(exist_ok=True)
    (site / "torchaudio" / "__init__.py").write_text(TORCHAUDIO_SHIM, encoding="utf-8")
    (LF_VENV / ".ready").write_text(LF_VERSION, encoding="utf-8")
    return python


def prepare_job(folder: Path, max_steps: int | None) -> Path:
    """Builds the demo's splits with `tunebot data` and writes job.json (and LLaMA-Factory's dataset) beside them."""
    from tunebot.config import load_config
    from tunebot.models import ensure_default_model
    from tunebot.pipeline import open_run_dir
    from data_tools.stage import run_data_stage

    cfg = load_config(ROOT / "examples" / "acme-demo.yaml", [f"runs_dir={folder}"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    records = [json.loads(line)
               for line in (run_dir.root / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    dataset = folder / "lf-data"
    dataset.mkdir()
    rows = [{"system": next(m["content"] for m in record["prompt"] if m["role"] == "system"),
             "messages": [m for m in [*record["prompt"], *record["completion"]] if m["role"] != "system"]}
                 for record in records]
    (dataset / "train.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    info = {"job": {"file_name": "train.json", "formatting": "sharegpt",
                    "columns": {"messages": "messages", "system": "system"},
                    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                             "assistant_tag": "assistant"}}}
    (dataset / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    job = {**JOB, "model": str(float32_copy(ensure_default_model(), folder / "model")), "run_dir": str(run_dir.root),
           "config": str(run_dir.root / "config.yaml"),
           "records": str(run_dir.root / "data" / "train.jsonl"), "system_prompt": cfg.system_prompt,
           "lf_dataset": str(dataset), "max_steps": max_steps or -1, "examples": len(records)}
    path = folder / "job.json"
    path.write_text(json.dumps(job, indent=1), encoding="utf-8")
    return path


def float32_copy(model: Path, folder: Path) -> Path:
    """Saves the model with float32 weights (config dtype float32) in `folder`: the job's one precision.

    The bundled model is stored in bf16. LLaMA-Factory loads a checkpoint in its stored dtype
    (`torch_dtype="auto"`) and trains the frozen base in it; on a CPU without bf16 instructions
    (AVX2 only, as here) bf16 matmuls fall back to a scalar kernel (~60x slower than float32, seen
    here). tunebot and the Trainer recipe load float32 on CPU; with this copy all three do.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).save_pretrained(folder)
    AutoTokenizer.from_pretrained(model).save_pretrained(folder)
    return folder


def install_meter(marks: list[tuple[float, int]], result: dict[str, Any]) -> None:
    """Patches transformers.Trainer so every step leaves (time, real tokens) and train() its output in `result`."""
    import transformers

    step, train = transformers.Trainer.training_step, transformers.Trainer.train

    def timed_step(self: Any, model: Any, inputs: dict, *args: Any, **kwargs: Any) -> Any:
        mask = inputs.get("attention_mask")
        real = int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
        loss = step(self, model, inputs, *args, **kwargs)
        marks.append((time.perf_counter(), real))
        result["padded_tokens"] = result.get("padded_tokens", 0) + int(inputs["input_ids"].numel())
        return loss

    def measured_train(self: Any, *args: Any, **kwargs: Any) -> Any:
        marks.append((time.perf_counter(), 0))  # train() starts: the first step's interval is set-up + warm-up
        output = train(self, *args, **kwargs)
        result.update(train_loss=output.training_loss, runtime_s=output.metrics.get("train_runtime"),
                      steps=self.state.global_step,
                      last_loss=next((e["loss"] for e in reversed(self.state.log_history) if "loss" in e), None))
        return output

    transformers.Trainer.training_step, transformers.Trainer.train = timed_step, measured_train


def train_tunebot(job: dict[str, Any]) -> None:
    """tunebot's trainer (SFTTrainer with tunebot's defaults) on the job; no val split, so no evaluation."""
    import tempfile

    from sft.train import build_trainer
    from tunebot.config import load_config
    from tunebot.rundir import RunDir

    settings = {"lora_r": job["lora_r"], "lora_alpha": job["lora_alpha"], "lora_dropout": 0.0,
                "batch_size": job["batch_size"],
                "max_length": job["max_length"], "epochs": job["epochs"], "lr": job["lr"], "seed": job["seed"],
                "lr_scheduler": "cosine", "warmup_ratio": 0.0, "context": "none", "max_steps": job["max_steps"]}
    cfg = load_config(job["config"], [f"model={job['model']}"]
                      + [f"sft.{key}={value}" for key, value in settings.items()] + job.get("tunebot_set", []))
    run_dir = RunDir(Path(job["run_dir"]))
    (run_dir.root / "data" / "val.jsonl").write_text("", encoding="utf-8")  # the job has no evaluation
    build_trainer(cfg, run_dir, out=Path(tempfile.mkdtemp()), save=False).train()


def train_llamafactory(job: dict[str, Any], checkpointing: bool = True) -> None:
    """LLaMA-Factory's SFT on the job, as `llamafactory-cli train` runs it (in LLaMA-Factory's venv).

    checkpointing=False sets `disable_gradient_checkpointing: true`: LLaMA-Factory's default
    recomputes activations in the backward pass (less memory, slower); tunebot's and the Trainer's don't.
    """
    import tempfile

    from llamafactory.train.tuner import run_exp

    run_exp({"disable_gradient_checkpointing": not checkpointing, "stage": "sft", "do_train": True,
             "model_name_or_path": job["model"], "finetuning_type": "lora",
             "lora_rank": job["lora_r"], "lora_alpha": job["lora_alpha"], "lora_dropout": 0.0, "lora_target": "all",
             "dataset": "job", "dataset_dir": job["lf_dataset"], "template": "smollm2", "cutoff_len": job["max_length"],
             "mask_history": True, "overwrite_cache": True, "output_dir": tempfile.mkdtemp(), "logging_steps": 1,
             "save_strategy": "no", "per_device_train_batch_size": job["batch_size"], "gradient_accumulation_steps": 1,
             "learning_rate": job["lr"], "num_train_epochs": job["epochs"], "max_steps": job["max_steps"],
             "lr_scheduler_type": "cosine", "warmup_ratio": 0.0, "seed": job["seed"], "report_to": "none",
             "plot_loss": False, "bf16": False, "use_cpu": True})


def train_plain(job: dict[str, Any]) -> None:
    """The textbook recipe: chat template, prompt labels -100, DataCollatorForSeq2Seq, PEFT LoRA, Trainer."""
    import tempfile

    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                              TrainingArguments)

    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    rows = []
    for line in Path(job["records"]).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        prompt = tokenizer(tokenizer.apply_chat_template(record["prompt"], add_generation_prompt=True, tokenize=False),
                           add_special_tokens=False)["input_ids"]
        text = tokenizer.apply_chat_template([*record["prompt"], *record["completion"]], tokenize=False)
        full = tokenizer(text, add_special_tokens=False)["input_ids"][:job["max_length"]]
        rows.append({"input_ids": full, "attention_mask": [1] * len(full),
                     "labels": [-100] * len(prompt) + full[len(prompt):]})
    model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=job["lora_r"], lora_alpha=job["lora_alpha"], lora_dropout=0.0,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=job["batch_size"],
                             learning_rate=job["lr"], num_train_epochs=job["epochs"], max_steps=job["max_steps"],
                             lr_scheduler_type="cosine", warmup_steps=0, seed=job["seed"], logging_steps=1,
                             save_strategy="no", report_to=[], use_cpu=True)
    Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)).train()


RUNNERS = {"tunebot": train_tunebot, "llamafactory": train_llamafactory,
           "llamafactory-nockpt": lambda job: train_llamafactory(job, checkpointing=False), "trainer": train_plain}


def child(tool: str, job_path: Path) -> dict[str, Any]:
    """Runs one tool on the job in this process and returns its figures."""
    job = json.loads(job_path.read_text(encoding="utf-8"))
    marks: list[tuple[float, int]] = []
    result: dict[str, Any] = {}
    install_meter(marks, result)
    RUNNERS[tool](job)
    (start, _), (end, _) = marks[1], marks[-1]  # marks[0]: train() began; marks[1]: the warm-up step ended
    timed = marks[2:]
    tokens = sum(real for _, real in timed)
    steps_s = [round(b[0] - a[0], 2) for a, b in zip(marks, marks[1:])]
    result["padding_share"] = round(1 - sum(real for _, real in marks) / result.pop("padded_tokens"), 3)
    return {**result, "timed_steps": len(timed), "seconds": end - start, "real_tokens": tokens, "step_s": steps_s,
            "tokens_per_s": tokens / (end - start),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_tool(tool: str, job_path: Path) -> dict[str, Any]:
    """Runs `tool` on the job in a fresh process (LLaMA-Factory's own python for it) and returns its figures."""
    python = str(ensure_llamafactory()) if tool.startswith("llamafactory") else sys.executable
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "DISABLE_VERSION_CHECK": "1"}
    done = subprocess.run([python, __file__, tool, str(job_path)], capture_output=True, text=True, env=env,
                          cwd=job_path.parent)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(folder: Path, rounds: int, max_steps: int | None, tools: tuple[str, ...] = TOOLS) -> dict[str, list[dict]]:
    """Runs every tool `rounds` times, interleaved (a, b, c, a, b, c, ...), on one job; returns the runs per tool."""
    job_path = prepare_job(folder, max_steps)
    runs: dict[str, list[dict]] = {tool: [] for tool in tools}
    for round_ in range(rounds):
        for tool in tools:
            print(f"bench: {tool}, round {round_ + 1}/{rounds} ...", flush=True)
            runs[tool].append(run_tool(tool, job_path))
    return runs


def summary(runs: dict[str, list[dict]]) -> tuple[str, dict[str, Any]]:
    """The table (a line a run, then the medians) and the tunebot / peer tokens/s ratios."""
    lines = [f"{'tool':<19} {'run':>3} {'steps':>5} {'timed s':>8} {'trainer s':>9} {'real tok/s':>10} {'padding':>7} "
             f"{'peak RSS MB':>11} {'train loss':>10} {'last loss':>9}"]
    for tool, entries in runs.items():
        for number, row in enumerate(entries, 1):
            lines.append(
                f"{tool:<19} {number:>3} {row['steps']:>5} {row['seconds']:>8.1f} {row['runtime_s'] or 0:>9.1f} "
                         f"{row['tokens_per_s']:>10.1f} {row['padding_share']:>7.1%} {row['peak_rss_mb']:>11.0f} "
                         f"{row['train_loss']:>10.4f} "
                         f"{row['last_loss'] or 0:>9.4f}")
    median = {tool: sorted(row["tokens_per_s"] for row in entries)[len(entries) // 2] for tool, entries in runs.items()}
    ratios = {f"tunebot_over_{tool}": round(median["tunebot"] / value, 2) for tool, value in median.items()
              if tool != "tunebot"}
    lines.append("")
    lines += [f"{name}: {value}x real tokens/s (medians)" for name, value in ratios.items()]
    return "\n".join(lines), {"median_tokens_per_s": median, "ratios": ratios}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(child(sys.argv[1], Path(sys.argv[2]))))
