"""The gateway: a model call from a session's CLI, forwarded with fresh workspace credentials.

One call, start to end:

1. Only the app's own terminals get in: the peer is loopback and no proxy
   header is present (``lib.access.loopback``), and the call carries a
   valid session key (``Authorization: Bearer``, ``x-api-key`` or
   ``x-goog-api-key``, whichever the CLI sends). The key names the session
   the usage is counted for.
2. The body is read (bounded), fixed where a CLI is known to trip a
   Databricks endpoint (``lib.gateway.wire.fix_request``), and sent to the
   AI Gateway or the serving endpoints (``lib.workspace.endpoints``) with the
   CLI's headers (the coding-agent header included) minus the session key,
   plus fresh credentials from ``lib.workspace.credentials``.
3. A refused credential (401, or 403 "Invalid access token") is reported and
   the call is sent once more with the next credential (a rebuilt OAuth
   token, or the next source); any other 403 is turned into a sentence that
   names the endpoint and the permission it needs.
4. The answer streams back chunk by chunk as it arrives, never buffered; a
   ``UsageTap`` reads the usage on the way and the ``UsageMeter`` counts it
   for the session when the answer ends.

The upstream connection (``lib.gateway.upstream``: httpx's transport,
httpcore, used directly) lives on the server's own event loop: a streamed
answer costs a coroutine, not a thread, and connections to the workspace
are kept alive between calls. Only getting a token that may need the network
runs in a thread (the SDK is synchronous and may refresh over the network).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from lib.access.loopback import is_local_request
from lib.gateway import wire
from lib.gateway.upstream import ERRORS, Answer, Upstream
from lib.gateway.usage import Budget, UsageMeter, UsageTap, budget_state
from lib.settings import Settings
from lib.workspace.credentials import CredentialError, Credentials, NoCredentials, Resolved
from lib.workspace.endpoints import MODEL_APIS, model_api_base

log = logging.getLogger(__name__)

CODING_AGENT_HEADER = "x-databricks-use-coding-agent-mode"
MAX_BODY = 100 * 1024 * 1024
WHOLE_ANSWER = 4 * 1024 * 1024  # a non-streamed answer up to this size is passed on in one piece
KEY_HEADERS = ("x-coda-session-key", "x-api-key", "x-goog-api-key")
# Never forwarded: hop-by-hop, the session key in any of its places, what the upstream connection sets.
_DROP_REQUEST = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-authorization",
    "proxy-connection", "te", "trailer", "upgrade", "expect", "authorization", "cookie", "accept-encoding",
    *KEY_HEADERS,
}
_DROP_RESPONSE = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "set-cookie",
    "strict-transport-security", "alt-svc", "server",
}
_AUTH_FAILURES = ("invalid access token", "token is expired", "expired token", "invalid token",
                  "unauthenticated", "credential was not sent")

SessionLookup = Callable[[str | None], "str | None"]


def presented_key(headers: Any) -> str | None:
    """The session key as the CLI sends it: a bearer token or one of the API-key headers."""
    auth = headers.get("authorization") or ""
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for name in KEY_HEADERS:
        value = (headers.get(name) or "").strip()
        if value:
            return value
    return None


def _safe_rest(rest: str) -> bool:
    """A path below the API's base: no way up, no scheme, nothing odd."""
    if not rest or len(rest) > 2048 or rest.startswith("/") or "\\" in rest or "%" in rest:
        return False
    return all(part not in ("", ".", "..") for part in rest.split("/"))


def _is_auth_failure(status: int, message: str) -> bool:
    if status == 401:
        return True
    return status == 403 and any(marker in message.lower() for marker in _AUTH_FAILURES)


