"""Exactly-once input across reconnects: how much of one viewer's input the session has taken.

A browser tab's terminal keeps what it typed until the session counts it;
after a reconnect it resends from the count, so nothing is lost or doubled.
Only the newest connection of a viewer may write (``InputStream.active``).
"""

from __future__ import annotations


class SharedInput:
    """How much input one viewer (a browser tab's terminal) has sent, over all its connections."""

    def __init__(self) -> None:
        self.received = 0
        self.current: InputStream | None = None


class InputStream:
    """One connection's right to write a viewer's input; see ``PtySession.claim_input``."""

    def __init__(self, shared: SharedInput) -> None:
        self._shared = shared

    @property
    def active(self) -> bool:
        """False once a newer connection of the same viewer took over."""
        return self._shared.current is self

    @property
    def received(self) -> int:
        return self._shared.received

    def count(self, n: int) -> None:
        self._shared.received += n
