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

The order, for every request and WebSocket: the host check (DNS rebinding,
``decision.check_host``; 400), then the open paths, then the loopback-only
paths (the app's own terminals), then the owner (``decision.decide``), then
the origin of state-changing requests. The Content-Security-Policy is built
per request: WebSockets may connect only to the host the page came from.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from lib.access.decision import Decision, allowed_host_names, check_host, decide, request_host, same_origin
from lib.access.loopback import is_local_path, is_local_request
from lib.access.owner import OwnerResolver
from lib.access.timeouts import install_header_timeout
from lib.settings import base_url_path, load_settings, server_address

log = logging.getLogger(__name__)

# Open to everyone, relative to server.baseUrlPath; they reveal nothing.
OPEN_PATHS = ("/health",)
# Refusals under these paths answer JSON ({"error": ...}) instead of a page.
JSON_PREFIXES = ("/api/",)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# Streamlit's page bootstraps with inline script and styles; Components v2 loads
# its JS from blob: URLs. No JavaScript eval: Streamlit's protobuf.js (long.js)
# only compiles a tiny WebAssembly module, which 'wasm-unsafe-eval' allows and
# nothing else does (checked in chromium: no securitypolicyviolation on any
# page, terminal included). WebSockets: only back to the host the page came
# from, spelled out as ws(s)://host because not every browser counts ws: as 'self'.
CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval' blob:",
    "style-src 'self' 'unsafe-inline' blob:",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'{sockets}",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "SAMEORIGIN",
}


def content_security_policy(host: str | None) -> str:
    """The CSP for a page served to ``host`` (already checked: a name and an optional port)."""
    sockets = f" ws://{host} wss://{host}" if host else ""
    return "; ".join(CSP_DIRECTIVES).format(sockets=sockets)


def error_page(status: int, title: str, message: str) -> str:
    refresh = '<meta http-equiv="refresh" content="5">' if status == 503 else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}</style>"
        f"</head><body><h1>{status} {html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, owner: OwnerResolver, base: str | None = None,
                 allowed_hosts: Iterable[str] | None = None) -> None:
        """``base`` is the URL prefix everything is served under; default ``server.baseUrlPath``.

        ``allowed_hosts``: the names the app answers to besides the loopback
        names; default the bind address (``server.address``) and ``CODA_ALLOWED_HOSTS``.
        """
        self.app = app
        self.owner = owner
        self.base = base_url_path() if base is None else base.rstrip("/")
        self.open_paths = {self.base + p for p in OPEN_PATHS}
        self.json_prefixes = tuple(self.base + p for p in JSON_PREFIXES)
        if allowed_hosts is None:
            self.allowed_hosts = allowed_host_names(server_address(), load_settings(owner.env).allowed_hosts)
        else:
            self.allowed_hosts = allowed_host_names(None, allowed_hosts)
        # The server builds this middleware at start-up, before it accepts a connection.
        install_header_timeout()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = check_host(self.owner.state, headers, self.allowed_hosts)
        refusal = self._refusal(scope, headers, host)
        if kind == "websocket":
            await (refusal or self.app)(scope, receive, send)
            return
        # The page may open WebSockets back to the host it came from, once that host passed the check.
        csp = content_security_policy(request_host(headers) if host.allowed else None)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    response_headers[name] = value
                response_headers["content-security-policy"] = csp
            await send(message)

        await (refusal or self.app)(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: Headers, host: Decision) -> ASGIApp | None:
        """The response that refuses this request, or None to let it through."""
        owner = self.owner.state
        path = scope["path"]
        # On Databricks Apps the platform may probe /health by any name; it reveals nothing.
        if not host.allowed and not (owner.on_apps and path in self.open_paths):
            log.warning("Refused a %s to %s for the host %r: this app answers to %s%s (CODA_ALLOWED_HOSTS adds names).",
                        scope["type"], path, (headers.get("x-forwarded-host") or headers.get("host") or "")[:100],
                        ", ".join(sorted(self.allowed_hosts)), " and its own URL" if owner.on_apps else "")
            return self._refuse(scope, host.status, host.title, host.message)
        if path in self.open_paths:
            return None
        if is_local_path(path, self.base):
            # The app's own terminals (agent hooks, model calls): no user, no
            # browser. Each route there still demands its session's key.
            if is_local_request(scope):
                return None
            return self._refuse(scope, 403, "Forbidden", "This address only answers the app's own terminals.")
        decision = decide(owner, headers)
        if not decision.allowed:
            if decision.status == 400:
                log.warning("Refused a %s to %s: %s", scope["type"], path, decision.message)
            return self._refuse(scope, decision.status, decision.title, decision.message)
        unsafe = scope["type"] == "websocket" or scope["method"] in UNSAFE_METHODS
        if unsafe and not same_origin(headers):
            log.info("Refused a cross-site %s to %s from %s.", scope["type"], path, headers.get("origin"))
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
