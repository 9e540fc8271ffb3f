"""Where the workspace serves models: the wire APIs' base URLs, and the endpoint names.

``MODEL_APIS`` is the one table of the four wire APIs the agents speak and
where each lives: under the AI Gateway host when one is configured (and it
serves that API), else under the workspace's ``/serving-endpoints``. The
agents' configs (``lib.agents``) and the app's model gateway
(``lib.gateway``) both read it.

Listing endpoints is a network call on every sidebar render otherwise, so the
answer is kept for a minute per (host, token). The cache key holds a hash of
the token, never the token. ``None`` means "could not ask": the sidebar then
falls back to free text instead of an empty select.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from lib.workspace.client import describe_error, pat_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelApi:
    """One wire API: its path under an AI Gateway host (``None``: the gateway does not serve
    it) and under the workspace host."""

    name: str
    gateway_path: str | None
    serving_path: str


# Anthropic messages (Claude Code), OpenAI responses (Codex), Gemini (Gemini CLI)
# and chat completions (OpenCode; the AI Gateway has no chat-completions route for it).
MODEL_APIS: dict[str, ModelApi] = {
    api.name: api
    for api in (
        ModelApi("anthropic", "anthropic", "serving-endpoints/anthropic"),
        ModelApi("openai", "openai/v1", "serving-endpoints"),
        ModelApi("gemini", "gemini", "serving-endpoints/google"),
        ModelApi("chat", None, "serving-endpoints"),
    )
}


def model_api_base(api: str, *, host: str | None, gateway_host: str | None) -> str | None:
    """``G/<gateway path>`` when an AI Gateway host is set and serves ``api``, else
    ``H/<serving path>``; ``None`` without a host to use."""
    spec = MODEL_APIS[api]
    if gateway_host and spec.gateway_path is not None:
        return f"{gateway_host.rstrip('/')}/{spec.gateway_path}"
    if host:
        return f"{host.rstrip('/')}/{spec.serving_path}"
    return None

CACHE_TTL_S = 60.0
LIST_TIMEOUT_S = 5

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[float, list[str] | None]] = {}


def _key(host: str, token: str) -> tuple[str, str]:
    return host, hashlib.sha256(token.encode()).hexdigest()


def fetch_endpoint_names(host: str, token: str, *, timeout_s: int = LIST_TIMEOUT_S) -> list[str] | None:
    """Names of all serving endpoints, sorted; ``None`` when the workspace cannot be asked."""
    try:
        names = [e.name for e in pat_client(host, token, retry_timeout_s=timeout_s).serving_endpoints.list() if e.name]
    except Exception as exc:  # noqa: BLE001 - the picker degrades to free text; say why in the log
        log.info("Could not list serving endpoints: %s", describe_error(exc).replace(token, "[token]"))
        return None
    return sorted(set(names))


def endpoint_names(host: str | None, token: str | None, *, ttl_s: float = CACHE_TTL_S) -> list[str] | None:
    """Cached ``fetch_endpoint_names``; ``None`` without host or token."""
    if not host or not token:
        return None
    key = _key(host, token)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit and now - hit[0] < ttl_s:
            return hit[1]
    names = fetch_endpoint_names(host, token)
    with _lock:
        _cache[key] = (time.monotonic(), names)
    return names


def clear_cache() -> None:
    """Forget cached listings (tests, or after the token changes)."""
    with _lock:
        _cache.clear()
