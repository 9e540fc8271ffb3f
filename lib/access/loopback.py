"""Requests from inside the app's own terminals: loopback peers with no proxy in between.

Hooks and model calls made by a session's processes reach the app on
127.0.0.1 directly. The Databricks Apps proxy always adds ``X-Forwarded-*``
headers, so a request that carries any of them came through the proxy (from
a browser, from anyone) and is never treated as local, whatever its peer
address says. Paths under ``LOCAL_PREFIX`` are served only to such requests,
and each route there still demands a session key (``lib.terminal.keys``).
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.types import Scope

LOCAL_PREFIX = "/_coda/local/"


def is_loopback_peer(scope: Scope) -> bool:
    """True when the TCP peer is this machine (127.0.0.0/8 or ::1)."""
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False


def has_forwarded_headers(headers: Headers) -> bool:
    """True when any proxy header is present (``X-Forwarded-*``, ``Forwarded``, ``X-Real-IP``)."""
    return any(name.startswith("x-forwarded-") or name in ("forwarded", "x-real-ip") for name in headers)


def is_local_request(scope: Scope) -> bool:
    """A loopback peer that did not come through a proxy: only the app's own terminals."""
    return is_loopback_peer(scope) and not has_forwarded_headers(Headers(scope=scope))


def is_local_path(path: str, base: str = "") -> bool:
    """True for paths of the loopback-only routes (under an optional base URL path)."""
    return path.startswith(f"{base.rstrip('/')}{LOCAL_PREFIX}")
