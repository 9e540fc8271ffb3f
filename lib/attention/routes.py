"""The report route: ``POST {base}/_coda/local/attention?agent=&event=&t=``, for the app's own terminals.

The hook script (``hooks/attention.sh``) or the OpenCode plugin sends the
CLI's event name in the query and its JSON payload, as the CLI gave it, as
the body; the session key comes in ``X-Coda-Session-Key``. Checked here, in
this order, each refusal changing nothing:

1. the request is local: a loopback peer and no ``X-Forwarded-*``,
   ``Forwarded`` or ``X-Real-IP`` header (the security middleware refuses
   the rest already; checked again because this route must never trust it);
2. the agent and event names are well formed (400);
3. the key belongs to an open session (403): the key, compared in constant
   time, is the only thing that picks the session; an id in the request
   would be ignored.

The body is read up to ``MAX_BODY`` (a tool's whole output can ride along);
beyond that the rest is left unread and the first fields are used.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lib.access.loopback import LOCAL_PREFIX, is_local_request
from lib.attention.events import Report, parse_payload, valid_event
from lib.attention.hub import AttentionHub
from lib.settings import base_url_path

REPORT_PATH = f"{LOCAL_PREFIX}attention"
KEY_HEADER = "x-coda-session-key"  # the same as lib.terminal.keys.KEY_HEADER (a test pins it)
MAX_BODY = 256 * 1024


async def _bounded_body(request: Request, limit: int = MAX_BODY) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _time(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def build_routes(hub: AttentionHub, base: str | None = None) -> list[BaseRoute]:
    """The report route bound to the hub, under ``base`` (default ``server.baseUrlPath``)."""
    prefix = base_url_path() if base is None else base.rstrip("/")

    async def report(request: Request) -> Response:
        if not is_local_request(request.scope):
            return JSONResponse({"error": "only the app's own terminals may report"}, status_code=403)
        agent = request.query_params.get("agent", "")
        event = request.query_params.get("event", "")
        if not valid_event(agent, event):
            return JSONResponse({"error": "unknown agent or malformed event name"}, status_code=400)
        key = request.headers.get(KEY_HEADER)
        if not key:
            return JSONResponse({"error": "no session key"}, status_code=403)
        body = await _bounded_body(request)
        sent = Report(agent, event, parse_payload(body), _time(request.query_params.get("t")) or time.time())
        if hub.report(key, sent) is None:
            return JSONResponse({"error": "unknown session key"}, status_code=403)
        return Response(status_code=204)

    return [Route(prefix + REPORT_PATH, report, methods=["POST"])]
