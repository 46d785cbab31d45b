"""Prototype: HF Llama folder (safetensors + tokenizer.json) -> GGUF with gguf-py only (no torch needed).
usage: python export_gguf.py MODEL_DIR OUT.gguf {f16,q8_0,f32,bf16,q4_0,q5_0}"""
import json, sys
from pathlib import Path
import numpy as np
import gguf

src, out, qname = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
cfg = json.loads((src / "config.json").read_text())
assert cfg["model_type"] == "llama" and cfg["architectures"] == ["LlamaForCausalLM"]
n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
n_layer = cfg["num_hidden_layers"]
head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
rope = cfg.get("rope_parameters") or {}          # transformers 5 layout; 4.x has rope_theta at top level
rope_theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
assert rope.get("rope_type", "default") == "default", "llama3/yarn rope scaling needs extra keys"

QT = {"f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
      "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
      "bf16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
      "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
      "q4_0": (gguf.GGMLQuantizationType.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
      "q5_0": (gguf.GGMLQuantizationType.Q5_0, gguf.LlamaFileType.MOSTLY_Q5_0)}
if qname == "q4_k_m":
    qtype, ftype = gguf.GGMLQuantizationType.Q4_K, gguf.LlamaFileType.MOSTLY_Q4_K_M
else:
    qtype, ftype = QT[qname]
sys.path.insert(0, str(Path(__file__).parent)); import kquants
T = gguf.GGMLQuantizationType
def more_bits(i, n): return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2
def q4_k_m_type(new, a, bid):
    """llama.cpp llama_tensor_get_type for Q4_K_M (dense llama), incl. the 256-column fallbacks."""
    t = T.Q4_K
    if new in ("token_embd.weight", "output.weight"):   # tied: token_embd takes the output's type
        t = T.Q8_0 if a.shape[-1] % 256 else T.Q6_K
    elif new.endswith("attn_v.weight") and more_bits(bid, n_layer): t = T.Q6_K
    elif new.endswith("ffn_down.weight") and more_bits(bid, n_layer): t = T.Q6_K
    if a.shape[-1] % 256:
        t = {T.Q4_K: T.Q5_0, T.Q6_K: T.Q8_0}.get(t, t)
    return t
def quant(a, t):
    return kquants.quantize(a, t) if t in (T.Q4_K, T.Q6_K) else gguf.quants.quantize(a, t)

w = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])   # arch "llama"
w.add_type(gguf.GGUFType.MODEL)
w.add_name(cfg.get("_name_or_path") or src.name)
w.add_context_length(cfg["max_position_embeddings"])
w.add_embedding_length(cfg["hidden_size"])
w.add_block_count(n_layer)
w.add_feed_forward_length(cfg["intermediate_size"])
w.add_head_count(n_head)
w.add_head_count_kv(n_kv)
w.add_rope_freq_base(float(rope_theta))
w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
w.add_key_length(head_dim); w.add_value_length(head_dim)
w.add_file_type(ftype)
w.add_vocab_size(cfg["vocab_size"])
w.add_rope_dimension_count(head_dim)
w.add_quantization_version(gguf.GGML_QUANT_VERSION)

# --- tokenizer (GPT2-style byte-level BPE, straight from tokenizer.json) ---
tj = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
assert tj["model"]["type"] == "BPE"
vocab = tj["model"]["vocab"]
added = {t["id"]: t for t in tj["added_tokens"]}
rev = {i: s for s, i in vocab.items()}
for i, t in added.items(): rev[i] = t["content"]
tokens, types = [], []
for i in range(cfg["vocab_size"]):
    if i not in rev:
        tokens.append(f"[PAD{i}]"); types.append(gguf.TokenType.UNUSED)
    else:
        tokens.append(rev[i])
        types.append(gguf.TokenType.CONTROL if i in added and added[i]["special"]
                     else gguf.TokenType.USER_DEFINED if i in added else gguf.TokenType.NORMAL)
merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("smollm")   # convert_hf_to_gguf picks this by hashing a test encoding; fixed for SmolLM2
w.add_token_list(tokens); w.add_token_types(types); w.add_token_merges(merges)
tc = json.loads((src / "tokenizer_config.json").read_text())
ids = {t["content"]: t["id"] for t in tj["added_tokens"]}
gen = json.loads((src / "generation_config.json").read_text()) if (src / "generation_config.json").exists() else {}
w.add_bos_token_id(cfg.get("bos_token_id", ids.get(tc.get("bos_token"))))
w.add_eos_token_id(cfg.get("eos_token_id", ids.get(tc.get("eos_token"))))
w.add_unk_token_id(ids.get(tc.get("unk_token"), 0))
w.add_pad_token_id(cfg.get("pad_token_id", ids.get(tc.get("pad_token"))))
w.add_add_bos_token(False)
tmpl = src / "chat_template.jinja"
w.add_chat_template(tmpl.read_text() if tmpl.exists() else tc["chat_template"])

# --- tensors ---
tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
def permute(a, heads):   # HF rotate-half layout -> GGML interleaved (same as LlamaModel.permute)
    return a.reshape(heads, 2, a.shape[0] // heads // 2, *a.shape[1:]).swapaxes(1, 2).reshape(a.shape)
import torch  # safetensors' numpy loader cannot read bf16, so load with torch
from safetensors.torch import load_file
sd = load_file(src / "model.safetensors")
for name, t in sd.items():
    if name == "lm_head.weight" and cfg.get("tie_word_embeddings"):
        continue
    a = t.float().numpy()
    if name.endswith("q_proj.weight"): a = permute(a, n_head)
    if name.endswith("k_proj.weight"): a = permute(a, n_kv)
    new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
    assert new, name
    if a.ndim == 1:                      # norms stay F32 (llama.cpp requires it)
        data, dt = a.astype(np.float32), gguf.GGMLQuantizationType.F32
    else:
        try:
            if qname == "q4_k_m":
                bid = int(name.split(".")[2]) if ".layers." in name else None
                dt = q4_k_m_type(new, a, bid); data = quant(a, dt)
            else:
                data, dt = gguf.quants.quantize(a, qtype), qtype
        except gguf.quants.QuantError:     # row not a multiple of the block size
            data, dt = a.astype(np.float16), gguf.GGMLQuantizationType.F16
    w.add_tensor(new, data, raw_shape=data.shape if dt in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16) else None, raw_dtype=dt)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print("wrote", out)
