"""Hyper-parameter search with Optuna: short SFT trials scored by val loss, bad ones pruned early.

    tunebot tune examples/acme-demo.yaml --trials 8            # TPE; --sampler grid for a grid

Searches lr, LoRA r / alpha / dropout and epochs (ranges in the config's `tune` section). Each
trial trains like `tunebot train` with the sampled values, is evaluated on the val split every
`tune.eval_steps` steps and stopped when it is worse than the median trial at that step. Writes
tune/study.db (Optuna; a re-run continues the study), tune/trials.jsonl, tune/results.md (table,
best first) and tune/best.yaml (the whole config with the best values, ready for `tunebot run`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from tunebot.config import RunConfig, TuneConfig, dump_config
from tunebot.errors import TunebotError
from tunebot.rundir import RunDir, atomic_write_text, read_jsonl

PARAMS = ("lr", "lora_r", "lora_alpha", "lora_dropout", "epochs")


def grid_space(tune: TuneConfig) -> dict[str, list[Any]]:
    """Returns the grid: 3 log-spaced learning rates, both dropout ends, every listed r/ratio/epochs.

    >>> sorted(grid_space(TuneConfig(lr=(1e-4, 1e-2), lora_dropout=(0.0, 0.0)))["lr"])
    [0.0001, 0.001, 0.01]
    """
    low, high = tune.lr
    middle = float(f"{math.sqrt(low * high):.3g}")
    return {
        "lr": sorted({low, middle, high}),
        "lora_r": list(tune.lora_r),
        "alpha_over_r": list(tune.alpha_over_r),
        "lora_dropout": sorted(set(tune.lora_dropout)),
        "epochs": list(tune.epochs),
    }


def sample(trial: Any, tune: TuneConfig) -> dict[str, Any]:
    """Draws one trial's sft values (grid or TPE) and returns them as `sft` fields."""
    grid = tune.sampler == "grid"
    lr = trial.suggest_categorical("lr", grid_space(tune)["lr"]) if grid else trial.suggest_float("lr", *tune.lr,
            log=True)
    dropout = (trial.suggest_categorical("lora_dropout", grid_space(tune)["lora_dropout"]) if grid
               else trial.suggest_float("lora_dropout", *tune.lora_dropout))
    r = trial.suggest_categorical("lora_r", list(tune.lora_r))
    ratio = trial.suggest_categorical("alpha_over_r", list(tune.alpha_over_r))
    epochs = trial.suggest_categorical("epochs", list(tune.epochs))
    return {"lr": lr, "lora_r": r, "lora_alpha": max(1, round(r * ratio)), "lora_dropout": dropout, "epochs": epochs}


def trial_config(cfg: RunConfig, values: dict[str, Any]) -> RunConfig:
    """Returns `cfg` with a trial's values (and the search's eval cadence) in its sft section."""
    update = {**values, "eval_steps": cfg.tune.eval_steps, "early_stopping_patience": None}
    if cfg.tune.max_steps:
        update["max_steps"] = cfg.tune.max_steps
    return RunConfig.model_validate({**cfg.model_dump(), "sft": {**cfg.sft.model_dump(), **update}})


def _pruning_callback(trial: Any, enabled: bool) -> Any:
    from transformers import TrainerCallback

    class ReportToOptuna(TrainerCallback):
        """Reports each val loss to the trial and stops training when Optuna prunes it."""

        pruned_at: int | None = None

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
            trial.report(float((metrics or {})["eval_loss"]), state.global_step)
            if enabled and trial.should_prune():
                self.pruned_at = state.global_step
                control.should_training_stop = True

    return ReportToOptuna()


def run_trial(cfg: RunConfig, run_dir: RunDir, trial: Any) -> float:
    """Trains one trial and returns its best val loss; raises optuna.TrialPruned when pruned."""
    import optuna

    from sft.train import build_trainer

    values = sample(trial, cfg.tune)
    folder = run_dir.path("tune", f"trial-{trial.number:03d}")
    trainer = build_trainer(trial_config(cfg, values), run_dir, out=folder, save=False)
    reporter = _pruning_callback(trial, cfg.tune.pruning)
    trainer.add_callback(reporter)
    began = time.perf_counter()
    trainer.train()
    losses = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    if not losses:
        losses = [trainer.evaluate()["eval_loss"]]
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    trial.set_user_attr("steps", trainer.state.global_step)
    trial.set_user_attr("seconds", round(time.perf_counter() - began, 1))
    trial.set_user_attr("values", values)
    if reporter.pruned_at is not None:
        trial.set_user_attr("pruned_at", reporter.pruned_at)
        raise optuna.TrialPruned(f"val loss {losses[-1]:.4f} at step {reporter.pruned_at} is worse than the median")
    return min(losses)


