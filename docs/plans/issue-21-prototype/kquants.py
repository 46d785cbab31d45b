"""Prototype numpy quantizers for Q4_K and Q6_K (simple min/max, no iterative search), checked with gguf-py's dequantize."""
import numpy as np
from gguf import GGMLQuantizationType as T, quants

QK = 256

def q4_k(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32).reshape(-1, 8, 32)               # blocks x 8 sub-blocks x 32
    n = x.shape[0]
    mn = np.minimum(x.min(-1), 0.0); mx = x.max(-1)
    scale = (mx - mn) / 15.0                                    # per sub-block
    d = scale.max(-1) / 63.0; dmin = (-mn).max(-1) / 63.0       # per block (fp16)
    d16 = d.astype(np.float16); dm16 = dmin.astype(np.float16)
    df = d16.astype(np.float32)[:, None]; dmf = dm16.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.rint(scale / df), 0).clip(0, 63).astype(np.uint8)
        m = np.where(dmf > 0, np.rint(-mn / dmf), 0).clip(0, 63).astype(np.uint8)
        step = (df * sc)[..., None]; off = (dmf * m)[..., None]
        q = np.where(step > 0, np.rint((x + off) / step), 0).clip(0, 15).astype(np.uint8)
    s = np.zeros((n, 12), np.uint8)
    s[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    s[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    s[:, 8:12] = (sc[:, 4:8] & 0xF) | ((m[:, 4:8] & 0xF) << 4)
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(n, 128)   # chunk j: low=sub 2j, high=sub 2j+1
    return np.concatenate([d16.view(np.uint8).reshape(n, 2), dm16.view(np.uint8).reshape(n, 2), s, qs], axis=1)

def q6_k(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32).reshape(-1, 16, 16)
    n = x.shape[0]
    amax_i = np.abs(x).argmax(-1)
    maxv = np.take_along_axis(x, amax_i[..., None], -1)[..., 0]
    scale = -maxv / 32.0                                        # like make_qx_quants(nmax=32): q in [-32, 31]
    big = np.abs(scale).argmax(-1)
    max_scale = np.take_along_axis(scale, big[:, None], -1)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = np.where(max_scale != 0, -128.0 / max_scale, 0)
        sc = np.rint(iscale[:, None] * scale).clip(-128, 127).astype(np.int8)
        d = np.where(iscale != 0, 1.0 / iscale, 0).astype(np.float16)
        step = (d.astype(np.float32)[:, None] * sc)[..., None]
        q = np.where(step != 0, np.rint(x / step), 0).clip(-32, 31).astype(np.int16) + 32
    q = q.astype(np.uint8).reshape(n, 256)
    e = q.reshape(n, 2, 2, 64)                                  # (half, shift, t) for the low nibbles
    ql = ((e[:, :, 0, :] & 0xF) | ((e[:, :, 1, :] & 0xF) << 4)).reshape(n, 128)
    h = (q >> 4).reshape(n, 2, 4, 32)                           # (half, shift, t) for the 2 high bits
    qh = (h[:, :, 0] | (h[:, :, 1] << 2) | (h[:, :, 2] << 4) | (h[:, :, 3] << 6)).reshape(n, 64)
    return np.concatenate([ql, qh, sc.view(np.uint8), d.view(np.uint8).reshape(n, 2)], axis=1)

def quantize(a: np.ndarray, qt) -> np.ndarray:
    assert a.shape[-1] % QK == 0
    f = q4_k if qt == T.Q4_K else q6_k
    return f(a.reshape(-1, QK)).reshape(*a.shape[:-1], -1)

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((576, 1536)) * 0.02).astype(np.float32)
    for qt in (T.Q4_K, T.Q6_K):
        b = quantize(w, qt)
        r = quants.dequantize(b, qt).reshape(w.shape)
        print(qt.name, b.shape, b.dtype, "rel rmse", float(np.sqrt(((r - w) ** 2).mean()) / w.std()))
    for qt in (T.Q4_0, T.Q5_0, T.Q8_0):
        r = quants.dequantize(quants.quantize(w, qt), qt).reshape(w.shape)
        print(qt.name, "(gguf-py) rel rmse", float(np.sqrt(((r - w) ** 2).mean()) / w.std()))
