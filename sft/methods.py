"""Fine-tuning methods: which PEFT config (and which model loading) `sft.method` stands for.

    python -c "from sft.methods import *; print(resolve_method(SftConfig(), 'cpu'))"

auto = QLoRA on CUDA when bitsandbytes is installed, LoRA otherwise. lora, qlora, dora and ia3
produce a PEFT adapter that `tunebot merge` folds into 16/32-bit base weights; prompt and prefix
produce a PEFT adapter of virtual tokens that stays an adapter (nothing to fold); freeze and full
change the model's own weights and save a whole model.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from tunebot.config import SftConfig
from tunebot.errors import TunebotError

# IA3 scales keys, values and the MLP output; the feed-forward one is applied to its input.
IA3_TARGETS = ["k_proj", "v_proj", "down_proj"]
IA3_FEEDFORWARD = ["down_proj"]
# Methods that change the model's own weights (saved as a whole model, no PEFT adapter).
FULL_WEIGHT_METHODS = ("freeze", "full")
# Methods whose learned virtual tokens cannot be folded into the weights (no merged/ model).
VIRTUAL_TOKEN_METHODS = ("prompt", "prefix")


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
        raise MethodError(
            "sft.method=qlora needs a CUDA GPU (4-bit bitsandbytes kernels); on this machine use method: lora")
    if sft.method == "qlora" and not has_bitsandbytes():
        raise MethodError("sft.method=qlora needs bitsandbytes: pip install 'tunebot[gpu]', or use method: lora")
    return sft.method


def check_liger(sft: SftConfig, device: str) -> None:
    """Refuses `sft.liger` where Liger's kernels cannot run: they are Triton, for CUDA GPUs."""
    if not sft.liger:
        return
    if device != "cuda":
        raise MethodError("sft.liger needs a CUDA GPU (Liger's kernels are Triton); on this machine set sft.liger: "
                          "false")
    if importlib.util.find_spec("liger_kernel") is None:
        raise MethodError("sft.liger needs liger-kernel: pip install 'tunebot[gpu]', or set sft.liger: false")


def adapter_config(sft: SftConfig, method: str, init_text: str = "", tokenizer_path: str | None = None) -> Any:
    """Returns the PEFT config of `method`, or None for freeze/full (plain parameter freezing).

    `init_text` (the system prompt) seeds prompt tuning's virtual tokens when `sft.prompt_init` is text.

    >>> adapter_config(SftConfig(), "prefix").num_virtual_tokens   # doctest: +SKIP
    20
    """
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig

    if method in FULL_WEIGHT_METHODS:
        return None
    if method == "prompt":
        from_text = sft.prompt_init == "text" and bool(init_text) and tokenizer_path is not None
        return PromptTuningConfig(
            num_virtual_tokens=sft.num_virtual_tokens,
            prompt_tuning_init="TEXT" if from_text else "RANDOM",
            prompt_tuning_init_text=init_text if from_text else None,
            tokenizer_name_or_path=tokenizer_path if from_text else None,
            task_type="CAUSAL_LM",
        )
    if method == "prefix":
        return PrefixTuningConfig(num_virtual_tokens=sft.num_virtual_tokens, task_type="CAUSAL_LM")
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


def transformer_blocks(model: Any) -> Any:
    """Returns the model's list of transformer blocks (the ModuleList as long as its layer count).

    >>> len(transformer_blocks(model)) == model.config.num_hidden_layers   # doctest: +SKIP
    True
    """
    import torch

    count = model.config.get_text_config().num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise MethodError(f"{type(model).__name__}: no list of {count} transformer blocks found; use method: lora")


def freeze_for_method(model: Any, sft: SftConfig, method: str) -> Any:
    """Sets requires_grad for full (everything) and freeze (last N blocks, final norm, head) training."""
    if method == "full":
        model.requires_grad_(True)
        return model
    model.requires_grad_(False)
    blocks = transformer_blocks(model)
    if sft.freeze_train_layers > len(blocks):
        raise MethodError(f"sft.freeze_train_layers={sft.freeze_train_layers}, but the model has {len(blocks)} blocks")
    for block in blocks[len(blocks) - sft.freeze_train_layers :]:
        block.requires_grad_(True)
    model.get_output_embeddings().requires_grad_(True)
    decoder = model.get_decoder()
    if getattr(decoder, "norm", None) is not None:
        decoder.norm.requires_grad_(True)
    return model


def qlora_quantization() -> Any:
    """Returns QLoRA's base-model quantization: 4-bit NF4, double quantization, bf16 compute.

    >>> qlora_quantization().bnb_4bit_quant_type   # doctest: +SKIP
    'nf4'
    """
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16
    )


def load_for_training(model_path: str, method: str, device: str, sft: SftConfig) -> Any:
    """Loads the base model for `method`: 4-bit NF4 with double quantization and bf16 compute for
    qlora (prepared for k-bit training), else as `load_causal_lm` does."""
    from tunebot.models import load_causal_lm

    if method != "qlora":
        model = load_causal_lm(model_path, device)
        return freeze_for_method(model, sft, method) if method in FULL_WEIGHT_METHODS else model
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        model_path, quantization_config=qlora_quantization(), dtype=torch.bfloat16, device_map={"": 0}
    )
    return prepare_4bit(model, sft.gradient_checkpointing)


def prepare_4bit(model: Any, gradient_checkpointing: bool) -> Any:
    """Freezes a 4-bit base for adapter training, keeping its unquantized weights in bf16.

    Like PEFT's `prepare_model_for_kbit_training` without its cast of every 16-bit weight to fp32:
    those are frozen (embeddings, head, norms) and computed in bf16 as in LoRA-bf16, and the cast
    cost 1.6 GB on a Llama-3.1-8B-shaped model, a fifth of QLoRA's peak (bench/train.py --gpu).
    """
    for parameter in model.parameters():
        parameter.requires_grad = False
    if gradient_checkpointing:  # non-reentrant checkpointing still needs a grad path from the inputs
        model.enable_input_require_grads()
    return model
