"""`tunebot export`: the merged default model (with a random LoRA merged in) as GGUF, loaded back, and its Modelfile."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import EXPORT_QUESTIONS as QUESTIONS
from tunebot.cli import main



def _greedy(model: object, tokenizer: object) -> list[tuple[object, int]]:
    """Each question's prompt + greedy answer (token ids) and the prompt's length."""
    found = []
    for question in QUESTIONS:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        found.append((model.generate(**ids, max_new_tokens=16, do_sample=False)[0], ids["input_ids"].shape[1]))
    return found


def _agreement(model: object, reference: list[tuple[object, int]]) -> float:
    """The share of the reference answers' tokens that `model` picks too, fed the same prefix (teacher forcing)."""
    import torch

    same = total = 0
    for sequence, start in reference:
        with torch.no_grad():
            picks = model(sequence[None, :-1]).logits[0].argmax(-1)
        same += int((picks[start - 1:] == sequence[start:]).sum())
        total += len(sequence) - start
    return same / total


@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_the_gguf_answers_as_the_merged_model_does(merged_run_dir: Path, quant: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert main(["export", str(merged_run_dir), "--quant", quant]) == 0
    path = merged_run_dir / "export" / f"acme.{quant}.gguf"
    assert f"export: wrote {path}" in capsys.readouterr().out
    reader = gguf.GGUFReader(path)
    fields = {name: reader.fields[name]
              for name in ("tokenizer.chat_template", "general.architecture", "tokenizer.ggml.pre")}
    template = bytes(fields["tokenizer.chat_template"].parts[-1]).decode()
    assert "<|im_start|>" in template and bytes(fields["general.architecture"].parts[-1]) == b"llama"
    kinds = {tensor.name: tensor.tensor_type.name for tensor in reader.tensors}
    assert kinds["blk.0.attn_norm.weight"] == "F32" and kinds["blk.0.attn_q.weight"] == quant.upper()
    merged = AutoModelForCausalLM.from_pretrained(merged_run_dir / "merged", dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(merged_run_dir / "merged")
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    from_gguf = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    assert [from_gguf(q)["input_ids"] for q in QUESTIONS] == [tokenizer(q)["input_ids"] for q in QUESTIONS]
    reference = _greedy(merged, tokenizer)
    if quant == "f16":
        assert [answer.tolist() for answer, _ in _greedy(loaded, tokenizer)] == [answer.tolist()
                for answer, _ in reference]
    else:  # 8-bit blocks: the same next token nearly everywhere (97% seen), the first answer token always
        assert _agreement(loaded, reference) >= 0.9
        assert [answer[start].item() for answer, start in _greedy(loaded, tokenizer)] == [a[s].item()
                for a, s in reference]
    card = (merged_run_dir / "export" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\nlicense: apache-2.0")


def test_ollama_gets_a_modelfile_with_the_runs_template_prompt_and_stops(merged_run_dir: Path) -> None:
    out = merged_run_dir / "ollama"
    assert main(["export", str(merged_run_dir), "--format", "ollama", "--out", str(out)]) == 0
    text = (out / "Modelfile").read_text(encoding="utf-8")
    assert "FROM ./acme.q8_0.gguf\n" in text and (out / "acme.q8_0.gguf").is_file()
    assert ('{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
            '<|im_start|>assistant\n"""') in text
    assert 'SYSTEM """You are ACME support. \\"\\"\\"Be brief.\\"\\"\\""""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0" in text


def test_unsupported_quants_and_missing_merges_are_explained(merged_run_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(merged_run_dir), "--quant", "q5_k_s"]) == 2
    assert "--quant q5_k_s: this export writes q8_0, f16, q4_k_m" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # llama-cpp-python not installed: import fails
    assert main(["export", str(merged_run_dir), "--quant", "q4_k_m", "--out", str(tmp_path / "k")]) == 2
    err = capsys.readouterr().err
    assert "needs llama.cpp's quantizer: pip install 'tunebot[gguf]'" in err and "llama-quantize NAME.f16.gguf" in err
    assert not list((tmp_path / "k").glob("*.gguf*")), "no partial file is left behind"
    (tmp_path / "config.yaml").write_text("name: x\n", encoding="utf-8")
    assert main(["export", str(tmp_path)]) == 2
    assert "no merged model; run `tunebot merge CONFIG`" in capsys.readouterr().err
