"""Fine-tuning (LoRA, QLoRA, DoRA, IA3) on the run's training split with TRL's SFTTrainer (loss on the answer only).

    tunebot train examples/acme.yaml

Reads data/train.jsonl (and val.jsonl for per-epoch validation), writes sft/adapter/ (PEFT
adapter + tokenizer), sft/checkpoints/ and sft/metrics.jsonl (every log line), then sft/DONE.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tunebot.config import RunConfig
from sft.methods import adapter_config, load_for_training, resolve_method
from tunebot.models import compute_device, load_tokenizer, resolve_model
from tunebot.rundir import RunDir, StageMissing, atomic_directory, read_jsonl


def _dataset(path: Path) -> Any:
    from datasets import Dataset

    rows = [{"prompt": row["prompt"], "completion": row["completion"]} for row in read_jsonl(path)]
    return Dataset.from_list(rows) if rows else None


def _metrics_callback(path: Path) -> Any:
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        """Appends every Trainer log line (loss, lr, eval loss) to sft/metrics.jsonl as it happens."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            path.write_text("", encoding="utf-8")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            line = {"step": state.global_step, "epoch": state.epoch, **(logs or {})}
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")

    return MetricsLog()


def sft_arguments(cfg: RunConfig, output_dir: Path, has_val: bool, device: str) -> Any:
    """Maps the `sft` section onto TRL's SFTConfig (TRL's own defaults are GPU-minded)."""
    from trl import SFTConfig

    sft = cfg.sft
    every = "steps" if sft.eval_steps else "epoch"
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=sft.epochs,
        max_steps=sft.max_steps,
        per_device_train_batch_size=sft.batch_size,
        per_device_eval_batch_size=sft.batch_size,
        gradient_accumulation_steps=sft.grad_accum,
        learning_rate=sft.lr,
        lr_scheduler_type=sft.lr_scheduler,
        warmup_steps=sft.warmup_ratio,
        weight_decay=sft.weight_decay,
        max_length=sft.max_length,
        packing=sft.packing,
        train_sampling_strategy="group_by_length" if sft.group_by_length else "random",
        completion_only_loss=True,
        gradient_checkpointing=sft.gradient_checkpointing,
        logging_steps=sft.logging_steps,
        eval_strategy=every if has_val else "no",
        eval_steps=sft.eval_steps,
        save_strategy=every,
        save_steps=sft.eval_steps,
        save_total_limit=sft.keep_checkpoints,
        load_best_model_at_end=has_val,
        metric_for_best_model="eval_loss" if has_val else None,
        seed=sft.seed,
        data_seed=sft.seed,
        bf16=device == "cuda",
        use_cpu=device == "cpu",
        report_to="none",
        dataloader_pin_memory=device == "cuda",
    )


def build_trainer(cfg: RunConfig, run_dir: RunDir) -> Any:
    """Returns an SFTTrainer wired to the run's data, model and adapter config, not yet trained.

    >>> trainer = build_trainer(cfg, run_dir); trainer.train()   # doctest: +SKIP
    """
    import torch
    from trl import SFTTrainer

    if cfg.sft.threads:
        torch.set_num_threads(cfg.sft.threads)
    train_set = _dataset(run_dir.path("data", "train.jsonl"))
    if train_set is None:
        raise StageMissing(f"{run_dir.path('data', 'train.jsonl')} is empty: nothing to train on")
    val_set = _dataset(run_dir.path("data", "val.jsonl"))
    device = compute_device()
    method = resolve_method(cfg.sft, device)
    model_path = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_path)
    model = load_for_training(model_path, method, device, cfg.sft.gradient_checkpointing)
    out = run_dir.stage_dir("sft")
    trainer = SFTTrainer(
        model=model,
        args=sft_arguments(cfg, out / "checkpoints", val_set is not None, device),
        train_dataset=train_set,
        eval_dataset=val_set,
        processing_class=tokenizer,
        peft_config=adapter_config(cfg.sft, method),
    )
    trainer.add_callback(_metrics_callback(out / "metrics.jsonl"))
    if cfg.sft.early_stopping_patience and val_set is not None:
        from transformers import EarlyStoppingCallback

        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=cfg.sft.early_stopping_patience))
    return trainer


def _logged_tokens(history: list[dict]) -> int:
    # TRL logs the running count of trained tokens (padding excluded) as num_tokens.
    counts = [entry["num_tokens"] for entry in history if "num_tokens" in entry]
    return int(max(counts)) if counts else 0


def train(cfg: RunConfig, run_dir: RunDir) -> dict[str, Any]:
    """Trains, saves sft/adapter atomically, marks the stage done and returns its summary."""
    out = run_dir.start("sft")
    trainer = build_trainer(cfg, run_dir)
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    with atomic_directory(out / "adapter") as scratch:
        trainer.model.save_pretrained(scratch)
        trainer.processing_class.save_pretrained(scratch)
    tokens = trainer.state.num_input_tokens_seen or _logged_tokens(trainer.state.log_history)
    summary = {
        "method": resolve_method(cfg.sft, compute_device()),
        "steps": trainer.state.global_step,
        "train_loss": round(result.training_loss, 4),
        "best_val_loss": trainer.state.best_metric,
        "seconds": round(seconds, 1),
        "tokens_per_second": round(tokens / seconds, 1) if seconds and tokens else None,
    }
    run_dir.mark_done("sft", cfg.fingerprint("sft"), **summary)
    best = f", best val loss {summary['best_val_loss']:.4f}" if summary["best_val_loss"] is not None else ""
    print(
        f"sft ({summary['method']}): {summary['steps']} steps in {seconds:.0f} s, {summary['tokens_per_second']} tokens/s, "
        f"train loss {summary['train_loss']:.4f}{best} -> {out / 'adapter'}"
    )
    return summary
