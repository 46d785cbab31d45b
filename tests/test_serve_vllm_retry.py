"""The gateway's vLLM client against a loopback HTTP server that drops connections the way a vLLM server can.

A pooled connection the server closes at the moment the gateway reuses it fails before any answer; the
gateway retries that once on a fresh connection. A connection that breaks mid-answer is not retried (the
caller already has part of the reply): the request ends with an EngineError naming the model.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from serve.engine_hf import EngineError, Sampling
from serve.engine_vllm import EngineProcess, VllmEngines

WORDS = ["Go to ", "Orders ", "and press Cancel."]


def _sse(words: list[str]) -> bytes:
    chunks = [{"choices": [{"delta": {"content": word}, "finish_reason": None}]} for word in words]
    chunks.append({"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 9,
                                                                                   "completion_tokens": 3}})
    return b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks) + b"data: [DONE]\n\n"


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    await reader.readexactly(length)


async def _serve(behaviours: list[str]) -> tuple[asyncio.Server, int]:
    """A server whose n-th connection 'drop's before answering, 'break's after one word, or answers 'whole'."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        behaviour = behaviours.pop(0)
        await _read_request(reader)
        if behaviour != "drop":
            body = _sse(WORDS)
            cut = body.index(b"\n\n") + 2 if behaviour == "break" else len(body)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body[:cut])
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _ask(tiny_model_dir: Path, behaviours: list[str]) -> tuple[list[str], str, list[str]]:
    server, port = await _serve(behaviours)
    engines = VllmEngines([EngineProcess("base", "", port, None, Path("engine.log"))], str(tiny_model_dir))
    words, finish = [], ""
    try:
        async for delta in engines.stream("base", [{"role": "user", "content": "cancel?"}], Sampling(max_tokens=8)):
            words.append(delta.text)
            finish = delta.finish_reason or finish
    finally:
        await engines.client.aclose()
        server.close()
    return words, finish, behaviours


def test_a_connection_dropped_before_any_answer_is_retried_once(tiny_model_dir: Path) -> None:
    words, finish, unused = asyncio.run(_ask(tiny_model_dir, ["drop", "whole", "whole"]))
    assert "".join(words) == "".join(WORDS) and finish == "stop"
    assert unused == ["whole"], "exactly one retry"


def test_two_drops_or_a_break_mid_answer_end_the_request_naming_the_model(tiny_model_dir: Path) -> None:
    with pytest.raises(EngineError, match="vLLM server for base failed"):
        asyncio.run(_ask(tiny_model_dir, ["drop", "drop", "whole"]))
    behaviours = ["break", "whole"]
    with pytest.raises(EngineError, match="vLLM server for base failed"):
        asyncio.run(_ask(tiny_model_dir, behaviours))
    assert behaviours == ["whole"], "a reply already begun is not asked again"
