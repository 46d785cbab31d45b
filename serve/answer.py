"""One chat request's life in the gateway: admitted, prepared off the event loop, generated, ended.

    await answer(router, settings, metrics, admission, parse_request(body), request)

Every request ends in exactly one counted outcome, and its place in the model's queue is given
back whatever happens (tested in tests/test_serve_abuse.py):
- 404 unknown model (the name is not echoed past 64 characters), 429 queue full (Retry-After);
- 400 prompt + max_tokens over the context (found in a worker thread, with retrieval);
- 200 an answer, cut at the first `stop` string (finish_reason "stop") or at max_tokens ("length");
- 499 the client went away: the generation is cancelled, and a request still waiting for the
  engine when its client leaves never starts;
- 504 past serve.request_timeout_s (waiting included); 503 the engine failed.
A stream that fails after it started gets an error event and then ends (no [DONE]).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from serve.admission import Admission, StopScanner
from serve.engine_hf import Delta, EngineError, Sampling
from serve.protocol import ChatRequest, RequestError, error_body, error_response
from serve.systems import Plan, SystemRouter
from tunebot.prompts import with_system_prompt

CLIENT_GONE = 499  # nginx's status for a request whose client closed the connection
DISCONNECT_POLL_S = 0.5
CHARS_PER_TOKEN_BOUND = 128  # no token of the default tokenizer spans more (its longest: 81): longer is surely too long


class ClientGone(Exception):
    """The client disconnected before its answer was done."""


class DeadlineExceeded(Exception):
    """The request ran past serve.request_timeout_s."""


def _short(text: str, limit: int = 64) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _extra(plan: Plan) -> dict:
    """The documented extra field of every response: which system answered and the FAQ pairs it used."""
    return {"tunebot": {"system": plan.system, "retrieved": plan.retrieved}}


def _completion_body(request_id: str, plan: Plan, done: Delta) -> dict:
    usage = {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
             "total_tokens": done.prompt_tokens + done.completion_tokens}
    return {"id": request_id, "object": "chat.completion", "created": int(time.time()), "model": plan.system,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                         "finish_reason": done.finish_reason}], "usage": usage, **_extra(plan)}


def _chunk(request_id: str, model: str, delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
    body = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def prepare(router: SystemRouter, settings: Any, request: ChatRequest) -> tuple[Plan, Sampling]:
    """The plan (retrieval included) and sampling of a request; RequestError when it cannot fit (a worker thread)."""
    messages = with_system_prompt(request.conversation(), settings.system_prompt)
    chars = sum(len(message["content"]) for message in messages)
    if chars > CHARS_PER_TOKEN_BOUND * settings.max_model_len:  # refused before retrieval and tokenising
        raise RequestError(
            f"the conversation is {chars} characters, far over the model's {settings.max_model_len}-token "
                           "context: shorten it", "messages")
    sampling = Sampling(request.limit(settings.default_max_tokens), request.temperature, request.top_p, request.seed,
                        tuple(request.stops()))
    plan = router.plan(request.model, messages)
    if plan.model is not None:
        prompt = len(router.engine.prompt_ids(plan.messages))
        if prompt + sampling.max_tokens > settings.max_model_len:
            raise RequestError(f"prompt of {prompt} tokens + max_tokens {sampling.max_tokens} exceeds the model's "
                               f"{settings.max_model_len}-token context: shorten the conversation or lower max_tokens",
                               "messages")
    return plan, sampling


async def _engine_deltas(engine: Any, plan: Plan, sampling: Sampling, cancel: threading.Event,
                         gone: Callable[[], Awaitable[bool]]) -> AsyncIterator[Delta]:
    """The answer's pieces: from the engine once a slot is free (and the client still there), or ready-made."""
    if plan.model is None:
        yield Delta(plan.answer or "")
        yield Delta("", "stop")
        return
    async with engine.slots:
        if cancel.is_set() or await gone():
            raise ClientGone
        async with aclosing(engine.stream(plan.model, plan.messages, sampling, cancel)) as pieces:
            async for delta in pieces:
                yield delta


async def _deltas(engine: Any, plan: Plan, sampling: Sampling, cancel: threading.Event,
                  gone: Callable[[], Awaitable[bool]], deadline: float) -> AsyncIterator[Delta]:
    """The engine's pieces cut at the first stop string, each awaited against the deadline."""
    scanner, texts = StopScanner(sampling.stop), []
    async with aclosing(_engine_deltas(engine, plan, sampling, cancel, gone)) as pieces:
        iterator = pieces.__aiter__()
        while True:
            try:  # in this task (no wait_for task): a cancelled request can close the generator at once
                async with asyncio.timeout_at(deadline):
                    delta = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                cancel.set()
                raise DeadlineExceeded from None
            if delta.finish_reason is not None:
                if tail := scanner.flush():
                    yield Delta(tail)
                yield delta
                return
            if text := scanner.feed(delta.text):
                texts.append(text)
                yield Delta(text)
            if scanner.stopped:
                cancel.set()
                used = len(engine.tokenizer("".join(texts), add_special_tokens=False)["input_ids"]) if plan.model else 0
                yield Delta("", "stop", 0, used)
                return


