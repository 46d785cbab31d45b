"""The OpenAI-compatible gateway: auth, validation, limits, metrics, in front of an engine.

    tunebot serve runs/acme-demo          # then: curl -H "Authorization: Bearer $KEY" localhost:8000/v1/models

Routes: GET /health (no key needed: for load balancers), GET /metrics (Prometheus text),
GET /v1/models, POST /v1/chat/completions (with and without "stream": true). Every request
except /health needs `Authorization: Bearer <key>` when a key is set. A conversation without a
system message gets the run's system prompt, so serving sees the training-time prompt. `model`
names a system (serve/systems.py: retrieval, base, rag, tuned, tuned_rag); every response carries
`"tunebot": {"system", "retrieved"}` (the ids of the FAQ pairs used; in a stream, in the first
chunk). Bad requests get a 4xx in OpenAI's error shape and the server keeps serving.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from serve.engine_hf import Sampling
from serve.protocol import ChatRequest, error_body
from serve.systems import Plan, SystemRouter
from tunebot.prompts import with_system_prompt


@dataclass
class GatewaySettings:
    """What the gateway enforces."""

    system_prompt: str
    api_key: str | None = None
    max_model_len: int = 2048
    default_max_tokens: int = 256


class Metrics:
    """Prometheus counters and histograms of one gateway (own registry: several apps per process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("tunebot_requests", "Chat requests by model and HTTP status", ["model", "status"],
                                registry=self.registry)
        self.tokens = Counter("tunebot_generated_tokens", "Generated tokens by model", ["model"], registry=self.registry)
        self.latency = Histogram("tunebot_request_seconds", "Chat request latency by model", ["model"],
                                 registry=self.registry, buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))


