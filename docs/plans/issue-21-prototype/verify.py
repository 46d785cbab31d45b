import sys, numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import load_file
import torch
from safetensors.torch import load_file as tload

hf = tload(sys.argv[1])
ours = GGUFReader(sys.argv[2]); ref = GGUFReader(sys.argv[3])
def tensors(r):
    out = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type)
        out[t.name] = (t.tensor_type.name, a.reshape([int(x) for x in reversed(t.shape)]) if a.size == int(np.prod(t.shape)) else a)
    return out
O = tensors(ours); R = tensors(ref)
print("ours types:", sorted({v[0] for v in O.values()}), "n", len(O))
print("missing in ours:", set(R) - set(O), "extra:", set(O) - set(R))
def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
worst = 0
for name, (ty, a) in O.items():
    ra = R[name][1].reshape(a.shape)
    c = np.corrcoef(a.ravel(), ra.ravel())[0, 1]
    worst = max(worst, 1 - c)
print("min corr ours vs reference Q4_1:", 1 - worst)
# HF vs ours for layer 0 q/k
q = hf["model.layers.0.self_attn.q_proj.weight"].float().numpy(); k = hf["model.layers.0.self_attn.k_proj.weight"].float().numpy()
oq = O["blk.0.attn_q.weight"][1]; ok = O["blk.0.attn_k.weight"][1]
print("q permuted == gguf:", np.abs(permute(q, 9) - oq).max(), " unpermuted diff:", np.abs(q - oq).max())
print("k permuted(3) == gguf:", np.abs(permute(k, 3) - ok).max())
print("hf keys sample:", [k for k in hf if "layers.0." in k])
print("hf has lm_head:", "lm_head.weight" in hf)
