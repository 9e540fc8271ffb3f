"""One attached viewer of a terminal: a bounded byte queue, nothing more.

The session feeds every client from the PTY's read callback (on the event
loop); each client's WebSocket task drains its own queue. A client knows
nothing of its session: the session reads the queue levels (``pending``) to
pause the PTY when every viewer is behind, and the transport tells the
session when its viewer caught up. A client that cannot keep up never slows
the PTY or the other clients: once more than ``limit`` bytes wait for it, it
is marked overflowed and disconnected. Nothing is lost for the user: the
browser reconnects and gets the scrollback replay.

The queue has a lock because exit and close notices come from other threads
(the reaper, a DELETE request), not only from the loop.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

DEFAULT_CLIENT_LIMIT = 8 * 1024 * 1024


@dataclass(frozen=True)
class Exited:
    code: int | None


class ClientOverflow(Exception):
    """The client fell more than its limit behind."""


class ClientGone(Exception):
    """The session was closed while the client was attached."""


class Client:
    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = DEFAULT_CLIENT_LIMIT) -> None:
        self.loop = loop
        self.limit = limit
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._pending = 0
        self._event = asyncio.Event()
        self._wake_scheduled = False
        self.overflowed = False
        self.exited: Exited | None = None
        self.gone = False

    def _wake(self) -> None:
        # Called with the lock held. One loop wake-up per burst, not per chunk;
        # none at all when output is read on the loop itself.
        if not self._wake_scheduled:
            self._wake_scheduled = True
            if self._on_loop_thread():
                self._event.set()
            else:
                self.loop.call_soon_threadsafe(self._event.set)

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def feed(self, data: bytes) -> None:
        """Queue output (any thread)."""
        with self._lock:
            if self.overflowed or self.gone:
                return
            self._chunks.append(data)
            self._pending += len(data)
            if self._pending > self.limit:
                self.overflowed = True
                self._chunks.clear()
                self._pending = 0
            self._wake()

    def notify_exit(self, code: int | None) -> None:
        with self._lock:
            self.exited = Exited(code)
            self._wake()

    def notify_gone(self) -> None:
        with self._lock:
            self.gone = True
            self._wake()

    @property
    def pending(self) -> int:
        """Bytes queued and not yet taken by ``get``: how far behind this viewer is."""
        return self._pending

    async def get(self) -> bytes | Exited:
        """Next output (all that queued up, as one chunk, leaving the queue empty), or the exit notice.

        Raises ClientOverflow or ClientGone when the client must disconnect.
        """
        while True:
            data = None
            with self._lock:
                if self.overflowed:
                    raise ClientOverflow()
                if self._chunks:
                    data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
                    self._chunks.clear()
                    self._pending = 0
                elif self.gone:
                    raise ClientGone()
                elif self.exited is not None:
                    exited, self.exited = self.exited, None
                    return exited
                else:
                    self._wake_scheduled = False
                    self._event.clear()
            if data is not None:
                return data
            await self._event.wait()
