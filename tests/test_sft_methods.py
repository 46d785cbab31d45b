"""sft.method: each adapter method trains on the tiny model, touches only its own weights, and merges."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_tools.stage import run_data_stage
from sft.merge import merge_adapter
from sft.methods import MethodError, check_liger, resolve_method
from sft.train import build_trainer, sft_arguments, train
from tunebot.config import SftConfig, load_config
from tunebot.models import load_adapted, load_causal_lm, load_tokenizer
from tunebot.pipeline import open_run_dir
from tunebot.rundir import read_jsonl


def test_auto_is_lora_on_cpu_and_qlora_needs_cuda() -> None:
    assert resolve_method(SftConfig(method="auto"), "cpu") == "lora"
    assert resolve_method(SftConfig(method="dora"), "cpu") == "dora"
    with pytest.raises(MethodError, match="needs a CUDA GPU .* use method: lora"):
        resolve_method(SftConfig(method="qlora"), "cpu")


def test_liger_is_refused_off_cuda_and_reaches_the_trainer_on_it(run_config_file: Path, tmp_path: Path) -> None:
    cfg = load_config(run_config_file, ["sft.liger=true"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    with pytest.raises(MethodError, match="sft.liger needs a CUDA GPU"):
        build_trainer(cfg, run_dir)
    check_liger(cfg.sft.model_copy(update={"liger": False}), "cpu")  # off: nothing to check
    # on CUDA the setting becomes TRL's use_liger_kernel (the GPU test trains with it)
    assert sft_arguments(cfg, tmp_path, False, "cpu").use_liger_kernel
    assert not sft_arguments(load_config(run_config_file), tmp_path, False, "cpu").use_liger_kernel


def test_qlora_quantizes_the_base_to_nf4_with_double_quantization_and_bf16_compute() -> None:
    import torch

    from sft.methods import qlora_quantization

    quantization = qlora_quantization()
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    assert quantization.bnb_4bit_use_double_quant and quantization.bnb_4bit_compute_dtype == torch.bfloat16


def test_freeze_trains_with_gradient_checkpointing(run_config_file: Path) -> None:
    cfg = load_config(run_config_file,
                      ["sft.method=freeze", "sft.gradient_checkpointing=true", "sft.freeze_train_layers=1"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    trainer = build_trainer(cfg, run_dir)
    before = trainer.model.model.layers[1].mlp.down_proj.weight.detach().clone()
    trainer.train()
    assert not torch_allclose(trainer.model.model.layers[1].mlp.down_proj.weight.detach(), before, 0.0)


def _trainable_by_method(method: str, name: str) -> bool:
    """Which parameters `method` may change on the 2-block tiny model (freeze trains the last block)."""
    if method in ("lora", "dora"):
        return "lora_" in name
    if method == "ia3":
        return "ia3_" in name
    if method in ("prompt", "prefix"):
        return "prompt_encoder" in name
    if method == "freeze":  # the head is tied to the embeddings in this model
        return "layers.1." in name or name.endswith("norm.weight") and "layers" not in name or "embed_tokens" in name
    return True


def _logits(model: object, prompt: str, tokenizer: object) -> object:
    import torch

    batch = tokenizer([prompt], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        return model(**batch).logits[:, -1]


PROMPT = "<|im_start|>user\n返品できますか？<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("method", ["lora", "dora", "ia3", "prompt", "prefix", "freeze", "full"])
def test_method_trains_only_its_own_weights(run_config_file: Path, method: str) -> None:
    import torch

    cfg = load_config(run_config_file, [f"sft.method={method}", "sft.lr=0.05", "sft.freeze_train_layers=1"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    trainer = build_trainer(cfg, run_dir)
    before = {name: param.detach().clone() for name, param in trainer.model.named_parameters()}
    trainer.train()
    trainable = {name for name, param in trainer.model.named_parameters() if param.requires_grad}
    assert trainable and all(_trainable_by_method(method, name) for name in trainable), sorted(trainable)[:5]
    for name, param in trainer.model.named_parameters():
        assert (not torch.equal(param.detach(), before[name])) == (name in trainable), name


@pytest.mark.parametrize("method", ["dora", "ia3", "freeze", "full"])
def test_merged_model_equals_the_tuned_model(run_config_file: Path, method: str) -> None:
    cfg = load_config(run_config_file, [f"sft.method={method}", "sft.lr=0.05"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    summary = train(cfg, run_dir)
    assert summary["method"] == method and run_dir.done_info("sft")["method"] == method
    merge_adapter(cfg, run_dir)
    tokenizer = load_tokenizer(str(run_dir.path("merged")))
    tuned = _logits(load_adapted(cfg.model, run_dir.path("sft", "adapter"), "cpu"), PROMPT, tokenizer)
    merged = _logits(load_causal_lm(str(run_dir.path("merged")), "cpu"), PROMPT, tokenizer)
    base = _logits(load_causal_lm(cfg.model, "cpu"), PROMPT, tokenizer)
    assert torch_allclose(tuned, merged, 1e-4)
    assert not torch_allclose(tuned, base, 1e-3)  # the training matters


def torch_allclose(left: object, right: object, atol: float) -> bool:
    import torch

    return bool(torch.allclose(left, right, atol=atol))


@pytest.mark.parametrize("method", ["prompt", "prefix"])
def test_virtual_token_methods_generate_and_are_not_merged(run_config_file: Path, method: str) -> None:
    from eval.generate import generate_answers
    from tunebot.errors import StageNotApplicable
    from tunebot.pipeline import run_pipeline

    cfg = load_config(run_config_file, [f"sft.method={method}", "sft.lr=0.05", "eval.max_examples=2"])
    run_dir, _ = run_pipeline(cfg)
    assert run_dir.is_done("eval") and not run_dir.is_done("merged")  # merge skipped, not failed
    with pytest.raises(StageNotApplicable, match="cannot be merged"):
        merge_adapter(cfg, run_dir)
    tokenizer = load_tokenizer(cfg.model)
    tuned = load_adapted(cfg.model, run_dir.path("sft", "adapter"), "cpu")
    assert not torch_allclose(_logits(tuned, PROMPT, tokenizer),
                              _logits(load_causal_lm(cfg.model, "cpu"), PROMPT, tokenizer), 1e-3)
    conversation = [{"role": "system", "content": cfg.system_prompt}, {"role": "user", "content": "返品できますか？"}]
    answer = generate_answers(tuned, tokenizer, [conversation], max_new_tokens=3)[0]
    assert answer.new_tokens <= 3 and "返品できますか" not in answer.text  # only new tokens come back


def test_early_stopping_ends_training_when_val_loss_stops_falling(run_config_file: Path) -> None:
    # a huge learning rate keeps the val loss from falling for long
    cfg = load_config(run_config_file,
                      ["sft.max_steps=12", "sft.eval_steps=1", "sft.early_stopping_patience=2", "sft.lr=5.0"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    summary = train(cfg, run_dir)
    evals = [line["eval_loss"] for line in read_jsonl(run_dir.path("sft", "metrics.jsonl")) if "eval_loss" in line]
    assert summary["steps"] == len(evals) < cfg.sft.max_steps  # stopped early, one evaluation per step
    best = evals.index(min(evals))
    assert best == len(evals) - 1 - cfg.sft.early_stopping_patience  # then exactly `patience` without progress
    assert summary["best_val_loss"] == min(evals)
    assert len(list(run_dir.path("sft", "checkpoints").glob("checkpoint-*"))) <= cfg.sft.keep_checkpoints


def test_train_refuses_to_overwrite_a_finished_adapter(run_config_file: Path, capsys: pytest.CaptureFixture) -> None:
    from tunebot.cli import main

    assert main(["data", str(run_config_file)]) == 0
    assert main(["train", str(run_config_file)]) == 0
    assert main(["train", str(run_config_file)]) == 2
    assert "holds a finished adapter; pass --overwrite" in capsys.readouterr().err
    assert main(["train", str(run_config_file), "--overwrite"]) == 0


def test_packed_batches_keep_attention_within_each_example(run_config_file: Path) -> None:
    import torch

    cfg = load_config(run_config_file, ["sft.packing=true", "sft.max_length=256", "sft.context=none"])
    run_dir = open_run_dir(cfg)
    run_data_stage(cfg, run_dir)
    trainer = build_trainer(cfg, run_dir)
    batch = next(iter(trainer.get_train_dataloader()))
    positions = batch["position_ids"][0]
    starts = [i for i in range(len(positions)) if positions[i] == 0] + [len(positions)]
    assert len(starts) > 2 and "attention_mask" not in batch  # several examples in one padding-free row
    model = trainer.model.eval()
    with torch.inference_mode():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        for begin, end in zip(starts, starts[1:]):
            alone = model(input_ids=batch["input_ids"][:, begin:end]).logits[0]
            assert torch.allclose(packed[begin:end], alone, atol=1e-4), (begin, end)


def test_prepare_4bit_freezes_without_upcasting(tiny_model_dir: Path) -> None:
    import torch

    from sft.methods import prepare_4bit
    from transformers import AutoModelForCausalLM

    model = prepare_4bit(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16), True)
    assert not any(p.requires_grad for p in model.parameters())
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # PEFT's helper would make these fp32
    embedded = model.get_input_embeddings()(torch.tensor([[1, 2, 3]]))
    assert embedded.requires_grad  # checkpointed blocks still get a gradient path
