import sys, time, torch
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
src = "/root/.cache/tunebot/models/SmolLM2-135M-Instruct"
tok = AutoTokenizer.from_pretrained(src)
ref = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
msgs = [{"role": "user", "content": "What is the capital of France?"}]
ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt")
ids = ids["input_ids"] if hasattr(ids, "keys") else ids
with torch.no_grad():
    lr = ref(ids).logits
    gr = ref.generate(ids, max_new_tokens=12, do_sample=False)
print("ref:", repr(tok.decode(gr[0, ids.shape[1]:])))
for g in sys.argv[1:]:
    t = time.time()
    m = AutoModelForCausalLM.from_pretrained(str(Path(g).parent), gguf_file=Path(g).name, dtype=torch.float32).eval()
    with torch.no_grad():
        lg = m(ids).logits
        gg = m.generate(ids, max_new_tokens=12, do_sample=False)
    print(Path(g).name, f"load {time.time()-t:.1f}s", "max|dlogit|", (lg - lr).abs().max().item(),
          "argmax agree", (lg.argmax(-1) == lr.argmax(-1)).float().mean().item(), repr(tok.decode(gg[0, ids.shape[1]:])))
