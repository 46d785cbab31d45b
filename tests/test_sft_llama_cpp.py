"""The exported GGUF files loaded back in llama.cpp itself (llama-cpp-python): template, tokenizer and answers.

    make test-gguf          # builds llama-cpp-python (~6 min on 2 cores), then runs these

f16 and q8_0 must answer as the merged model does; q4_k_m (llama.cpp's own quantizer) is lossy on
the 135M default model, so its check is the share of the merged model's greedy tokens it picks
given the same prefix, with the figure measured here written next to the bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXPORT_QUESTIONS as QUESTIONS
from tunebot.cli import main

pytestmark = pytest.mark.llamacpp
# Greedy tokens of the merged model that llama.cpp picks too, with the same prefix. Measured 2026-12-02:
# f16 48/48, q8_0 44/48, q4_k_m 39/48 (SmolLM2's 576-wide rows fall back to q5_0 in llama.cpp's q4_k_m mix).
AGREEMENT = {"f16": 1.0, "q8_0": 0.85, "q4_k_m": 0.7}


def _reference(merged: Path) -> list[tuple[str, list[int], int, str]]:
    """Each question's prompt text, prompt + greedy answer ids, the prompt's length and the answer text."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    found = []
    for question in QUESTIONS:
        text = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                             tokenize=False)
        ids = tokenizer(text, return_tensors="pt")
        sequence = model.generate(**ids, max_new_tokens=16, do_sample=False)[0].tolist()
        start = ids["input_ids"].shape[1]
        found.append((text, sequence, start, tokenizer.decode(sequence[start:], skip_special_tokens=True).strip()))
    return found


@pytest.fixture(scope="module")
def reference(merged_run_dir: Path) -> list[tuple[str, list[int], int, str]]:
    return _reference(merged_run_dir / "merged")


@pytest.mark.parametrize("quant", ["f16", "q8_0", "q4_k_m"])
def test_llama_cpp_loads_the_export_and_answers_as_the_merged_model(merged_run_dir: Path, quant: str, reference: list,
                                                                   tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: make test-gguf")
    assert main(["export", str(merged_run_dir), "--quant", quant, "--out", str(tmp_path)]) == 0
    llm = llama_cpp.Llama(str(tmp_path / f"acme.{quant}.gguf"), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    try:
        same = total = 0
        for question, (text, sequence, start, answer) in zip(QUESTIONS, reference):
            assert llm.tokenize(text.encode(), add_bos=False, special=True) == sequence[:start]  # the GGUF's vocabulary
            llm.reset()
            llm.eval(sequence[:-1])
            picks = llm.scores[start - 1:len(sequence) - 1].argmax(-1).tolist()
            same += sum(pick == token for pick, token in zip(picks, sequence[start:]))
            total += len(sequence) - start
            if quant != "q4_k_m":
                assert picks[0] == sequence[start], f"{quant}: another first answer token for {question!r}"
            if quant == "f16":  # the same greedy answer, also prompted through the GGUF's own chat template
                llm.reset()
                greedy = [token
                          for token, _ in zip(llm.generate(sequence[:start], temp=0.0), range(len(sequence) - start))]
                assert greedy == sequence[start:start + len(greedy)]
                reply = llm.create_chat_completion([{"role": "user", "content": question}], temperature=0,
                                                   max_tokens=16)
                assert reply["choices"][0]["message"]["content"].strip().startswith(answer.rstrip("\ufffd"))
        print(f"{quant}: {same}/{total} greedy tokens agree")
        assert same / total >= AGREEMENT[quant], f"{quant}: {same}/{total} greedy tokens agree"
    finally:
        llm.close()