def _error(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error") -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(error_body(message, kind, param), status_code=status)


def _extra(plan: Plan) -> dict:
    """The documented extra field of every response: which system answered and the FAQ pairs it used."""
    return {"tunebot": {"system": plan.system, "retrieved": plan.retrieved}}


def _completion_body(request_id: str, plan: Plan, text: str, finish: str, prompt: int, completion: int) -> dict:
    return {"id": request_id, "object": "chat.completion", "created": int(time.time()), "model": plan.system,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            **_extra(plan)}


def _chunk(request_id: str, model: str, delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
    body = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def install_errors(app: Any) -> None:
    """Turns validation failures, malformed JSON and HTTP errors into OpenAI-style 4xx bodies."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, error: RequestValidationError) -> Any:
        problems = error.errors()
        first = problems[0] if problems else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        if first.get("type") == "json_invalid":
            return _error(400, f"malformed JSON body: {first.get('ctx', {}).get('error', first.get('msg'))}")
        if not where:
            return _error(400, "the request body must be a JSON object (Content-Type: application/json)")
        return _error(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}", where or None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, error: HTTPException) -> Any:
        return _error(error.status_code, str(error.detail), kind="invalid_request_error"
                      if error.status_code < 500 else "server_error")


def _check_key(settings: GatewaySettings, header: str | None) -> bool:
    if not settings.api_key:
        return True
    scheme, _, token = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip(), settings.api_key)


def _checked(router: SystemRouter, settings: GatewaySettings, request: ChatRequest) -> tuple[Plan, Sampling] | Any:
    """Returns (plan, sampling) or an error response for a request the engine must not see."""
    if request.model not in router.names():
        return _error(404, f"model {request.model!r} not found; available: {', '.join(router.names())}", "model")
    messages = with_system_prompt([m.model_dump() for m in request.messages], settings.system_prompt)
    sampling = Sampling(request.limit(settings.default_max_tokens), request.temperature, request.top_p, request.seed)
    plan = router.plan(request.model, messages)
    if plan.model is None:
        return plan, sampling
    prompt = len(router.engine.prompt_ids(plan.messages))
    if prompt + sampling.max_tokens > settings.max_model_len:
        return _error(400, f"prompt of {prompt} tokens + max_tokens {sampling.max_tokens} exceeds the model's "
                      f"{settings.max_model_len}-token context: shorten the conversation or lower max_tokens", "messages")
    return plan, sampling


def create_app(engine: Any, settings: GatewaySettings, on_start: Any = None) -> Any:
    """Builds the FastAPI app serving `engine` under `settings`; `on_start` (async, optional) runs at startup.

    `engine` is a SystemRouter (every system of the run), or a bare engine (its own models only).
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        if on_start is not None:
            await on_start()
        yield

    app = FastAPI(title="tunebot", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    router = engine if isinstance(engine, SystemRouter) else SystemRouter(engine)
    engine = router.engine
    metrics = Metrics()
    install_errors(app)

    @app.middleware("http")
    async def auth(request: Request, call_next: Any) -> Any:
        # /ui has its own login (password = the API key, see serve/ui.py); /health is for load balancers
        open_path = request.url.path == "/health" or request.url.path.startswith("/ui")
        if not open_path and not _check_key(settings, request.headers.get("authorization")):
            return _error(401, "missing or invalid API key (Authorization: Bearer <key>)", kind="authentication_error")
        return await call_next(request)

    @app.get("/health")
    async def health() -> Any:
        ok = engine.healthy()
        return JSONResponse({"status": "ok" if ok else "unhealthy", "engine": engine.kind, "models": router.names()},
                            status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> Any:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> Any:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "tunebot"} for name in router.names()]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Any:
        return await _chat(router, settings, metrics, body)

    return app


async def _chat(router: SystemRouter, settings: GatewaySettings, metrics: Metrics, body: ChatRequest) -> Any:
    """Validates one chat request, then answers it whole or as a stream (retrieval: without a model)."""
    from fastapi.responses import StreamingResponse

    checked = _checked(router, settings, body)
    if not isinstance(checked, tuple):
        metrics.requests.labels(body.model, str(checked.status_code)).inc()
        return checked
    plan, sampling = checked
    request_id, began = f"chatcmpl-{uuid.uuid4().hex}", time.perf_counter()
    if body.stream:
        return StreamingResponse(_streamed(router.engine, metrics, plan, sampling, request_id, began),
                                 media_type="text/event-stream")
    if plan.model is None:
        metrics.requests.labels(body.model, "200").inc()
        metrics.latency.labels(body.model).observe(time.perf_counter() - began)
        return _completion_body(request_id, plan, plan.answer or "", "stop", 0, 0)
    try:
        done = await router.engine.complete(plan.model, plan.messages, sampling)
    except Exception as error:  # an engine failure is the server's, reported, never a hang
        metrics.requests.labels(body.model, "503").inc()
        return _error(503, f"engine failed: {error}", kind="server_error")
    metrics.requests.labels(body.model, "200").inc()
    metrics.tokens.labels(body.model).inc(done.completion_tokens)
    metrics.latency.labels(body.model).observe(time.perf_counter() - began)
    return _completion_body(request_id, plan, done.text, done.finish_reason, done.prompt_tokens,
                            done.completion_tokens)


async def _pieces(engine: Any, plan: Plan, sampling: Sampling) -> AsyncIterator[str]:
    if plan.model is None:
        yield plan.answer or ""
        return
    async for piece in engine.stream(plan.model, plan.messages, sampling):
        yield piece


async def _streamed(engine: Any, metrics: Metrics, plan: Plan, sampling: Sampling, request_id: str,
                    began: float) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk format, ending with [DONE]."""
    model = plan.system
    yield _chunk(request_id, model, {"role": "assistant", "content": ""}, extra=_extra(plan))
    try:
        async for piece in _pieces(engine, plan, sampling):
            yield _chunk(request_id, model, {"content": piece})
    except Exception as error:  # the stream has started: report in-band
        metrics.requests.labels(model, "503").inc()
        yield f"data: {json.dumps(error_body(f'engine failed: {error}', 'server_error'))}\n\n"
        return
    metrics.requests.labels(model, "200").inc()
    metrics.latency.labels(model).observe(time.perf_counter() - began)
    yield _chunk(request_id, model, {}, "stop")
    yield "data: [DONE]\n\n"
