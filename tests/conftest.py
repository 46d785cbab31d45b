"""Shared fixtures: a tiny Llama built from the default model's real config and real tokenizer.

    python -m pytest -q

The tiny model keeps its vocabulary and chat template (so prompts tokenize exactly as with the
real model) but has 2 layers of width 64, so a LoRA step takes well under a second on CPU.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent

EN_PAIRS = [
    ("How long do refunds take?", "Refunds reach your card within 5 business days."),
    ("Can I return an item?", "Yes, unused items can be returned within 30 days."),
    ("Is shipping free?", "Shipping is free on orders over 50 dollars."),
    ("How do I reset my password?", "Use the Forgot password link on the sign-in page."),
    ("When is support open?", "Support is open from 9 am to 6 pm on weekdays."),
    ("Can I change my address?", "You can change the address until the order ships."),
]
JA_PAIRS = [
    ("返品できますか？", "未使用の商品は30日以内なら返品できます。"),
    ("送料はいくらですか？", "5,500円以上のご購入で送料無料です。"),
    ("領収書は発行できますか？", "マイページの注文履歴から領収書を発行できます。"),
    ("営業時間を教えてください。", "平日9時から18時まで営業しています。"),
    ("パスワードを忘れました。", "ログイン画面の「パスワードを忘れた方」から再設定できます。"),
    ("注文をキャンセルしたいです。", "発送前であればマイページからキャンセルできます。"),
]


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The converted default model (converted once per machine, ~40 s the first time)."""
    from tunebot.models import ensure_default_model

    return ensure_default_model()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, default_model_dir: Path) -> Path:
    """A 2-layer, width-64 Llama from the default model's config, with its real tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(default_model_dir)
    config.update(
        {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 1024}
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    tokenizer.model_max_length = 1024
    tokenizer.save_pretrained(folder)
    return folder


def write_faq_files(folder: Path) -> tuple[Path, Path]:
    """Writes a small English JSONL FAQ and a Japanese CSV FAQ for tests; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    en = folder / "faq_en.jsonl"
    en.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in EN_PAIRS), encoding="utf-8")
    ja = folder / "faq_ja.csv"
    with open(ja, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["質問", "回答"])
        writer.writerows(JA_PAIRS)
    return en, ja


@pytest.fixture
def run_config_file(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A complete run config over the test FAQs and the tiny model, with a 3-step LoRA run."""
    en, ja = write_faq_files(tmp_path / "data")
    raw = {
        "name": "unit",
        "model": str(tiny_model_dir),
        "system_prompt": "You are ACME support. あなたはACMEのサポート担当です。",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"sources": [{"path": str(en)}, {"path": str(ja)}], "split": {"val": 0.2, "test": 0.2, "seed": 0}},
        "sft": {"max_steps": 3, "batch_size": 2, "lr": 5e-3, "logging_steps": 1, "lora_r": 4, "lora_alpha": 8},
        "eval": {"backend": "hf", "max_new_tokens": 8, "batch_size": 4, "bootstrap_resamples": 200,
                 "permutations": 200},
    }
    path = tmp_path / "unit.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


from serve.threaded import free_port, serving  # noqa: E402,F401  (re-exported for the serve tests)


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter for the tiny model with random (non-zero) weights: tuned visibly differs from base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    adapter = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    folder = tmp_path_factory.mktemp("tiny-adapter")
    adapter.save_pretrained(folder)
    return folder


def build_records(data: Any, system_prompt: str) -> tuple[list[dict], list[dict], list]:
    """Runs the real data stage on `data` in a temporary run folder; returns (records of every split
    in file order, rejects, per-source reports with the counts of report.json)."""
    from collections import Counter

    from data_tools.report import SourceReport
    from data_tools.stage import built_records
    from tunebot.config import RunConfig

    cfg = RunConfig.model_validate({"name": "t", "system_prompt": system_prompt, "data": data.model_dump()})
    records, rejects, sources = built_records(cfg)
    extra_keys = ("conversations", "messages", "skipped_messages", "unanswered_messages")
    reports = [SourceReport(entry["file"], entry["unit"], entry["rows_in"], entry["kept"],
                            Counter(entry["rejected_by_reason"]),
                            Counter(entry["pii_found"]),
                                Counter({key: entry[key] for key in extra_keys if key in entry}))
               for entry in sources]
    return records, rejects, reports


# What the GGUF export checks ask the merged model and its export (tests/test_sft_export.py, test_sft_llama_cpp.py).
EXPORT_QUESTIONS = ["What is the capital of France?", "返品できますか？", "How do I reset my password?"]


@pytest.fixture(scope="session")
def merged_run_dir(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose merged/ is the default model merged with a random (non-zero) LoRA."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("runs") / "acme"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32)
    lora = LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False, lora_alpha=2)
    get_peft_model(model, lora).merge_and_unload().save_pretrained(root / "merged")
    AutoTokenizer.from_pretrained(default_model_dir).save_pretrained(root / "merged")
    (root / "merged" / "DONE").write_text("{}", encoding="utf-8")
    config = {"name": "acme", "model": "default", "system_prompt": 'You are ACME support. """Be brief."""',
              "data": {"sources": [{"path": "faq.csv"}]}}
    (root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root
