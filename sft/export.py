"""`tunebot export RUN_DIR --format gguf|ollama`: the merged model as one GGUF file, a model card, an Ollama Modelfile.

    tunebot export runs/acme-demo --format ollama --quant q8_0
    cd runs/acme-demo/export && ollama create acme-demo -f Modelfile && ollama run acme-demo

Writes RUN_DIR/export/ (or --out): NAME.QUANT.gguf (sft/gguf_write.py), README.md (the model card)
and, for ollama, a Modelfile: FROM the GGUF beside it, the chat template (ChatML as a Go template
that ranges over the messages; other templates are left to Ollama, which reads the GGUF's), the
run's system prompt as SYSTEM (what the model was trained with), the template's stop tokens and
greedy decoding, as eval scored it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from sft.gguf_write import QUANTS as GGUF_PY_QUANTS
from sft.gguf_write import ExportError, read_chat_template, write_gguf
from sft.quantize import FTYPES, write_kquant
from tunebot.model_card import model_card
from tunebot.rundir import atomic_write_text

FORMATS = ("gguf", "ollama")
QUANTS = (*GGUF_PY_QUANTS, *FTYPES)  # q8_0, f16 (gguf-py), q4_k_m (llama.cpp's quantizer)
_CHATML = '''TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""'''


def modelfile(gguf_name: str, chat_template: str, system_prompt: str, context: int) -> str:
    """The Ollama Modelfile for a GGUF file in the same folder."""
    lines = ["# Written by tunebot export. ollama create NAME -f Modelfile", f"FROM ./{gguf_name}"]
    if "<|im_start|>" in chat_template:
        lines += [_CHATML, 'PARAMETER stop "<|im_start|>"', 'PARAMETER stop "<|im_end|>"']
    else:
        lines.append("# the chat template is not ChatML: Ollama takes it from the GGUF's tokenizer.chat_template")
    quoted = system_prompt.replace('"""', '\\"\\"\\"')
    lines += [f'SYSTEM """{quoted}"""', "PARAMETER temperature 0", f"PARAMETER num_ctx {context}"]
    return "\n".join(lines) + "\n"


def export_run(run_dir: str | Path, fmt: str = "gguf", quant: str = "q8_0",
               out: str | Path | None = None) -> list[Path]:
    """Writes the export of a run's merged model; returns the files written."""
    import json

    root = Path(run_dir)
    merged = root / "merged"
    if not (merged / "DONE").is_file():
        raise ExportError(f"{merged}: no merged model; run `tunebot merge CONFIG` (or `tunebot run CONFIG`) first")
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: one of {', '.join(FORMATS)}")
    if quant not in QUANTS:
        raise ExportError(f"--quant {quant}: this export writes {', '.join(QUANTS)}")
    config = yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8")) or {}
    target = Path(out) if out else root / "export"
    target.mkdir(parents=True, exist_ok=True)
    name = f"{config.get('name', root.name)}.{quant}.gguf"
    written = [write_kquant(merged, target / name, quant) if quant in FTYPES
               else write_gguf(merged, target / name, quant)]
    atomic_write_text(target / "README.md", model_card(root))
    written.append(target / "README.md")
    if fmt == "ollama":
        template = read_chat_template(merged)
        context = min(json.loads((merged / "config.json").read_text(encoding="utf-8"))["max_position_embeddings"], 4096)
        atomic_write_text(target / "Modelfile",
                          modelfile(name, template, str(config.get("system_prompt", "")), context))
        written.append(target / "Modelfile")
    return written


__all__ = ["FORMATS", "QUANTS", "ExportError", "export_run", "modelfile"]
