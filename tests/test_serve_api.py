"""The gateway with the transformers engine on the tiny model, called with the official openai client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from conftest import serving

from serve.engine_hf import TransformersEngine
from serve.gateway import GatewaySettings, create_app
from tunebot.prompts import make_record, render_prompt

KEY = "test-key-1234567890"
SYSTEM = "You are ACME support. あなたはACMEのサポート担当です。"


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tiny_adapter: Path) -> Iterator[tuple[str, TransformersEngine]]:
    engine = TransformersEngine(str(tiny_model_dir), tiny_adapter, max_model_len=256)
    app = create_app(engine,
                     GatewaySettings(system_prompt=SYSTEM, api_key=KEY, max_model_len=256, default_max_tokens=16))
    with serving(app) as url:
        yield url, engine


def _client(url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def test_models_and_answers_from_base_and_tuned(server: tuple[str, TransformersEngine]) -> None:
    url, _ = server
    client = _client(url)
    assert [m.id for m in client.models.list().data] == ["base", "tuned"]
    answers = {}
    for model in ("base", "tuned"):
        response = client.chat.completions.create(model=model,
                                                  messages=[{"role": "user", "content": "返品できますか？"}],
                                                  max_tokens=12)
        assert response.usage.completion_tokens > 0 and response.choices[0].finish_reason in ("stop", "length")
        answers[model] = response.choices[0].message.content
    assert answers["base"] != answers["tuned"]  # the adapter is applied to tuned only


def test_streaming_gives_the_same_answer(server: tuple[str, TransformersEngine]) -> None:
    url, _ = server
    client = _client(url)
    messages = [{"role": "user", "content": "How long do refunds take?"}]
    whole = client.chat.completions.create(model="tuned", messages=messages, max_tokens=12).choices[0].message.content
    pieces = [chunk.choices[0].delta.content or "" for chunk in
              client.chat.completions.create(model="tuned", messages=messages, max_tokens=12, stream=True)]
    assert len([p for p in pieces if p]) >= 2 and "".join(pieces).strip() == whole


def test_serving_prompt_equals_training_prompt(server: tuple[str, TransformersEngine]) -> None:
    from trl.data_utils import apply_chat_template

    _, engine = server
    record = make_record("q1", "faq.csv:2", "ja", SYSTEM, "返品できますか？", "30日以内なら返品できます。")
    trained = apply_chat_template({"prompt": record["prompt"], "completion": record["completion"]}, engine.tokenizer)
    from tunebot.prompts import with_system_prompt

    served = render_prompt(engine.tokenizer,
                           with_system_prompt([{"role": "user", "content": "返品できますか？"}], SYSTEM))
    assert served == trained["prompt"]


def test_auth_is_required_except_for_health(server: tuple[str, TransformersEngine]) -> None:
    url, _ = server
    with pytest.raises(openai.AuthenticationError):
        _client(url, "wrong-key").models.list()
    assert httpx.get(f"{url}/v1/models").status_code == 401
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200 and health.json()["models"] == ["base", "tuned"]


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}, 404, "available: base, tuned"),
    ({"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": "base", "messages": []}, 400, "messages"),
    ({"model": "base", "messages": [{"role": "user", "content": "  "}]}, 400, "empty"),
    ({"model": "base", "messages": [{"role": "user", "content": "word " * 400}], "max_tokens": 8}, 400, "context"),
    ({"model": "base", "messages": [{"role": "user", "content": "hi"}], "n": 3}, 400, "n"),
])
def test_bad_requests_get_clear_4xx_and_the_server_keeps_serving(server: tuple[str, TransformersEngine], body: dict,
                                                                 status: int, fragment: str) -> None:
    url, _ = server
    headers = {"Authorization": f"Bearer {KEY}"}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert response.status_code == status and fragment in response.json()["error"]["message"]
    broken = httpx.post(f"{url}/v1/chat/completions", content=b'{"model": "base", "messages": [',
                        headers={**headers, "Content-Type": "application/json"})
    assert broken.status_code == 400 and "malformed JSON" in broken.json()["error"]["message"]
    ok = _client(url).chat.completions.create(model="base", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert ok.choices[0].message.content is not None


def test_metrics_count_requests(server: tuple[str, TransformersEngine]) -> None:
    url, _ = server
    _client(url).chat.completions.create(model="base", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert 'tunebot_requests_total{model="base",status="200"}' in text and "tunebot_request_seconds_bucket" in text
