"""Fine-tuning methods: which PEFT config (and which model loading) `sft.method` stands for.

    python -c "from tunebot.config import parse_config; from sft.methods import resolve_method; print(resolve_method(parse_config({'name': 'x', 'data': {'sources': [{'path': 'f.csv'}]}}).sft, 'cpu'))"

auto = QLoRA on CUDA when bitsandbytes is installed, LoRA otherwise. Every method here produces
a PEFT adapter that `tunebot merge` folds into 16/32-bit base weights.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from tunebot.config import SftConfig
from tunebot.errors import TunebotError

# IA3 scales keys, values and the MLP output; the feed-forward one is applied to its input.
IA3_TARGETS = ["k_proj", "v_proj", "down_proj"]
IA3_FEEDFORWARD = ["down_proj"]


class MethodError(TunebotError, RuntimeError):
    """A fine-tuning method that cannot run on this machine; the message says what to use instead."""


def has_bitsandbytes() -> bool:
    """Tells whether bitsandbytes (4-bit quantization for QLoRA) is installed."""
    return importlib.util.find_spec("bitsandbytes") is not None


def resolve_method(sft: SftConfig, device: str) -> str:
    """Returns the concrete method for `sft.method` on `device`; qlora where it cannot run is an error.

    >>> resolve_method(SftConfig(method="auto"), "cpu")   # doctest: +SKIP
    'lora'
    """
    if sft.method == "auto":
        return "qlora" if device == "cuda" and has_bitsandbytes() else "lora"
    if sft.method == "qlora" and device != "cuda":
        raise MethodError("sft.method=qlora needs a CUDA GPU (4-bit bitsandbytes kernels); on this machine use method: lora")
    if sft.method == "qlora" and not has_bitsandbytes():
        raise MethodError("sft.method=qlora needs bitsandbytes: pip install 'tunebot[gpu]', or use method: lora")
    return sft.method


def adapter_config(sft: SftConfig, method: str) -> Any:
    """Returns the PEFT config of `method` (lora, qlora, dora, ia3)."""
    from peft import IA3Config, LoraConfig

    if method == "ia3":
        targets = IA3_TARGETS if sft.target_modules == "all-linear" else sft.target_modules
        feedforward = [name for name in IA3_FEEDFORWARD if name in targets]
        return IA3Config(target_modules=targets, feedforward_modules=feedforward, task_type="CAUSAL_LM")
    return LoraConfig(
        r=sft.lora_r,
        lora_alpha=sft.lora_alpha,
        lora_dropout=sft.lora_dropout,
        target_modules=sft.target_modules,
        use_dora=method == "dora",
        task_type="CAUSAL_LM",
    )


def load_for_training(model_path: str, method: str, device: str, gradient_checkpointing: bool = False) -> Any:
    """Loads the base model for `method`: 4-bit NF4 with double quantization and bf16 compute for
    qlora (prepared for k-bit training), else as `load_causal_lm` does."""
    from tunebot.models import load_causal_lm

    if method != "qlora":
        return load_causal_lm(model_path, device)
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16
    )
    model = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=quantization, dtype=torch.bfloat16, device_map={"": 0})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
