"""A request head must arrive in time: no connection is held open by a client that never finishes one.

Streamlit starts uvicorn itself and passes it no options of ours (there is no
Streamlit setting for uvicorn's timeouts). uvicorn's keep-alive timeout (5 s,
its default, which we keep) closes connections idle *between* requests, and
h11 caps a request head at 16 KiB; but nothing closes a connection that
opened and never completed its request head: a few hundred half-open
connections (slowloris) would be held forever, each a file descriptor.

``install_header_timeout`` wraps uvicorn's h11 protocol (the one it uses when
``httptools`` is not installed, as here) so that a connection whose request
head is not complete ``HEADER_TIMEOUT_S`` after it opened, or after it started
sending its next request, is closed. Requests in progress (a slow upload, a
long answer) and WebSockets are not affected: the clock stops once the head is
in. The middleware installs it when the server builds its stack, before any
connection is accepted.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0


def install_header_timeout(timeout_s: float = HEADER_TIMEOUT_S) -> bool:
    """Close connections whose request head takes longer than ``timeout_s``; True when installed."""
    try:
        import h11
        from uvicorn.protocols.http import auto
        from uvicorn.protocols.http.h11_impl import H11Protocol
    except ImportError:  # pragma: no cover - uvicorn comes with Streamlit
        return False
    if auto.AutoHTTPProtocol is not H11Protocol:
        log.warning("uvicorn does not use its h11 protocol here; the %.0f s request-head timeout is not set.",
                    timeout_s)
    if getattr(H11Protocol, "_coda_header_timeout_s", None) is not None:
        H11Protocol._coda_header_timeout_s = timeout_s  # type: ignore[attr-defined]
        return True
    H11Protocol._coda_header_timeout_s = timeout_s  # type: ignore[attr-defined]
    connection_made = H11Protocol.connection_made
    data_received = H11Protocol.data_received
    connection_lost = H11Protocol.connection_lost

    def waiting_for_head(self: Any) -> bool:
        return self.conn.their_state is h11.IDLE

    def arm(self: Any) -> None:
        if getattr(self, "_coda_head_timer", None) is None:
            self._coda_head_timer = self.loop.call_later(H11Protocol._coda_header_timeout_s, expire, self)

    def disarm(self: Any) -> None:
        timer = getattr(self, "_coda_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._coda_head_timer = None

    def expire(self: Any) -> None:
        self._coda_head_timer = None
        if waiting_for_head(self) and self.transport is not None and not self.transport.is_closing():
            log.debug("Closed a connection from %s: no complete request head in time.", self.client)
            self.transport.close()

    def patched_connection_made(self: Any, transport: Any) -> None:
        connection_made(self, transport)
        arm(self)

    def patched_data_received(self: Any, data: bytes) -> None:
        if waiting_for_head(self):
            arm(self)  # a (next) request head is on its way: it has until the timer fires
        data_received(self, data)
        if not waiting_for_head(self):
            disarm(self)

    def patched_connection_lost(self: Any, exc: Exception | None) -> None:
        disarm(self)
        connection_lost(self, exc)

    H11Protocol.connection_made = patched_connection_made  # type: ignore[method-assign]
    H11Protocol.data_received = patched_data_received  # type: ignore[method-assign]
    H11Protocol.connection_lost = patched_connection_lost  # type: ignore[method-assign]
    return True
