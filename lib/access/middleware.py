"""ASGI middleware in front of everything: Streamlit's pages and ours.

It answers strangers before any page, route or WebSocket runs, refuses
cross-site state changes and WebSockets, and adds the security headers to
every HTTP response. It stays plain ASGI (no ``BaseHTTPMiddleware``, which
would buffer streamed responses and does not see WebSockets); refusals are
Starlette responses called as ASGI apps.

A refused WebSocket is refused before the handshake: with the ASGI
"websocket.http.response" extension (uvicorn has it) the client gets a real
HTTP 403/503 with the reason as text, otherwise a plain 403. Browsers show
neither to the page (only close code 1006), so the terminal component asks
``GET {base}/api/sessions`` to learn why (see ``lib.terminal.protocol``).
"""

from __future__ import annotations

import html
import logging

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from lib.access.decision import decide, same_origin
from lib.access.loopback import is_local_path, is_local_request
from lib.access.owner import OwnerResolver
from lib.settings import base_url_path

log = logging.getLogger(__name__)

# Open to everyone, relative to server.baseUrlPath; they reveal nothing.
OPEN_PATHS = ("/health",)
# Refusals under these paths answer JSON ({"error": ...}) instead of a page.
JSON_PREFIXES = ("/api/",)
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
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "SAMEORIGIN",
}



def error_page(status: int, title: str, message: str) -> str:
    refresh = '<meta http-equiv="refresh" content="5">' if status == 503 else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}</style>"
        f"</head><body><h1>{status} {html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, owner: OwnerResolver, base: str | None = None) -> None:
        """``base`` is the URL prefix everything is served under; default ``server.baseUrlPath``."""
        self.app = app
        self.owner = owner
        self.base = base_url_path() if base is None else base.rstrip("/")
        self.open_paths = {self.base + p for p in OPEN_PATHS}
        self.json_prefixes = tuple(self.base + p for p in JSON_PREFIXES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = None if scope["path"] in self.open_paths else self._refusal(scope)
        if kind == "websocket":
            await (refusal or self.app)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await (refusal or self.app)(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> ASGIApp | None:
        """The response that refuses this request, or None to let it through."""
        if is_local_path(scope["path"], self.base):
            # The app's own terminals (agent hooks, model calls): no user, no
            # browser. Each route there still demands its session's key.
            if is_local_request(scope):
                return None
            return self._refuse(scope, 403, "Forbidden", "This address only answers the app's own terminals.")
        headers = Headers(scope=scope)
        decision = decide(self.owner.state, headers)
        if not decision.allowed:
            return self._refuse(scope, decision.status, decision.title, decision.message)
        unsafe = scope["type"] == "websocket" or scope["method"] in UNSAFE_METHODS
        if unsafe and not same_origin(headers):
            log.info("Refused a cross-site %s to %s from %s.", scope["type"], scope["path"], headers.get("origin"))
            return self._refuse(scope, 403, "Forbidden", "Cross-site request refused.")
        return None

    def _refuse(self, scope: Scope, status: int, title: str, message: str) -> ASGIApp:
        if scope["type"] == "websocket":
            # Refused before the handshake: never accepted, so no route runs.
            if "websocket.http.response" in (scope.get("extensions") or {}):
                return PlainTextResponse(message, status, headers=SECURITY_HEADERS)
            return WebSocketClose(1008, message[:120])  # the server answers the handshake with 403
        if scope["path"].startswith(self.json_prefixes):
            return JSONResponse({"error": message}, status)
        return HTMLResponse(error_page(status, title, message), status)