async def answer(router: SystemRouter, settings: Any, metrics: Any, admission: Admission, request: ChatRequest,
                 http: Any) -> Any:
    """Answers a validated request whole or as a stream; every path counts its outcome and frees its place."""
    if request.model not in router.names():
        metrics.count(request.model, 404)
        return error_response(404, f"model {_short(request.model)} not found; available: {', '.join(router.names())}",
                              "model")
    if not admission.admit(request.model):
        metrics.count(request.model, 429)
        wait = admission.retry_after(request.model)
        return error_response(429, f"{request.model}: {settings.max_queue} requests are already queued; retry in "
                              f"{wait} s", kind="rate_limit_error", headers={"Retry-After": str(wait)})
    began = asyncio.get_running_loop().time()
    release = _releaser(admission, request.model)
    try:
        plan, sampling = await asyncio.to_thread(prepare, router, settings, request)
    except RequestError as error:
        release(None)
        metrics.count(request.model, 400)
        return error_response(400, str(error), error.param)
    except Exception as error:  # a chat template or retrieval failing on this conversation: the server's error
        release(None)
        metrics.count(request.model, 500)
        return error_response(500, f"could not prepare the prompt: {type(error).__name__}: {str(error)[:200]}",
                              kind="server_error")
    ctx = _Context(router.engine, metrics, plan, sampling, began + settings.request_timeout_s, http.is_disconnected,
                   release)
    if request.stream:
        return _stream_response(ctx)
    try:
        return await _whole(ctx)
    finally:
        release(None)


def _releaser(admission: Admission, model: str) -> Callable[[float | None], None]:
    done = []

    def release(seconds: float | None) -> None:
        if not done:
            done.append(True)
            admission.release(model, seconds)

    return release


class _Context:
    """What the outcome paths of one admitted request share."""

    def __init__(self, engine: Any, metrics: Any, plan: Plan, sampling: Sampling, deadline: float,
                 gone: Callable[[], Awaitable[bool]], release: Callable[[float | None], None]) -> None:
        self.engine, self.metrics, self.plan, self.sampling, self.deadline = engine, metrics, plan, sampling, deadline
        self.gone, self.release, self.cancel = gone, release, threading.Event()
        self.began, self.id = time.perf_counter(), f"chatcmpl-{uuid.uuid4().hex}"

    def deltas(self) -> AsyncIterator[Delta]:
        return _deltas(self.engine, self.plan, self.sampling, self.cancel, self.gone, self.deadline)

    def served(self, tokens: int) -> None:
        seconds = time.perf_counter() - self.began
        self.metrics.count(self.plan.system, 200, seconds, tokens)
        self.release(seconds)


async def _collect(ctx: _Context) -> Delta:
    parts, last = [], Delta("")
    async with aclosing(ctx.deltas()) as deltas:
        async for delta in deltas:
            parts.append(delta.text)
            last = delta
    return Delta("".join(parts).strip(), last.finish_reason or "stop", last.prompt_tokens, last.completion_tokens)


async def _whole(ctx: _Context) -> Any:
    """A whole answer, watching for the client's disconnect while it is made."""
    task = asyncio.create_task(_collect(ctx))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and await ctx.gone():
                raise ClientGone
        done = task.result()
    except ClientGone:
        ctx.cancel.set()
        task.cancel()
        ctx.metrics.count(ctx.plan.system, CLIENT_GONE)
        return error_response(CLIENT_GONE, "the client closed the connection")
    except DeadlineExceeded:
        ctx.metrics.count(ctx.plan.system, 504)
        return error_response(504, "the answer took longer than serve.request_timeout_s", kind="timeout_error")
    except EngineError as error:
        ctx.metrics.count(ctx.plan.system, 503)
        return error_response(503, str(error)[:500], kind="server_error")
    finally:
        ctx.cancel.set()
    ctx.served(done.completion_tokens)
    return _completion_body(ctx.id, ctx.plan, done)


def _stream_response(ctx: _Context) -> Any:
    """Server-sent events; the queue place is freed when the response ends, however it ends."""
    from starlette.responses import StreamingResponse

    class Released(StreamingResponse):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            try:
                await super().__call__(scope, receive, send)
            finally:
                ctx.cancel.set()
                ctx.release(None)

    return Released(_events(ctx), media_type="text/event-stream")


async def _events(ctx: _Context) -> AsyncIterator[str]:
    """OpenAI's chunk format, ending with [DONE]; a failure after the start is an error event, then the end."""
    model, tokens, finish = ctx.plan.system, 0, "stop"
    yield _chunk(ctx.id, model, {"role": "assistant", "content": ""}, extra=_extra(ctx.plan))
    try:
        async with aclosing(ctx.deltas()) as deltas:
            async for delta in deltas:
                if delta.text:
                    yield _chunk(ctx.id, model, {"content": delta.text})
                if delta.finish_reason is not None:
                    tokens, finish = delta.completion_tokens, delta.finish_reason
    except ClientGone:  # gone while waiting for the engine: nothing more to send
        ctx.metrics.count(model, CLIENT_GONE)
        return
    except asyncio.CancelledError:  # gone while streaming: Starlette cancels the response
        ctx.metrics.count(model, CLIENT_GONE)
        raise
    except (DeadlineExceeded, EngineError) as error:
        status, kind = (504, "timeout_error") if isinstance(error, DeadlineExceeded) else (503, "server_error")
        ctx.metrics.count(model, status)
        message = "the answer took longer than serve.request_timeout_s" if status == 504 else str(error)[:500]
        yield f"data: {json.dumps(error_body(message, kind), ensure_ascii=False)}\n\n"
        return
    finally:
        ctx.cancel.set()
    ctx.served(tokens)
    yield _chunk(ctx.id, model, {}, finish)
    yield "data: [DONE]\n\n"
