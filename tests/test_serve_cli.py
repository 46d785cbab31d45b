"""`tunebot serve` as users run it: starts, answers, refuses unsafe binds, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from conftest import free_port

from tunebot.cli import main
from tunebot.config import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def trained_run(run_config_file: Path) -> Path:
    assert main(["data", str(run_config_file)]) == 0
    assert main(["train", str(run_config_file)]) == 0
    cfg = load_config(run_config_file)
    return Path(cfg.runs_dir) / cfg.name


def test_serve_answers_then_stops_on_sigterm_without_orphans(trained_run: Path) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tunebot", "serve", str(trained_run), "--engine", "transformers",
                                "--port", str(port), "--api-key", "k1-0123456789abcdef"], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT,
                               text=True, cwd=ROOT, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "listening on" in line or not line:
                break
        assert "listening on" in lines[-1] and "retrieval, base, rag, tuned, tuned_rag" in lines[-1], "".join(lines)
        assert any("FAQ index of" in line and "val" in line and "test" in line for line in lines), "".join(lines)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k1-0123456789abcdef", max_retries=0)
        reply = client.chat.completions.create(model="tuned", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=4)
        assert reply.choices[0].message.content is not None
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    rest = process.stdout.read()
    assert code == 0 and "serve: stopped" in rest
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of its process group is left


def test_serve_refuses_a_public_bind_without_a_key(trained_run: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNEBOT_API_KEY", raising=False)
    assert main(["serve", str(trained_run), "--engine", "transformers", "--host", "0.0.0.0"]) == 2
    assert "without an API key" in capsys.readouterr().err
    assert main(["serve", str(trained_run.parent / "nope")]) == 2


def test_feedback_export_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from serve.feedback import append_feedback

    conversation = [{"role": "user", "content": "返品できますか？"}]
    vote = {"kind": "vote", "conversation": conversation, "blind": False, "labels": {"A": "base", "B": "tuned"},
            "answers": {"A": "no", "B": "はい"}, "vote": "B"}
    append_feedback(tmp_path / "serve" / "feedback.jsonl", vote)
    assert main(["feedback", "export", str(tmp_path)]) == 0
    assert "1 preference pairs" in capsys.readouterr().out
    pair = json.loads((tmp_path / "serve" / "preferences.jsonl").read_text(encoding="utf-8"))
    assert pair["chosen"][0]["content"] == "はい" and pair["chosen_model"] == "tuned"
    assert main(["feedback", "export", str(tmp_path / "empty")]) == 2