def open_study(cfg: RunConfig, folder: Path) -> Any:
    """Creates (or reopens, to continue) the Optuna study of this config in tune/study.db."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tune = cfg.tune
    if tune.sampler == "grid":
        sampler = optuna.samplers.GridSampler(grid_space(tune), seed=tune.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=tune.seed, n_startup_trials=max(2, min(5, tune.trials // 3)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2) if tune.pruning else optuna.pruners.NopPruner()
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'study.db'}", study_name=f"{cfg.name}-{cfg.fingerprint('tune')}",
        sampler=sampler, pruner=pruner, direction="minimize", load_if_exists=True,
    )
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # left by a killed run
    return study


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """Returns one row per finished trial (complete first by val loss, then pruned, then failed)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name == "RUNNING":
            continue
        reported = list(trial.intermediate_values.values())
        loss = trial.value if trial.value is not None else (min(reported) if reported else None)
        values = trial.user_attrs.get("values", {})
        rows.append({"trial": trial.number, "state": trial.state.name.lower(), "val_loss": loss,
                     **{name: values.get(name) for name in PARAMS}, "steps": trial.user_attrs.get("steps"),
                     "pruned_at": trial.user_attrs.get("pruned_at"), "seconds": trial.user_attrs.get("seconds")})
    order = {"complete": 0, "pruned": 1}
    return sorted(rows,
                  key=lambda row: (order.get(row["state"], 2), row["val_loss"] if row["val_loss"] is not None
                                   else math.inf))


def results_table(rows: list[dict[str, Any]]) -> str:
    """Renders trial rows as a Markdown table, best first.

    >>> row = {"trial": 0, "state": "complete", "val_loss": 1.5, "lr": 2e-4, "lora_r": 8, "lora_alpha": 16,
    ...        "lora_dropout": 0.0, "epochs": 1.0, "steps": 9, "pruned_at": None, "seconds": 3.0}
    >>> print(results_table([row]).splitlines()[2])
    | 0 | complete | 1.5000 | 2.0e-04 | 8 | 16 | 0.00 | 1 | 9 | 3 |
    """
    lines = ["| trial | state | val loss | lr | r | alpha | dropout | epochs | steps | s |", "|" + "---|" * 10]
    for row in rows:
        loss = f"{row['val_loss']:.4f}" if row["val_loss"] is not None else "-"
        lr = f"{row['lr']:.1e}" if row["lr"] is not None else "-"
        dropout = f"{row['lora_dropout']:.2f}" if row["lora_dropout"] is not None else "-"
        epochs = f"{row['epochs']:g}" if row["epochs"] is not None else "-"
        seconds = f"{row['seconds']:.0f}" if row["seconds"] is not None else "-"
        lines.append(f"| {row['trial']} | {row['state']} | {loss} | {lr} | {row['lora_r']} | {row['lora_alpha']} | "
                     f"{dropout} | {epochs} | {row['steps']} | {seconds} |")
    return "\n".join(lines)


def _progress(total: int) -> Any:
    def report(study: Any, trial: Any) -> None:
        values = trial.user_attrs.get("values", {})
        shown = ", ".join(f"{name}={values[name]:.3g}" if isinstance(values.get(name), float)
                          else f"{name}={values.get(name)}"
                          for name in PARAMS)
        loss = (f"val loss {trial.value:.4f}" if trial.state.name == "COMPLETE"
                else f"{trial.state.name.lower()} at step {trial.user_attrs.get('pruned_at')}")
        best = study.best_trial if any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)) else None
        best_text = f" | best {best.value:.4f} (trial {best.number})" if best else ""
        done = sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.get_trials(deepcopy=False))
        print(f"tune: trial {done}/{total} ({trial.number}): {shown} -> {loss}{best_text}", flush=True)

    return report


def tune(cfg: RunConfig, run_dir: RunDir) -> dict[str, Any]:
    """Runs the missing trials of the study, writes the results and best.yaml, and returns the best values."""
    run_dir.require_inputs("tune")
    if not any(True for _ in read_jsonl(run_dir.path("data", "val.jsonl"))):
        raise TunebotError(f"{run_dir.path('data', 'val.jsonl')} is empty: the search scores trials by val loss; "
                           "set data.split.val > 0 and run `tunebot data` again")
    out = run_dir.start("tune")
    study = open_study(cfg, out)
    finished = sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.get_trials(deepcopy=False))
    remaining = cfg.tune.trials - finished
    if remaining > 0:
        study.optimize(lambda trial: run_trial(cfg, run_dir, trial), n_trials=remaining,
                       callbacks=[_progress(cfg.tune.trials)])
    rows = trial_rows(study)
    return _write_results(cfg, run_dir, rows)


def _write_results(cfg: RunConfig, run_dir: RunDir, rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = run_dir.path("tune")
    atomic_write_text(out / "trials.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    atomic_write_text(out / "results.md", f"# Hyper-parameter search: {cfg.name}\n\n{results_table(rows)}\n")
    complete = [row for row in rows if row["state"] == "complete"]
    if not complete:
        raise TunebotError(f"tune: no trial finished ({len(rows)} pruned or failed); see {out / 'results.md'}")
    best = {name: complete[0][name] for name in PARAMS}
    best_cfg = RunConfig.model_validate({**cfg.model_dump(), "sft": {**cfg.sft.model_dump(), **best}})
    atomic_write_text(out / "best.yaml", dump_config(best_cfg))
    run_dir.mark_done("tune", cfg.fingerprint("tune"), best=best, best_val_loss=complete[0]["val_loss"],
                      trials=len(rows))
    print(
        f"\n{results_table(rows)}\n\ntune: best val loss {complete[0]['val_loss']:.4f} with {best} -> "
        f"{out / 'best.yaml'}")
    return best
