"""One client cannot take the gateway down: strict validation, stop, failures, cancellation, admission,
deadlines, body limits and bounded metrics, on the transformers engine with the tiny model.

Where a test needs a generation that lasts, the tiny model's real forward pass is slowed by a
sleep (a latency injection: the tokens are still the model's own); where it needs a failure
inside generation, generate raises (a fault injection into the real engine thread).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import serving

from serve.engine_hf import IncrementalText, TransformersEngine
from serve.gateway import GatewaySettings, create_app

KEY = "abuse-test-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, tiny_adapter: Path) -> TransformersEngine:
    return TransformersEngine(str(tiny_model_dir), tiny_adapter, max_model_len=256)


def _app(engine: TransformersEngine, **settings: Any) -> Any:
    return create_app(engine, GatewaySettings(system_prompt="S", api_key=KEY, max_model_len=256, default_max_tokens=8,
                                              **settings))


@pytest.fixture
def slow(engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each forward pass of the tiny base model takes 20 ms more (200 tokens: 4 s or more)."""
    model = engine.models["base"]
    real = model.forward

    def slowed(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.02)
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "forward", slowed)
    yield


def _post(url: str, body: dict | bytes, timeout: float = 60) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/v1/chat/completions", content=content, timeout=timeout,
                      headers={**HEADERS, "Content-Type": "application/json"})


def _metrics(url: str) -> str:
    return httpx.get(f"{url}/metrics", headers=HEADERS).text


def _wait(condition: Any, limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize(("extra", "param"), [
    ({"max_tokens": "8"}, "max_tokens"), ({"seed": 2**70}, "seed"), ({"temperature": "0"}, "temperature"),
    ({"stream": "true"}, "stream"), ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"tool_choice": "auto"}, "tool_choice"), ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logprobs": True}, "logprobs"), ({"n": 2}, "n"), ({"functions": []}, "functions"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages.0.content.0.type"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"), ({"stop": ["a"] * 5}, "stop"),
])
def test_every_field_is_validated_and_unsupported_parameters_are_refused(engine: TransformersEngine, extra: dict,
                                                                          param: str) -> None:
    with serving(_app(engine)) as url:
        response = _post(url, {"model": "base", "messages": HI, **extra})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert param in error["message"] and (error["param"] or param) == param
        assert engine.history.maxlen and _post(url, {"model": "base", "messages": HI,
                                                     "max_tokens": 2}).status_code == 200


@pytest.mark.parametrize("raw", [b'{"model": "base", "messages": [{"role": "user", "content": "\\ud800 hi"}]}',
                                 b'{"model": "base", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
                                 b'[1, 2]', b'{"model": "base", "messages": ['])
def test_broken_json_and_unicode_get_a_400_not_a_500(engine: TransformersEngine, raw: bytes) -> None:
    with serving(_app(engine)) as url:
        response = _post(url, raw)
        assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_stop_cuts_the_answer_before_the_stop_string(engine: TransformersEngine) -> None:
    with serving(_app(engine)) as url:
        # the tiny random base model answers newlines only; its random LoRA gives words
        body = {"model": "tuned", "messages": [{"role": "user", "content": "Tell me about returns."}], "max_tokens": 24}
        whole = _post(url, body).json()["choices"][0]["message"]["content"]
        assert len(whole) > 6, whole
        stop = whole[4:6]
        cut = _post(url, {**body, "stop": [stop, "never-seen-stop"]}).json()
        assert cut["choices"][0]["message"]["content"] == whole[:whole.index(stop)].strip()
        assert cut["choices"][0]["finish_reason"] == "stop"
        events = _stream_events(url, {**body, "stop": stop})
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if "choices" in e)
        assert text.strip() == whole[:whole.index(stop)].strip() and stop not in text


def _stream_events(url: str, body: dict) -> list[dict]:
    events = []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={**body, "stream": True}, headers=HEADERS,
                      timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[6:]))
            elif line == "data: [DONE]":
                events.append({"done": True})
    return events