class Gateway:
    """Forwards model calls of the app's sessions to the workspace and counts their usage."""

    def __init__(self, credentials: Credentials, settings: Callable[[], Settings], session_for: SessionLookup,
                 *, budget: Callable[[], Budget | None] | None = None, meter: UsageMeter | None = None,
                 upstream: Upstream | None = None) -> None:
        self.credentials = credentials
        self.usage = meter or UsageMeter()
        self._settings = settings
        self._session_for = session_for
        self._budget = budget or (lambda: None)
        self._upstream = upstream or Upstream()

    # ------------------------------------------------------------ facts for pages and routes

    def budget(self) -> Budget | None:
        return self._budget()

    def session_usage(self, session_id: str) -> dict[str, Any]:
        """``usage`` of one session as ``GET /api/sessions`` shows it."""
        return self.usage.for_session(session_id, self._budget())

    async def aclose(self) -> None:
        """Close the connections to the workspace (tests; the process ending closes them too)."""
        await self._upstream.aclose()

    # ------------------------------------------------------------ one call

    async def handle(self, request: Request) -> Response:
        api = request.path_params.get("api", "")
        rest = request.path_params.get("rest", "")
        if not is_local_request(request.scope):
            return self._error(api, 403, "The model gateway serves only the app's own terminals (over loopback, "
                                         "not through a proxy).")
        if api not in MODEL_APIS:
            return self._error(api, 404, f"No model API '{api[:40]}' here: use one of {', '.join(MODEL_APIS)}.")
        if not _safe_rest(rest):
            return self._error(api, 400, "That path is not a model API path.")
        session_id = self._session_for(presented_key(request.headers))
        if session_id is None:
            return self._error(api, 401, "This model call carries no valid Coda session key. Start the agent in a "
                                         "Coda terminal: its CODA_SESSION_KEY authenticates calls through the app.")
        budget = self._budget()
        if budget is not None and budget.refuse and budget.daily_tokens > 0:
            spent = self.usage.session_today(session_id).total_tokens
            if budget_state(spent, budget) == "over":
                log.info("Refused a model call of session %s: it used %d of its %d daily tokens.",
                         session_id, spent, budget.daily_tokens)
                return self._error(api, 403, f"This session used its daily budget of {budget.daily_tokens:,} "
                                             f"tokens ({spent:,} today). Raise or turn off the budget in Coda's "
                                             "sidebar, or continue tomorrow.")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return self._error(api, 413, f"The request is larger than the gateway's {MAX_BODY >> 20} MiB limit.")
        body = await request.body()
        if len(body) > MAX_BODY:
            return self._error(api, 413, f"The request is larger than the gateway's {MAX_BODY >> 20} MiB limit.")
        fmt = wire.call_format(api, rest)
        parsed: Any = None
        if fmt is not None and body and not request.headers.get("content-encoding"):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if parsed is not None and wire.fix_request(fmt, parsed):
                body = json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()
        model = wire.model_of(fmt, rest, parsed)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST]
        if not any(k.lower() == CODING_AGENT_HEADER for k, _ in headers):
            headers.append((CODING_AGENT_HEADER, "true"))
        headers.append(("accept-encoding", "identity"))
        query = request.scope.get("query_string", b"").decode("latin-1")
        return await self._forward(request.method, api, rest, query, headers, body, session_id, fmt, model)

    async def _forward(self, method: str, api: str, rest: str, query: str, headers: list[tuple[str, str]],
                       body: bytes, session_id: str, fmt: str | None, model: str | None) -> Response:
        resolved: Resolved | None = None
        settings = self._settings()
        for attempt in (1, 2):
            try:
                resolved, auth = await self._credential(settings if attempt == 1 else None)
            except NoCredentials as exc:
                return self._error(api, 403, f"The app has no workspace credentials for model calls: "
                                             f"{str(exc).removeprefix('not configured: ')}.")
            except CredentialError as exc:
                return self._error(api, 502, str(exc))
            base = model_api_base(api, host=resolved.host, gateway_host=settings.gateway_host)
            if base is None:
                return self._error(api, 403, "No workspace host is known for model calls.")
            try:
                answer = await self._upstream.send(method, base, rest, query, [*headers, *auth.items()], body)
            except ERRORS as exc:
                log.info("Model call to %s failed: %s", base, type(exc).__name__)
                return self._error(api, 502, f"The app could not reach the workspace at {resolved.host} "
                                             f"({type(exc).__name__}: {str(exc)[:200] or 'no answer'}).")
            if answer.status in (401, 403):
                try:
                    raw = await answer.read()
                finally:
                    await answer.close()
                message = wire.upstream_message(raw)
                if _is_auth_failure(answer.status, message):
                    self.credentials.refused(resolved, message)
                    if attempt == 1:
                        continue  # once more, with a renewed token or the next credential
                    return self._error(api, answer.status,
                                       f"The workspace refused {resolved.candidate.label}: {message}")
                return self._error(api, 403, self._permission_message(resolved, model, message))
            if answer.status < 400:
                self.credentials.worked(resolved)
            return await self._relay(answer, session_id, fmt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _credential(self, settings: Settings | None) -> tuple[Resolved, dict[str, str]]:
        """The credential and its fresh headers. In a thread whenever the SDK might go to the network
        (building a ``Config``, renewing an OAuth token); a built token credential is answered at once."""
        resolved = self.credentials.built(settings)
        if resolved is not None and self.credentials.static(resolved):
            return resolved, self.credentials.headers(resolved)
        return await asyncio.to_thread(self._credential_blocking)

    def _credential_blocking(self) -> tuple[Resolved, dict[str, str]]:
        resolved = self.credentials.resolve()
        return resolved, self.credentials.headers(resolved)

    @staticmethod
    def _permission_message(resolved: Resolved, model: str | None, message: str) -> str:
        endpoint = f"the serving endpoint '{model}'" if model else "this serving endpoint"
        return (f"The workspace refused {resolved.candidate.label} access to {endpoint}: it needs the "
                f"CAN_QUERY permission there. On Databricks Apps, add the endpoint to the app's resources with "
                f"'Can query' (or ask a workspace admin to grant it). The workspace said: {message}")

    async def _relay(self, answer: Answer, session_id: str, fmt: str | None) -> Response:
        content_type = answer.header("content-type")
        encoded = answer.header("content-encoding").lower() not in ("", "identity")
        tap = UsageTap(fmt, content_type) if fmt is not None and answer.status < 400 and not encoded else None
        headers = [(k, v) for k, v in answer.headers if k.lower() not in _DROP_RESPONSE]
        size = answer.header("content-length")
        if size.isdigit() and int(size) <= WHOLE_ANSWER and "event-stream" not in content_type:
            # A complete answer of known size (not a stream): pass it on in one piece.
            try:
                body = await answer.read()
            finally:
                await answer.close()
            if tap is not None:
                tap.feed(body)
                usage = tap.finish()
                if usage is not None:
                    self.usage.record(session_id, usage)
            return _Whole(body, answer.status, headers)

        counted = False

        def count() -> None:
            nonlocal counted
            if not counted:
                counted = True
                usage = tap.finish() if tap is not None else None
                if usage is not None:
                    self.usage.record(session_id, usage)

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in answer.chunks():
                if tap is not None:
                    tap.feed(chunk)
                yield chunk
            count()  # before the CLI sees the end of the answer, so its session's count is current

        async def done() -> None:
            await answer.close()
            count()  # a CLI that hung up early: count what the answer reported so far

        return _Relay(chunks(), answer.status, headers, on_close=done)

    @staticmethod
    def _error(api: str, status: int, message: str) -> Response:
        return Response(wire.error_body(api, status, message), status_code=status,
                        media_type="application/json", headers={"x-coda-gateway": "error"})


def _raw(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class _Whole(Response):
    """A complete answer, headers as the workspace sent them (repeated ones kept)."""

    def __init__(self, body: bytes, status: int, headers: list[tuple[str, str]]) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = [*_raw(headers), (b"content-length", str(len(body)).encode())]


class _Relay(StreamingResponse):
    """A streamed answer whose clean-up (close upstream, count usage) runs even when the CLI hangs up."""

    def __init__(self, content: AsyncIterator[bytes], status: int, headers: list[tuple[str, str]], *,
                 on_close: Callable[[], Awaitable[None]]) -> None:
        super().__init__(content, status_code=status)
        self.raw_headers = _raw(headers)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close()
