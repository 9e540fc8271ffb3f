"""Fault injection: make the fake workspace down, slow, failing or throttled.

Modes and what the databricks-sdk sees:

* ``"down"``: the connection is closed before any response (done in the
  HTTP protocol layer, since ASGI cannot drop a connection). requests
  raises ``ConnectionError``; the SDK retries it until
  ``retry_timeout_seconds`` and then raises ``TimeoutError`` whose
  ``__cause__`` is the ``ConnectionError``. ``fw.stop()`` gives the other
  flavour of down (connection refused).
* ``"slow"``: sleeps ``delay_s`` before handling the request normally; with
  ``http_timeout_seconds`` below it the SDK sees ``requests.Timeout``.
* ``"5xx"``: 503 ``TEMPORARILY_UNAVAILABLE`` (or ``status``); the SDK
  retries 503 (and 429) after ``Retry-After`` (1 s when absent).
* ``"429"``: 429 ``REQUEST_LIMIT_EXCEEDED`` with ``Retry-After``.

``count`` limits a rule to the next N matching requests, ``paths`` to
request paths starting with one of the prefixes. Every request a rule acts
on is recorded as a :class:`~tests.fakeworkspace.state.FaultHit`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import unquote

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import error_response
from .state import FaultHit, WorkspaceState

MODES = ("down", "slow", "5xx", "429")


@dataclass
class FaultRule:
    """One active fault. ``remaining`` None = until cleared."""

    mode: str
    paths: Optional[Tuple[str, ...]] = None
    remaining: Optional[int] = None
    delay_s: float = 0.0
    status: int = 503
    retry_after: Optional[int] = None
    hits: int = 0

    def matches(self, path: str) -> bool:
        return self.paths is None or any(path.startswith(p) for p in self.paths)


class FaultRegistry:
    """Thread-safe list of active rules, consumed by the protocol and the middleware."""

    def __init__(self, state: WorkspaceState) -> None:
        self._lock = threading.Lock()
        self._rules: List[FaultRule] = []
        self._state = state

    def add(self, rule: FaultRule) -> FaultRule:
        if rule.mode not in MODES:
            raise ValueError(f"unknown fault mode {rule.mode!r}; expected one of {MODES} or None")
        if rule.remaining is not None and rule.remaining <= 0:
            raise ValueError("count must be positive")
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> List[FaultRule]:
        with self._lock:
            return list(self._rules)

    def has_mode(self, mode: str) -> bool:
        with self._lock:
            return any(r.mode == mode for r in self._rules)

    def take(self, method: str, path: str, modes: Iterable[str]) -> Optional[FaultRule]:
        """The first rule of ``modes`` matching ``path``, consuming one of its ``count``."""
        wanted = set(modes)
        with self._lock:
            for rule in self._rules:
                if rule.mode not in wanted or not rule.matches(path):
                    continue
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                self._state.record_fault_hit(FaultHit(rule.mode, method, path))
                return rule
        return None


def make_rule(
    mode: str,
    *,
    paths: Optional[Sequence[str]] = None,
    count: Optional[int] = None,
    delay_s: float = 0,
    status: Optional[int] = None,
    retry_after: Optional[int] = None,
) -> FaultRule:
    """Build a rule with each mode's defaults (429 -> Retry-After 1)."""
    if isinstance(paths, str):
        paths = [paths]
    if status is None:
        status = 429 if mode == "429" else 503
    if retry_after is None and mode == "429":
        retry_after = 1
    return FaultRule(
        mode=mode,
        paths=tuple(paths) if paths is not None else None,
        remaining=count,
        delay_s=float(delay_s),
        status=status,
        retry_after=retry_after,
    )


class FaultMiddleware:
    """Pure ASGI middleware applying ``slow``, ``5xx`` and ``429`` rules."""

    def __init__(self, app: ASGIApp, registry: FaultRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.registry.take(scope["method"], scope["path"], ("slow", "5xx", "429"))
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.mode == "slow":
            await asyncio.sleep(rule.delay_s)
            await self.app(scope, receive, send)
            return
        headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
        if rule.mode == "429":
            response = error_response(
                rule.status,
                "REQUEST_LIMIT_EXCEEDED",
                "Too many requests. Please wait a moment and try again.",
                headers,
            )
        else:
            code = "TEMPORARILY_UNAVAILABLE" if rule.status == 503 else "INTERNAL_ERROR"
            response = error_response(
                rule.status,
                code,
                f"The service at {scope['path']} is temporarily unavailable. Please try again later.",
                headers,
            )
        await response(scope, receive, send)


class FaultAwareH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that can drop a connection for a ``down`` rule.

    It peeks at the request line of each new request (only while a
    ``down`` rule exists) and closes the transport instead of parsing it.
    Bound to one registry by :func:`protocol_for`.
    """

    fault_registry: FaultRegistry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = b""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        # Without TCP_NODELAY every answer waits ~40 ms for a delayed ACK,
        # which would make every test and benchmark against the fake crawl.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._pending:
            data, self._pending = self._pending + data, b""
        if self.conn.their_state is h11.IDLE and self.fault_registry.has_mode("down"):
            newline = data.find(b"\n")
            if newline < 0 and len(data) < 16384:
                self._pending = data  # wait for the whole request line
                return
            parts = data[: max(newline, 0)].split(b" ")
            if len(parts) >= 2:
                method = parts[0].decode("latin-1")
                path = unquote(parts[1].decode("latin-1").partition("?")[0])
                if self.fault_registry.take(method, path, ("down",)) is not None:
                    self.transport.close()
                    return
        super().data_received(data)


def protocol_for(registry: FaultRegistry) -> type:
    """A protocol class bound to ``registry`` (uvicorn instantiates it per connection)."""
    return type("BoundFaultAwareH11Protocol", (FaultAwareH11Protocol,), {"fault_registry": registry})
