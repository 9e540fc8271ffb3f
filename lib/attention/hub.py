"""Every session's attention state: reports in, changes out to every open terminal WebSocket.

A report names no session: it carries a session key, and the key alone
decides which session it speaks for (``session_for``, a constant-time lookup
the registry passes in). So a hook can change its own session's state and
no other.

Changes reach the page over each terminal WebSocket's control channel as
``{"type": "attention", "now": <server time>, "sessions": [...]}`` (every
session, not only the one shown): ``stream`` sends the whole list once when
a viewer attaches and again after every change, a burst of changes coalesced
into one message. Any thread may call ``changed``; the subscribers are woken
on their own event loop. A thread ticks every tracker about twice a second
(the shell's foreground check, the quiet periods) while sessions exist.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from lib.attention.events import Report
from lib.attention.states import rank
from lib.attention.tracker import AttentionTracker

log = logging.getLogger(__name__)

TICK_S = 0.5
MESSAGE_TYPE = "attention"


class Watched(Protocol):
    """What the hub needs of a session (``lib.terminal.session.PtySession``)."""

    id: str
    agent: str
    label: str
    attention: AttentionTracker


SessionFor = Callable[[str | None], "str | None"]


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event

    def wake(self) -> None:
        try:
            if _running_loop() is self.loop:
                self.event.set()
            else:
                self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # the loop is closed: the stream is gone with it
            pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class AttentionHub:
    def __init__(self, sessions: Callable[[], Iterable[Watched]], session_for: SessionFor) -> None:
        self._sessions = sessions
        self._session_for = session_for
        self._lock = threading.Lock()
        self._subscribers: set[_Subscriber] = set()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # --- changes --------------------------------------------------------------
    def changed(self) -> None:
        """Something shown changed (a state, a session started or closed): wake every stream."""
        with self._lock:
            subscribers = list(self._subscribers)
            start = self._ticker is None and not self._stop.is_set()
            if start:
                self._ticker = threading.Thread(target=self._tick_loop, name="attention-tick", daemon=True)
        for subscriber in subscribers:
            subscriber.wake()
        if start:
            assert self._ticker is not None
            self._ticker.start()

    def report(self, key: str | None, report: Report) -> str | None:
        """Apply a hook's report to the one session ``key`` belongs to.

        Returns that session's id (whether or not the report changed its
        state), or ``None`` when the key belongs to no open session.
        """
        session_id = self._session_for(key)
        if session_id is None:
            return None
        session = next((s for s in self._sessions() if s.id == session_id), None)
        if session is None:
            return None
        session.attention.report(report)
        return session_id

    # --- reading ----------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        """Every session's state, "needs input" first (longest waiting first)."""
        rows = [{"id": s.id, "label": s.label, "agent": s.agent, **s.attention.snapshot()} for s in self._sessions()]
        rows.sort(key=lambda r: rank(r["attention"], r["since"]))
        return rows

    def message(self, sessions: list[dict[str, Any]] | None = None) -> str:
        return json.dumps({"type": MESSAGE_TYPE, "now": time.time(),
                           "sessions": self.snapshot() if sessions is None else sessions})

    async def stream(self, send_text: Callable[[str], Awaitable[None]]) -> None:
        """Send the states now and after every change until cancelled or the socket fails."""
        subscriber = _Subscriber(asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._subscribers.add(subscriber)
        last: list[dict[str, Any]] | None = None
        try:
            while True:
                subscriber.event.clear()
                sessions = self.snapshot()
                if sessions != last:
                    await send_text(self.message(sessions))
                    last = sessions
                await subscriber.event.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the socket closed under us: the viewer is gone
            log.debug("Attention stream ended: %s", exc)
        finally:
            with self._lock:
                self._subscribers.discard(subscriber)

    # --- the clock ----------------------------------------------------------------
    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            sessions = list(self._sessions())
            if not sessions:
                with self._lock:  # checked again under the lock ``changed`` takes: no session is missed
                    if not list(self._sessions()):
                        self._ticker = None
                        return
                continue
            for session in sessions:
                try:
                    session.attention.tick()
                except Exception:  # one session's trouble must not stop the others
                    log.exception("Attention tick failed for session %s", session.id)

    def stop(self) -> None:
        self._stop.set()