def test_a_failure_inside_generation_ends_the_request_at_once(engine: TransformersEngine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OverflowError("int too big to convert")

    with serving(_app(engine)) as url:
        monkeypatch.setattr(engine.models["base"], "generate", broken)
        began = time.monotonic()
        whole = _post(url, {"model": "base", "messages": HI})
        events = _stream_events(url, {"model": "base", "messages": HI})
        assert time.monotonic() - began < 10
        assert whole.status_code == 503 and "OverflowError" in whole.json()["error"]["message"]
        assert "error" in events[-1] and not any(e.get("done") for e in events)  # an error event, then the end
        monkeypatch.undo()
        assert _post(url, {"model": "base", "messages": HI, "max_tokens": 2}).status_code == 200
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        assert 'status="503"} 2.0' in _metrics(url)


def test_a_client_that_disconnects_cancels_its_generation(engine: TransformersEngine, slow: None) -> None:
    with serving(_app(engine)) as url:
        before = len(engine.history)
        body = {"model": "base", "messages": HI, "max_tokens": 200, "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=HEADERS, timeout=60) as response:
            for number, _ in enumerate(response.iter_lines()):
                if number >= 6:
                    break  # leaves the block: the connection closes mid-stream
        _wait(lambda: len(engine.history) > before)
        assert engine.history[-1]["cancelled"] and engine.history[-1]["tokens"] < 100
        _wait(lambda: 'status="499"}' in _metrics(url))


def test_a_request_whose_client_left_while_waiting_never_starts(engine: TransformersEngine, slow: None) -> None:
    with serving(_app(engine)) as url:
        before = len(engine.history)
        first = threading.Thread(target=_post, args=(url, {"model": "base", "messages": HI, "max_tokens": 60}))
        first.start()
        time.sleep(0.5)
        with pytest.raises(httpx.ReadTimeout):  # a whole answer: this client gives up while the engine is busy
            _post(url, {"model": "base", "messages": HI, "max_tokens": 60}, timeout=0.5)
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=HEADERS, timeout=60,
                          json={"model": "base", "messages": HI, "max_tokens": 60, "stream": True}) as response:
            next(response.iter_lines())  # the role chunk comes at once; then this client leaves too
        first.join()
        time.sleep(1.5)
        assert len(engine.history) == before + 1  # only the first request ever generated
        assert 'status="499"} 2.0' in _metrics(url)


def test_a_full_queue_gets_429_with_retry_after_and_a_deadline_gives_504(engine: TransformersEngine,
        slow: None) -> None:
    with serving(_app(engine, max_queue=1, request_timeout_s=1.0)) as url:
        first = threading.Thread(target=_post, args=(url, {"model": "base", "messages": HI, "max_tokens": 200}))
        first.start()
        time.sleep(0.3)
        refused = _post(url, {"model": "base", "messages": HI})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert _post(url, {"model": "retrieval", "messages": HI}).status_code == 404  # no index: not served
        first.join()
        timed_out = _post(url, {"model": "base", "messages": HI, "max_tokens": 200})
        assert timed_out.status_code == 504
        events = _stream_events(url, {"model": "base", "messages": HI, "max_tokens": 200})
        assert "timeout" in events[-1]["error"]["type"]
        text = _metrics(url)
        assert 'status="429"} 1.0' in text and 'status="504"} 3.0' in text


def test_big_bodies_are_refused_unparsed_while_health_stays_responsive(engine: TransformersEngine) -> None:
    with serving(_app(engine, max_body_mb=1.0)) as url:
        big = json.dumps({"model": "base", "messages": [{"role": "user", "content": "x" * 10_000_000}]}).encode()
        statuses, pauses = [], []
        senders = [threading.Thread(target=lambda: statuses.append(_post(url, big).status_code)) for _ in range(3)]
        for sender in senders:
            sender.start()
        while any(sender.is_alive() for sender in senders):
            began = time.monotonic()
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
            pauses.append(time.monotonic() - began)
        assert statuses == [413] * 3 and max(pauses) < 1.0
        medium = json.dumps({"model": "base", "messages": [{"role": "user", "content": "y" * 900_000}]}).encode()
        assert _post(url, medium).status_code == 400  # parsed (in a thread), then too long for the context


def test_made_up_model_names_do_not_grow_metrics_or_echo_back(engine: TransformersEngine) -> None:
    with serving(_app(engine)) as url:
        for number in range(200):
            response = _post(url, {"model": f"model-{number}-" + "z" * 200, "messages": HI})
            assert response.status_code == 404 and len(response.text) < 400
        text = _metrics(url)
        assert len(text) < 20_000 and "model-1" not in text and 'model="unknown",status="404"} 200.0' in text


def test_shutdown_cancels_a_running_generation_after_the_drain_time(engine: TransformersEngine, slow: None) -> None:
    before = len(engine.history)
    began = None
    with serving(_app(engine), drain_s=1) as url:
        chunks: list[str] = []

        def listen() -> None:
            try:
                with httpx.stream("POST", f"{url}/v1/chat/completions", headers=HEADERS, timeout=60,
                                  json={"model": "base", "messages": HI, "max_tokens": 200,
                                        "stream": True}) as response:
                    for line in response.iter_lines():
                        chunks.append(line)
            except httpx.HTTPError:
                pass

        listener = threading.Thread(target=listen)
        listener.start()
        _wait(lambda: len(chunks) > 4)
        began = time.monotonic()
    assert time.monotonic() - began < 5
    _wait(lambda: len(engine.history) > before)
    assert engine.history[-1]["cancelled"]
    listener.join(timeout=10)


def test_streamed_japanese_never_shows_a_broken_character(engine: TransformersEngine) -> None:
    text = "アニメの返品は「マイページ」から、５営業日以内に承ります。🙇"
    ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert any("\ufffd" in engine.tokenizer.decode([i]) for i in ids)  # some tokens carry half a character
    stream = IncrementalText(engine.tokenizer)
    pieces = [stream.add([i]) for i in ids] + [stream.finish()]
    assert not any("\ufffd" in piece for piece in pieces) and "".join(pieces) == text
    cut = IncrementalText(engine.tokenizer)
    partial = [cut.add([i]) for i in ids[:-1]] + [cut.finish()]  # generation ends inside the emoji
    assert not any("\ufffd" in piece for piece in partial) and "".join(partial) == text[:-1]


def test_short_or_blank_api_keys_are_refused_at_start() -> None:
    from serve.server import ServeError, check_key

    for bad in (" ", "short-key", " " * 20, " padded-key-0123456789 "):
        with pytest.raises(ServeError, match="at least 16"):
            check_key(bad)
    assert check_key(KEY) == KEY and check_key(None) is None
