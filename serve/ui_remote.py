"""The A/B page alone, in front of a remote OpenAI-compatible endpoint (another tunebot, vLLM, a hosted API).

    tunebot ui http://gpu-box:8000/v1 --api-key "$TUNEBOT_API_KEY"     # page at http://127.0.0.1:7860/ui/

The page lists the endpoint's models (base and tuned first where it has them) and calls it with
the openai client, exactly as `tunebot serve --ui` does; votes go to a local feedback file.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from serve.server import ServeError, check_key, is_loopback


def list_models(api_url: str, api_key: str | None) -> list[str]:
    """The model ids the endpoint serves; a clear error if it cannot be reached or serves none.

    >>> list_models("http://127.0.0.1:9/v1", None)  # doctest: +SKIP
    ['base', 'tuned']
    """
    from openai import OpenAI

    client = OpenAI(base_url=api_url, api_key=api_key or "not-needed", max_retries=0, timeout=30)
    try:
        names = [model.id for model in client.models.list().data]
    except Exception as error:  # connection refused, 401, not an OpenAI API: all one message
        raise ServeError(f"{api_url}: cannot list models ({type(error).__name__}: {error})") from None
    if not names:
        raise ServeError(f"{api_url}: the endpoint serves no models")
    return names


def remote_app(api_url: str, api_key: str | None, feedback: Path, models: list[str] | None = None) -> Any:
    """A page-only ASGI app: the A/B page at /ui/ for `api_url`, and / redirecting to it."""
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from serve.ui import mount_ui

    names = models or list_models(api_url, api_key)
    app = FastAPI(title="tunebot page")
    app.get("/", include_in_schema=False)(lambda: RedirectResponse("/ui/"))
    return mount_ui(app, api_url.rstrip("/"), api_key, names, feedback)


def ui_command(args: argparse.Namespace) -> int:
    """The CLI entry of `tunebot ui`: serves the page until Ctrl-C."""
    import uvicorn

    key = check_key(args.api_key if args.api_key is not None else os.environ.get("TUNEBOT_API_KEY"))
    if not is_loopback(args.host) and not key:
        raise ServeError(f"refusing to bind {args.host} without an API key (it is the page's password): pass "
                         "--api-key or set TUNEBOT_API_KEY (or bind 127.0.0.1)")
    models = [name.strip() for name in args.models.split(",")] if args.models else None
    app = remote_app(args.api_url, key, Path(args.feedback), models)
    print(f"ui: page at http://{args.host}:{args.port}/ui/ for {args.api_url} (feedback -> {args.feedback})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
