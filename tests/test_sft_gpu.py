"""QLoRA and bf16 LoRA on a CUDA GPU (skipped without one): the base really is 4-bit NF4 while
training, only adapter weights change, and merging reloads the base in 16-bit.

    python -m pytest -m gpu tests/test_sft_gpu.py     # on a CUDA machine with bitsandbytes

On a lent GPU machine without the converted default model, TUNEBOT_TEST_TOKENIZER names a folder
with the default model's tokenizer files (the tiny model is built from them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def gpu_tiny_model(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A 2-layer Llama (width 128: bitsandbytes quantizes in blocks of 64) with the real tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    source = os.environ.get("TUNEBOT_TEST_TOKENIZER") or str(request.getfixturevalue("default_model_dir"))
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("gpu-tiny")
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _run(tmp_path: Path, model: Path, method: str) -> tuple[object, object]:
    """Writes the test FAQs, builds the splits and returns (config, run dir) for `method`."""
    from conftest import write_faq_files

    from data_tools.stage import run_data_stage
    from tunebot.config import parse_config
    from tunebot.pipeline import open_run_dir

    en, ja = write_faq_files(tmp_path / "data")
    cfg = parse_config({
        "name": f"gpu-{method}", "model": str(model), "runs_dir": str(tmp_path / "runs"), "system_prompt": "S",
        "data": {"sources": [{"path": str(en)}, {"path": str(ja)}], "split": {"val": 0.2, "test": 0.2, "seed": 0}},
        "sft": {"method": method, "max_steps": 4, "batch_size": 2, "lr": 5e-3, "logging_steps": 1, "lora_r": 4,
                "lora_alpha": 8},
    })
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    return cfg, run_dir


def test_auto_is_qlora_on_cuda() -> None:
    from sft.methods import has_bitsandbytes, resolve_method
    from tunebot.config import SftConfig

    assert resolve_method(SftConfig(method="auto"), "cuda") == ("qlora" if has_bitsandbytes() else "lora")


def test_qlora_trains_adapters_on_a_4bit_base_and_merges_in_16bit(gpu_tiny_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    from sft.merge import merge_adapter
    from sft.train import build_trainer, train
    from tunebot.models import load_adapted, load_causal_lm

    cfg, run_dir = _run(tmp_path, gpu_tiny_model, "qlora")
    trainer = build_trainer(cfg, run_dir, save=False)
    quantized = [m for m in trainer.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantized) == 2 * 7  # q k v o gate up down in each block, all 4-bit
    assert quantized[0].weight.quant_type == "nf4" and quantized[0].compute_dtype == torch.bfloat16
    assert trainer.model.get_input_embeddings().weight.dtype == torch.bfloat16  # frozen, not upcast to fp32
    trainable = {name for name, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    before = {name: p.detach().float().clone() for name, p in trainer.model.named_parameters() if "lora_B" in name}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert all(not torch.equal(after[name].detach().float(), value) for name, value in before.items())

    summary = train(cfg, run_dir)  # the real stage: sft/adapter and DONE
    assert summary and run_dir.path("sft", "adapter", "adapter_config.json").is_file()
    merge_adapter(cfg, run_dir)
    merged_dir = run_dir.path("merged")
    saved = json.loads((merged_dir / "config.json").read_text())
    assert saved.get("dtype", saved.get("torch_dtype")) == "bfloat16" and "quantization_config" not in saved
    merged = load_causal_lm(str(merged_dir), "cuda").eval()
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in merged.modules())
    tuned = load_adapted(str(gpu_tiny_model), run_dir.path("sft", "adapter"), "cuda").eval()
    ids = torch.tensor([[1, 520, 4053, 314, 3062, 30, 198, 200]], device="cuda")
    with torch.no_grad():
        a, b = merged(ids).logits.float(), tuned(ids).logits.float()
    assert (a - b).abs().max() <= 0.05 * b.abs().max()  # bf16 merge: same model up to rounding


def test_bf16_lora_trains_on_the_gpu(gpu_tiny_model: Path, tmp_path: Path) -> None:
    from sft.train import build_trainer

    cfg, run_dir = _run(tmp_path, gpu_tiny_model, "lora")
    trainer = build_trainer(cfg, run_dir, save=False)
    weight = next(p for name, p in trainer.model.named_parameters() if "q_proj.base_layer" in name)
    assert weight.device.type == "cuda" and weight.dtype == torch.bfloat16 and not weight.requires_grad
    result = trainer.train()
    assert result.global_step == 4 and result.training_loss > 0


def test_qlora_with_gradient_checkpointing_updates_the_adapter(gpu_tiny_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    from sft.train import build_trainer

    cfg, run_dir = _run(tmp_path, gpu_tiny_model, "qlora")
    cfg = cfg.model_copy(update={"sft": cfg.sft.model_copy(update={"gradient_checkpointing": True})})
    trainer = build_trainer(cfg, run_dir, save=False)
    before = {name: p.detach().float().clone() for name, p in trainer.model.named_parameters() if "lora_B" in name}
    result = trainer.train()
    after = dict(trainer.model.named_parameters())
    assert torch.isfinite(torch.tensor(result.training_loss)) and trainer.args.gradient_checkpointing
    assert all(not torch.equal(after[name].detach().float(), value) for name, value in before.items())


def test_liger_kernels_replace_the_layers_and_train(gpu_tiny_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("liger_kernel")
    from sft.train import build_trainer

    cfg, run_dir = _run(tmp_path, gpu_tiny_model, "lora")
    cfg = cfg.model_copy(update={"sft": cfg.sft.model_copy(update={"liger": True})})
    trainer = build_trainer(cfg, run_dir, save=False)
    result = trainer.train()
    norms = [type(module).__name__ for name, module in trainer.model.named_modules()
             if name.endswith("input_layernorm")]
    assert norms and all(name.startswith("Liger") for name in norms), norms
    assert result.global_step == 4 and torch.isfinite(torch.tensor(result.training_loss))
