import sys, numpy as np
from gguf import GGUFReader
a, b = GGUFReader(sys.argv[1]), GGUFReader(sys.argv[2])
def kv(r):
    d = {}
    for f in r.fields.values():
        if f.name.startswith("GGUF."): continue
        try: v = f.contents()
        except Exception: v = "?"
        d[f.name] = v
    return d
A, B = kv(a), kv(b)
for k in sorted(set(A) | set(B)):
    va, vb = A.get(k, "<absent>"), B.get(k, "<absent>")
    if va != vb:
        s = lambda v: (repr(v)[:80] + f" (len {len(v)})") if isinstance(v, list) else repr(v)[:80]
        print("KV DIFF", k, "|", s(va), "|", s(vb))
ta = {t.name: t for t in a.tensors}; tb = {t.name: t for t in b.tensors}
print("tensor names equal:", set(ta) == set(tb), len(ta), len(tb))
nd = 0
for n in ta:
    x, y = ta[n], tb[n]
    if x.tensor_type != y.tensor_type or list(x.shape) != list(y.shape) or not np.array_equal(x.data, y.data):
        nd += 1
        if nd < 5: print("TENSOR DIFF", n, x.tensor_type.name, y.tensor_type.name, list(x.shape), list(y.shape))
print("tensors differing:", nd)
print("order same:", [t.name for t in a.tensors] == [t.name for t in b.tensors])
