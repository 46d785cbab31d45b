"""Default-model provisioning: conversion, reuse, corrupt-cache detection and rebuild, lookup."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tunebot.models import MANIFEST, ModelError, check_cache, default_model_dir, ensure_default_model, resolve_model


def test_default_model_is_converted_and_verified(default_model_dir: Path) -> None:
    status = check_cache(default_model_dir)
    assert status.ok and status.size_bytes > 200e6
    names = {item.name for item in default_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", MANIFEST} <= names


def test_default_tokenizer_facts(default_model_dir: Path) -> None:
    from tunebot.models import load_tokenizer

    tokenizer = load_tokenizer(str(default_model_dir))
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    assert tokenizer.model_max_length == 8192
    rendered = tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], tokenize=False,
            add_generation_prompt=True
    )
    assert rendered == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def copied_home(tmp_path: Path, default_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUNEBOT_HOME", str(tmp_path / "home"))
    target = default_model_dir_under(tmp_path / "home")
    shutil.copytree(default_model_dir, target)
    return target


def default_model_dir_under(home: Path) -> Path:
    return home / "models" / default_model_dir().name


def test_reuse_does_not_convert_again(copied_home: Path) -> None:
    before = (copied_home / "model.safetensors").stat().st_mtime_ns
    assert ensure_default_model() == copied_home
    assert (copied_home / "model.safetensors").stat().st_mtime_ns == before


def test_corrupt_and_half_written_caches_are_detected(copied_home: Path) -> None:
    weights = copied_home / "model.safetensors"
    with open(weights, "r+b") as handle:  # flip one byte in the middle of the weights
        handle.seek(weights.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert check_cache(copied_home).reason == "model.safetensors corrupt (size or checksum differs)"
    (copied_home / MANIFEST).unlink()
    assert check_cache(copied_home).reason == "incomplete (no manifest)"


def test_corrupt_cache_is_rebuilt(copied_home: Path) -> None:
    with open(copied_home / "model.safetensors", "r+b") as handle:
        handle.truncate(1000)  # as a killed copy would leave it
    assert not check_cache(copied_home).ok
    assert ensure_default_model() == copied_home
    assert check_cache(copied_home).ok


def test_resolve_model_paths(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert resolve_model(str(tiny_model_dir)) == str(tiny_model_dir)
    assert resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("./no/such/model")
