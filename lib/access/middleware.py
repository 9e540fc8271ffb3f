"""ASGI middleware in front of everything: Streamlit's pages and ours.

It answers strangers before any page, route or WebSocket runs, refuses
cross-site state changes, and adds the security headers to every response.
"""

from __future__ import annotations

import html
import json
from typing import Awaitable, Callable, MutableMapping

from lib.access.decision import decide, same_origin
from lib.access.owner import OwnerResolver

Scope = MutableMapping[str, object]
Message = MutableMapping[str, object]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = {"/health"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# Streamlit needs inline styles and eval-free inline bootstrapping; Components v2
# loads its JS from blob: URLs. Everything else is same-origin only.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
        "style-src 'self' 'unsafe-inline' blob:",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "worker-src 'self' blob:",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
]


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}  # type: ignore[union-attr]


def error_page(status: int, title: str, message: str) -> bytes:
    refresh = '<meta http-equiv="refresh" content="5">' if status == 503 else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}</style>"
        f"</head><body><h1>{status} {html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    ).encode()


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, owner: OwnerResolver) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        path = str(scope.get("path", ""))
        if path not in OPEN_PATHS:
            decision = decide(self.owner.state, headers)
            if not decision.allowed:
                await self._refuse(scope, receive, send, decision.status, decision.title, decision.message)
                return
            unsafe = kind == "websocket" or scope.get("method") in UNSAFE_METHODS
            if unsafe and not same_origin(headers):
                await self._refuse(scope, receive, send, 403, "Forbidden", "Cross-site request refused.")
                return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS  # type: ignore[arg-type]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, title: str, message: str) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await receive()
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        wants_json = str(scope.get("path", "")).startswith("/api/")
        if wants_json:
            body = json.dumps({"error": message}).encode()
            ctype = b"application/json"
        else:
            body = error_page(status, title, message)
            ctype = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})
