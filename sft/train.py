"""Fine-tuning on the run's training split with TRL's SFTTrainer (loss on the answer only).

    tunebot train examples/acme.yaml            # add --resume after a killed run

Reads data/train.jsonl (and val.jsonl for validation), writes sft/adapter/ (the PEFT adapter, or
the whole model for freeze/full, + tokenizer; the best checkpoint by val loss), sft/checkpoints/
and sft/metrics.jsonl (every log line), then sft/DONE. Under torchrun/accelerate (data parallel)
every process trains and only the first one writes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tunebot.config import RunConfig
from sft.checkpoints import require_resumable, resumable, start_fresh, trim_metrics
from sft.methods import adapter_config, check_liger, load_for_training, resolve_method
from tunebot.models import compute_device, load_tokenizer, resolve_model
from sft.loss import sft_trainer_class
from sft.examples import check_losses, choose_max_length, grounded, length_report, read_records, token_lengths
from tunebot.retrieval import resolve_k
from tunebot.rundir import RunDir, StageMissing, atomic_directory
from tunebot.tracking import start_tracking

CUDA_PAD_MULTIPLE = 64


def _dataset(records: list[dict]) -> Any:
    from datasets import Dataset

    rows = [{"prompt": row["prompt"], "completion": row["completion"]} for row in records]
    return Dataset.from_list(rows) if rows else None


def prepare_examples(cfg: RunConfig, run_dir: RunDir, tokenizer: Any) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """The train and val records as training sees them (grounded when sft.context=retrieved), the chosen
    max_length and what it cuts, per split and language; stops when too much would be lost."""
    train = read_records(run_dir.path("data", "train.jsonl"))
    if not train:
        raise StageMissing(f"{run_dir.path('data', 'train.jsonl')} is empty: nothing to train on")
    val = read_records(run_dir.path("data", "val.jsonl"))
    k = None
    if cfg.sft.context == "retrieved":
        retrieval = resolve_k(cfg.retrieval, train, cfg.model)
        train, val = grounded(train, train, cfg, True, retrieval), grounded(val, train, cfg, False,
                retrieval) if val else []
        k = retrieval.k
    lengths = {"train": token_lengths(tokenizer, train), "val": token_lengths(tokenizer, val)}
    max_length = choose_max_length(cfg, lengths["train"])
    report = {split: length_report(records, lengths[split], max_length)
              for split, records in (("train", train), ("val", val)) if records}
    check_losses(report["train"], cfg.sft.max_lost_share, "training")
    return train, val, {"max_length": max_length, "context": cfg.sft.context, "k": k, **report}


def _metrics_callback(path: Path) -> Any:
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        """Appends every Trainer log line (loss, lr, eval loss) to sft/metrics.jsonl as it happens."""

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            line = {"step": state.global_step, "epoch": state.epoch, **(logs or {})}
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")

    return MetricsLog()


def sft_arguments(cfg: RunConfig, output_dir: Path, has_val: bool, device: str, save: bool = True,
                  max_length: int = 512) -> Any:
    """Maps the `sft` section onto TRL's SFTConfig (TRL's own defaults are GPU-minded).

    save=False (search trials) evaluates on schedule but writes no checkpoints; max_length is the
    resolved sft.max_length (prepare_examples).
    """
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
        max_length=max_length,
        packing=sft.packing,
        train_sampling_strategy="group_by_length" if sft.group_by_length else "random",
        completion_only_loss=True,
        gradient_checkpointing=sft.gradient_checkpointing,
        use_liger_kernel=sft.liger,
        logging_steps=sft.logging_steps,
        eval_strategy=every if has_val else "no",
        eval_steps=sft.eval_steps,
        save_strategy=every if save else "no",
        save_steps=sft.eval_steps,
        save_total_limit=sft.keep_checkpoints,
        load_best_model_at_end=has_val and save,
        metric_for_best_model="eval_loss" if has_val else None,
        seed=sft.seed,
        data_seed=sft.seed,
        bf16=device == "cuda",
        use_cpu=device == "cpu",
        report_to=[sft.report_to] if save and sft.report_to != "none" else [],  # search trials are not tracked
        run_name=cfg.name,
        project="tunebot",  # trackio's project; its local store, never a Space:
        trackio_static_space_id=False,
        dataloader_pin_memory=device == "cuda",
        # On CUDA every new sequence length seems to cost kernel specializations and fresh allocations:
        # lengths in steps of 64 keep the shapes few (H100: ragged batches 0.44 s/step, these 0.19)
        pad_to_multiple_of=CUDA_PAD_MULTIPLE if device == "cuda" else None,
    )


def build_trainer(cfg: RunConfig, run_dir: RunDir, out: Path | None = None, save: bool = True) -> Any:
    """Returns an SFTTrainer wired to the run's data, model and method, not yet trained.

    `out` (default sft/) receives checkpoints/ and metrics.jsonl; hyper-parameter trials pass their own.

    >>> trainer = build_trainer(cfg, run_dir); trainer.train()   # doctest: +SKIP
    """
    import torch

    if cfg.sft.threads:
        torch.set_num_threads(cfg.sft.threads)
    model_path = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_path)
    train, val, examples = prepare_examples(cfg, run_dir, tokenizer)
    train_set, val_set = _dataset(train), _dataset(val)
    device = compute_device()
    method = resolve_method(cfg.sft, device)
    check_liger(cfg.sft, device)
    model = load_for_training(model_path, method, device, cfg.sft)
    out = out or run_dir.stage_dir("sft")
    trainer = sft_trainer_class()(
        model=model,
        args=sft_arguments(cfg, out / "checkpoints", val_set is not None, device, save, examples["max_length"]),
        train_dataset=train_set,
        eval_dataset=val_set,
        processing_class=tokenizer,
        peft_config=adapter_config(cfg.sft, method, cfg.system_prompt, model_path),
    )
    trainer.add_callback(_metrics_callback(out / "metrics.jsonl"))
    trainer.tunebot_examples = examples  # what max_length cut, for the summary (sft/DONE)
    if cfg.sft.early_stopping_patience and val_set is not None:
        from transformers import EarlyStoppingCallback

        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=cfg.sft.early_stopping_patience))
    return trainer


def _logged_tokens(history: list[dict]) -> int:
    # TRL logs the running count of trained tokens (padding excluded) as num_tokens.
    counts = [entry["num_tokens"] for entry in history if "num_tokens" in entry]
    return int(max(counts)) if counts else 0


def _prepare(cfg: RunConfig, run_dir: RunDir, resume: bool | None) -> Path | None:
    """Returns the checkpoint to resume from (None = start over, clearing old checkpoints).

    resume=None resumes when a complete checkpoint of this config exists (what `tunebot run` does).
    """
    out = run_dir.start("sft")
    folder, fingerprint = out / "checkpoints", cfg.fingerprint("sft")
    checkpoint = require_resumable(folder, fingerprint) if resume else None
    if resume is None:
        checkpoint = resumable(folder, fingerprint)
    if int(os.environ.get("RANK", "0")) == 0:  # data parallel: the first process owns the files
        if checkpoint is None:
            start_fresh(folder, fingerprint)
            (out / "metrics.jsonl").write_text("", encoding="utf-8")
        else:
            trim_metrics(out / "metrics.jsonl", int(checkpoint.name.split("-")[1]))
    return checkpoint


def train(cfg: RunConfig, run_dir: RunDir, resume: bool | None = False) -> dict[str, Any]:
    """Trains (or continues from the last checkpoint), saves sft/adapter atomically and returns a summary."""
    checkpoint = _prepare(cfg, run_dir, resume)
    if checkpoint is not None:
        print(f"sft: resuming from {checkpoint}")
    tracking = start_tracking(cfg.sft.report_to, cfg.name, run_dir.root, Path(cfg.runs_dir), cfg.sft.tracking_uri) \
        if int(os.environ.get("RANK", "0")) == 0 else {}
    trainer = build_trainer(cfg, run_dir)
    _report_examples(trainer.tunebot_examples, run_dir, trainer.is_world_process_zero(), checkpoint is None)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - started
    resumed_at = int(checkpoint.name.split("-")[1]) if checkpoint else 0
    summary = _summary(cfg, trainer, result, seconds, resumed_at)
    if trainer.is_world_process_zero():
        out = run_dir.stage_dir("sft")
        with atomic_directory(out / "adapter") as scratch:
            trainer.model.save_pretrained(scratch)
            trainer.processing_class.save_pretrained(scratch)
        run_dir.mark_done("sft", cfg.fingerprint("sft"), **summary, tracking=tracking)
        best = f", best val loss {summary['best_val_loss']:.4f}" if summary["best_val_loss"] is not None else ""
        print(
            f"sft ({summary['method']}): {summary['steps']} steps in {seconds:.0f} s, {summary['tokens_per_second']} "
            f"tokens/s, train loss {summary['train_loss']:.4f}{best} -> {out / 'adapter'}"
        )
    return summary


def examples_line(examples: dict[str, Any]) -> str:
    """One line on the examples: max_length, context, and what it cuts per language."""
    train = examples["train"]
    langs = ", ".join(f"{lang}: {entry['n']} (median {entry['median']}, longest {entry['longest']} tokens, "
                      f"{entry['truncated']} truncated, {entry['dropped']} dropped)"
                          for lang, entry in train["by_lang"].items())
    context = examples["context"] + (f" (k={examples['k']})" if examples.get("k") else "")
    return (f"sft: {train['n']} training examples, context {context}, max_length {examples['max_length']}; "
            f"{langs}")


def _report_examples(examples: dict[str, Any], run_dir: RunDir, first: bool, fresh: bool) -> None:
    """Prints the examples line and puts the counts first in sft/metrics.jsonl (step 0; a resumed run has them)."""
    if not first:
        return
    print(examples_line(examples), flush=True)
    if not fresh:
        return
    with open(run_dir.path("sft", "metrics.jsonl"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"step": 0, "examples": examples}, ensure_ascii=False) + "\n")


def _summary(cfg: RunConfig, trainer: Any, result: Any, seconds: float, resumed_at: int) -> dict[str, Any]:
    """Returns the figures of sft/DONE; tokens/s counts only what this process trained (after a resume)."""
    history = trainer.state.log_history
    before = _logged_tokens([entry for entry in history if entry.get("step", 0) <= resumed_at]) if resumed_at else 0
    tokens = _logged_tokens(history) - before
    return {
        "method": resolve_method(cfg.sft, compute_device()),
        "steps": trainer.state.global_step,
        "train_loss": round(result.training_loss, 4),
        "best_val_loss": trainer.state.best_metric,
        "processes": trainer.args.world_size,
        "seconds": round(seconds, 1),
        "tokens_per_second": round(tokens / seconds, 1) if seconds and tokens > 0 else None,
        "examples": trainer.tunebot_examples,
        "resumed_from_step": resumed_at or None,
    }
