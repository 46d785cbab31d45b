"""The Gradio A/B page through gradio_client: both panes answer, a vote lands in feedback.jsonl,
and markup in an answer is shown as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, serving

from serve.engine_hf import TransformersEngine
from serve.gateway import GatewaySettings, create_app
from serve.ui import mount_ui, shown


@pytest.fixture(scope="module")
def page(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    feedback = tmp_path_factory.mktemp("serve") / "feedback.jsonl"
    engine = TransformersEngine(str(tiny_model_dir), None, max_model_len=256)
    app = create_app(engine, GatewaySettings(system_prompt="S", api_key=None, max_model_len=256, default_max_tokens=8))
    port = free_port()  # the page calls the API of the same server
    app = mount_ui(app, f"http://127.0.0.1:{port}/v1", None, ["base", "base"], feedback)
    with serving(app, port) as url:
        yield url, feedback


def test_both_panes_answer_and_a_vote_is_saved(page: tuple[str, Path]) -> None:
    from gradio_client import Client

    url, feedback = page
    client = Client(f"{url}/ui/", verbose=False)
    left, right, box, status = client.predict("返品できますか？", api_name="/ab_send")  # State stays server-side
    assert [m["role"] for m in left] == ["user", "assistant"] and [m["role"] for m in right] == ["user", "assistant"]
    assert box == "" and left[1]["content"] and right[1]["content"]
    message = client.predict(api_name="/vote_A")
    assert "Vote saved: A" in message
    entry = json.loads(feedback.read_text(encoding="utf-8").splitlines()[-1])
    assert entry["vote"] == "A" and entry["conversation"] == [{"role": "user", "content": "返品できますか？"}]


def test_markup_in_answers_is_shown_as_text() -> None:
    assert shown('<script>alert("x")</script><b>hi</b>') == '&lt;script&gt;alert("x")&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;'
