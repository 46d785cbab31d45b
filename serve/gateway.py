"""The OpenAI-compatible gateway: auth, validation, admission, deadlines, metrics, in front of an engine.

    tunebot serve runs/acme-demo          # then: curl -H "Authorization: Bearer $KEY" localhost:8000/v1/models

Routes: GET /health (no key needed: for load balancers), GET /metrics (Prometheus text),
GET /v1/models, POST /v1/chat/completions (with and without "stream": true). Every request
except /health needs `Authorization: Bearer <key>` when a key is set. A conversation without a
system message gets the run's system prompt, so serving sees the training-time prompt. `model`
names a system (serve/systems.py: retrieval, base, rag, tuned, tuned_rag); every response carries
`"tunebot": {"system", "retrieved"}` (the ids of the FAQ pairs used; in a stream, in the first
chunk).

One client cannot take the server down:
- the body is refused (413) past `serve.max_body_mb` before it is parsed, then parsed and
  validated in a worker thread (serve/protocol.py: one strict model, 400 naming the field); so
  are retrieval and tokenising, so /health and the page never wait for a big prompt;
- each model admits at most `serve.max_queue` requests (waiting + running): beyond, 429 with
  Retry-After; each request has `serve.request_timeout_s` (504, or an error event in a stream);
- a client that goes away cancels its generation (the engine stops generating for it), also
  while it waits: a request whose client has gone is dropped before it starts;
- a failure inside generation ends that request with a 503 (a stream: an error event, then the
  end of the stream) and frees the engine;
- metrics label requests only by served model names (anything else is `unknown`) and count every
  outcome by its real status: 400, 404, 413, 429, 499 (the client went away), 503, 504.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from serve.admission import Admission
from serve.protocol import RequestError, error_response, parse_request
from serve.systems import SystemRouter


@dataclass
class GatewaySettings:
    """What the gateway enforces."""

    system_prompt: str
    api_key: str | None = None
    max_model_len: int = 2048
    default_max_tokens: int = 256
    max_queue: int = 64
    request_timeout_s: float = 300.0
    max_body_mb: float = 4.0


class Metrics:
    """Prometheus counters and histograms of one gateway (own registry: several apps per process).

    The model label takes only the names this gateway serves (anything else counts as `unknown`),
    so made-up model names cannot grow the registry."""

    def __init__(self, names: list[str]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.names = set(names)
        self.registry = CollectorRegistry()
        self.requests = Counter("tunebot_requests", "Chat requests by model and HTTP status", ["model", "status"],
                                registry=self.registry)
        self.tokens = Counter("tunebot_generated_tokens", "Generated tokens by model", ["model"],
                              registry=self.registry)
        self.latency = Histogram("tunebot_request_seconds", "Chat request latency by model", ["model"],
                                 registry=self.registry, buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))

    def label(self, model: str | None) -> str:
        """The model label of a request: a served name, else `unknown`."""
        return model if model in self.names else "unknown"

    def count(self, model: str | None, status: int, seconds: float | None = None, tokens: int = 0) -> None:
        """Counts one finished request by its real status (and its latency and tokens when served)."""
        label = self.label(model)
        self.requests.labels(label, str(status)).inc()
        if status == 200 and seconds is not None:
            self.latency.labels(label).observe(seconds)
        if tokens:
            self.tokens.labels(label).inc(tokens)


def install_errors(app: Any) -> None:
    """Turns HTTP errors (unknown routes, wrong methods) into OpenAI-style bodies."""
    from starlette.exceptions import HTTPException

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, error: HTTPException) -> Any:
        return error_response(error.status_code, str(error.detail)[:200], kind="invalid_request_error"
                              if error.status_code < 500 else "server_error")


def _check_key(settings: GatewaySettings, header: str | None) -> bool:
    if not settings.api_key:
        return True
    scheme, _, token = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), settings.api_key.encode())


class KeyCheck:
    """ASGI middleware: every path but /health and /ui (the page has its own login, serve/ui.py) needs the key.

    A plain ASGI middleware, not Starlette's BaseHTTPMiddleware, whose wrapped `receive` hides a
    client's disconnect from the app (and so from the cancellation of its generation)."""

    def __init__(self, app: Any, settings: GatewaySettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path != "/health" and not path.startswith("/ui"):
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            if not _check_key(self.settings, header):
                response = error_response(401, "missing or invalid API key (Authorization: Bearer <key>)",
                                          kind="authentication_error")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """The request body passed serve.max_body_mb."""


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (declared or as it arrives)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(engine: Any, settings: GatewaySettings, on_start: Any = None) -> Any:
    """Builds the FastAPI app serving `engine` under `settings`; `on_start` (async, optional) runs at startup.

    `engine` is a SystemRouter (every system of the run), or a bare engine (its own models only).
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    from serve.answer import answer

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        if on_start is not None:
            await on_start()
        yield

    app = FastAPI(title="tunebot", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    router = engine if isinstance(engine, SystemRouter) else SystemRouter(engine)
    engine = router.engine
    metrics = Metrics(router.names())
    admission = Admission(settings.max_queue, engine.concurrency)
    install_errors(app)

    app.add_middleware(KeyCheck, settings=settings)

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
        return {"object": "list",
                "data": [{"id": name, "object": "model", "owned_by": "tunebot"} for name in router.names()]}

    async def chat(request: Request) -> Any:
        try:
            body = await read_body(request, int(settings.max_body_mb * 2**20))
        except BodyTooLarge:
            metrics.count(None, 413)
            return error_response(413, f"request body over serve.max_body_mb ({settings.max_body_mb:g} MB)")
        try:
            parsed = await asyncio.to_thread(parse_request, body)
        except RequestError as error:
            metrics.count(None, 400)
            return error_response(400, str(error), error.param)
        return await answer(router, settings, metrics, admission, parsed, request)

    chat.__annotations__["request"] = Request  # the raw Request (a class, not the string): FastAPI parses nothing
    app.add_api_route("/v1/chat/completions", chat, methods=["POST"])
    return app
