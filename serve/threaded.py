"""Runs an ASGI app (the gateway, the page) with uvicorn in a background thread: for tests and benchmarks.

    with serving(create_app(engine, settings)) as url: ...
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app: Any, port: int | None = None, drain_s: int | None = None) -> Iterator[str]:
    """Serves `app` on 127.0.0.1 (a free port unless given) until the block ends; yields its base URL.

    `drain_s`: how long open requests may run on at the end before they are cancelled (uvicorn's
    timeout_graceful_shutdown; None waits for them)."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=drain_s))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
