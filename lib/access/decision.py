"""The one authorization decision: may this request's user use the app?

Every page, route and WebSocket goes through ``decide``; nothing else in the
code base compares users. Locally there is a single user and everyone who
can reach the (loopback) port is that user.

Headers are looked up by name whatever their case: pass Starlette's
``Headers`` (the middleware) or ``st.context.headers`` (the script) as they
are; any other mapping is read as HTTP headers too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from lib.access.owner import OwnerState

IDENTITY_HEADERS = ("x-forwarded-email", "x-forwarded-preferred-username")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    title: str = ""
    message: str = ""
    user: str | None = None


def _headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    """A mapping whose ``get`` ignores the header name's case."""
    return headers if isinstance(headers, Headers) else Headers(headers=dict(headers))


def request_user(headers: Mapping[str, str]) -> str | None:
    """The signed-in user as the Apps proxy tells us."""
    headers = _headers(headers)
    for name in IDENTITY_HEADERS:
        value = (headers.get(name) or "").strip()
        if value:
            return value
    return None


def decide(owner: OwnerState, headers: Mapping[str, str]) -> Decision:
    headers = _headers(headers)
    if not owner.on_apps:
        return Decision(True, user=request_user(headers))
    if not owner.resolved:
        return Decision(
            False, 503, "Not ready",
            f"Owner not resolved yet: {owner.error or 'still looking'}. "
            "Access stays closed until the workspace answers; this page retries by itself.",
        )
    user = request_user(headers)
    if user is None:
        return Decision(False, 403, "Forbidden", "No signed-in user came with this request.")
    if user.casefold() != (owner.owner or "").casefold():
        return Decision(
            False, 403, "Forbidden",
            f"This app belongs to {owner.owner}. You are signed in as {user}.", user,
        )
    return Decision(True, user=user)


def same_origin(headers: Mapping[str, str]) -> bool:
    """True unless a browser says the request comes from another site.

    The Apps platform turns Streamlit's XSRF protection off, and our routes
    never had Streamlit's WebSocket origin check, so state-changing requests
    compare ``Origin`` with the host the browser asked for. No ``Origin`` at
    all means a non-browser client, which cannot be a cross-site forgery.
    """
    headers = _headers(headers)
    origin = headers.get("origin")
    if origin is None:
        return True
    host = (headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0].strip()
    try:
        origin_host = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(host) and origin_host.lower() == host.lower()
