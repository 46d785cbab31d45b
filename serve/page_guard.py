"""ASGI middleware in front of the Gradio page when it has a login: nothing for visitors who are not logged in.

    app.add_middleware(PageGuard, prefix="/ui", page=gradio_app)     # done by serve.ui.mount_ui

Gradio (6.31) leaves several routes of a page with a login open: its heartbeat holds a
connection open for anyone, and its logged-out page embeds the API description (all of it with
`?all_endpoints=1`). So a visitor who is not logged in (Gradio's own access-token cookie, checked
against the page's tokens as Gradio checks it) gets LOGIN_PAGE, a self-contained form that posts
to Gradio's own /login, at the page's address; the login POST and static assets pass; anything
else under the page is a 401. Login
attempts are throttled per client address: after LOGIN_FAILURES wrong passwords within
LOGIN_WINDOW_S, further attempts get a 429 with Retry-After until the window has passed.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 60.0
OPEN_PREFIXES = ("/assets/", "/static/", "/svelte/", "/favicon.ico", "/theme.css", "/manifest.json")
LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tunebot: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>
body{font-family:system-ui,sans-serif;max-width:22rem;margin:15vh auto;padding:0 1rem}
input,button{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.3rem 0}</style></head>
<body><h1>tunebot</h1><form id="login"><label>Password (the server's API key)
<input id="password" type="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button><p id="status" role="status"></p></form><script>
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = new URLSearchParams({username: "tunebot", password: document.getElementById("password").value});
  const answer = await fetch("@PREFIX@/login", {method: "POST", body, credentials: "same-origin"});
  if (answer.ok) { location.reload(); return; }
  document.getElementById("status").textContent = answer.status === 429
    ? "Too many wrong passwords: wait a minute." : "Wrong password.";
});</script></body></html>"""


def _cookies(scope: dict[str, Any]) -> dict[str, str]:
    """The request's cookies, parsed leniently as Starlette (and so Gradio) parses them."""
    from starlette.requests import cookie_parser

    raw = b"; ".join(value for name, value in scope.get("headers") or [] if name == b"cookie").decode("latin-1")
    return cookie_parser(raw)


async def _refuse(send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": {"message": message, "type": "authentication_error"}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class PageGuard:
    """Lets only logged-in visitors past the page's login (see the module docstring)."""

    def __init__(self, app: Any, prefix: str, page: Any) -> None:
        self.app, self.prefix, self.page = app, prefix.rstrip("/"), page
        self.failures: dict[str, deque[float]] = {}

    def logged_in(self, scope: dict[str, Any]) -> bool:
        """Gradio's test: its access-token cookie names a token it issued."""
        cookies, cookie_id = _cookies(scope), getattr(self.page, "cookie_id", None)
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        return token is not None and token in getattr(self.page, "tokens", {})

    def _throttled(self, client: str) -> float:
        """Seconds this client must wait before trying again (0: it may try now)."""
        recent = self.failures.setdefault(client, deque())
        now = time.monotonic()
        while recent and now - recent[0] > LOGIN_WINDOW_S:
            recent.popleft()
        return LOGIN_WINDOW_S - (now - recent[0]) if len(recent) >= LOGIN_FAILURES else 0.0

    async def _login(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        client = (scope.get("client") or ("?", 0))[0]
        wait = self._throttled(client)
        if wait > 0:
            await _refuse(send, 429, f"too many wrong passwords: try again in {wait:.0f} s",
                          [(b"retry-after", str(max(1, round(wait))).encode())])
            return

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] in (400, 401, 403):
                self.failures[client].append(time.monotonic())
            await send(message)

        await self.app(scope, receive, counted)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] not in ("http", "websocket") or not (path == self.prefix
                                                              or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        inner = path[len(self.prefix):] or "/"
        if inner.rstrip("/") == "/login" and scope.get("method") == "POST":
            await self._login(scope, receive, send)
            return
        if self.logged_in(scope) or inner.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        if inner == "/" and scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            body = LOGIN_PAGE.replace("@PREFIX@", self.prefix).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        await _refuse(send, 401, "log in first (the password is the server's API key)")
