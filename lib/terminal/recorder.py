"""The ``Recorder``: keeps the running sessions' records (``lib.terminal.records``) current.

It works from its own thread, never on the keystroke path: every
``INTERVAL_S`` it reads each session's output offset (one integer) and
rewrites only the records whose output, label, state or conversation changed;
once more at shutdown (``Runtime.stop``), marking the running ones as ended by
the restart. A record of a session the user closes is deleted with it. At the
next start (``load_ended``), records of sessions that were running become
"ended by a restart" (``SessionStatus.RESTART_ENDED``): the Sessions page and
``GET /api/sessions`` list them, and Resume starts the same agent in the same
folder on the same conversation (``SessionRegistry.resume``). At most
``MAX_ENDED`` ended sessions are kept besides the running ones.

Separate from the record format (``records``) because it is the only part
that runs a thread and touches live ``PtySession`` objects.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lib.agents import get_agent
from lib.terminal.conversation_ids import Known, settle_conversations
from lib.terminal.records import SCREEN_BYTES, RecordStore, SessionRecord
from lib.terminal.session import PtySession, SessionStatus

log = logging.getLogger(__name__)

INTERVAL_S = 2.0  # at most this often a running session's record is rewritten
MAX_ENDED = 30  # ended sessions kept (the most recent); older ones are forgotten at start
MAX_ENDED_AGE_S = 30 * 24 * 3600


class Recorder:
    """Keeps the records of the running sessions current, from its own thread.

    ``sessions`` lists the running sessions (the registry's); ``claimed`` gives
    the conversation ids that ended sessions still hold, so that a new session
    never takes one.
    """

    def __init__(self, store: RecordStore, home: Path, sessions: Callable[[], list[PtySession]],
                 claimed: Callable[[], set[str]] = set, interval: float = INTERVAL_S) -> None:
        self.store = store
        self.home = home
        self.interval = interval
        self._sessions = sessions
        self._claimed = claimed
        self._lock = threading.Lock()  # one pass at a time; ``forget`` waits for a pass
        self._seen: dict[str, tuple[int, tuple[Any, ...]]] = {}  # id -> (output offset, facts) last written
        self._sizes: dict[str, tuple[int, int]] = {}
        self._looked: dict[str, int] = {}  # id -> output offset at its last conversation lookup
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the previous process's sessions

    def load_ended(self, now: float | None = None) -> list[SessionRecord]:
        """Records the last process left: running ones become ended by a restart; the rest is removed.

        Conversations that were not confirmed yet (the process was killed
        before the next pass) are looked up once more. Oldest first.
        """
        now = time.time() if now is None else now
        ended, dropped = [], []
        for record in self.store.load_all():
            if record.status in (SessionStatus.RUNNING, SessionStatus.RESTART_ENDED):
                ended.append(replace(record, status=SessionStatus.RESTART_ENDED,
                                     ended_at=record.ended_at or record.recorded_at or record.last_activity))
            else:  # it had exited or was closed before the restart: nothing to resume
                dropped.append(record)
        ended.sort(key=lambda r: r.ended_at or 0.0, reverse=True)
        keep = [r for r in ended if now - (r.ended_at or 0.0) <= MAX_ENDED_AGE_S][:MAX_ENDED]
        for record in dropped + [r for r in ended if r not in keep]:
            self.store.delete(record.id)
        items = [Known(r.id, r.agent, Path(r.cwd), r.created_at, r.conversation_id, r.conversation_known)
                 for r in keep]
        claimed = {r.conversation_id for r in keep if r.conversation_known and r.conversation_id}
        settled = {i.id: i for i in settle_conversations(items, self.home, claimed)}
        result = []
        for record in keep:
            if record.id in settled:
                item = settled[record.id]
                record = replace(record, conversation_id=item.conversation_id,
                                 conversation_known=item.conversation_known)
            self.store.save(record)
            result.append(record)
        return sorted(result, key=lambda r: r.created_at)

    # -- while running

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="session-records", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.record_all()
            except Exception:  # keep recording the next time
                log.exception("Recording the sessions failed")

    def record_all(self, *, final: bool = False) -> int:
        """One pass: rewrite the records that changed (all of them when ``final``); returns how many."""
        with self._lock:
            sessions = self._sessions()
            self._find_conversations(sessions, final)
            written = 0
            for session in sessions:
                try:
                    written += self._record(session, final)
                except Exception:  # one bad session must not stop the others
                    log.exception("Recording session %s failed", session.id)
            live = {s.id for s in sessions}
            for table in (self._seen, self._sizes, self._looked):
                for session_id in [k for k in table if k not in live]:
                    del table[session_id]
            return written

    def _find_conversations(self, sessions: list[PtySession], final: bool) -> None:
        """Look conversations up for sessions that wrote something since the last look (an answer)."""
        due = [s for s in sessions if not s.conversation_known and s.status == SessionStatus.RUNNING
               and (final or self._looked.get(s.id) != s.output_end)]
        due = [s for s in due if (a := get_agent(s.agent)) is not None and a.conversations is not None]
        if not due:
            return
        for s in due:
            self._looked[s.id] = s.output_end
        claimed = self._claimed() | {s.conversation_id for s in sessions if s.conversation_id}
        items = [Known(s.id, s.agent, s.cwd, s.created_at, s.conversation_id, s.conversation_known, s.pid)
                 for s in due]
        by_id = {s.id: s for s in due}
        for item in settle_conversations(items, self.home, claimed):
            session = by_id[item.id]
            session.conversation_id, session.conversation_known = item.conversation_id, item.conversation_known
            log.info("Session %s (%s) holds conversation %s.", session.id, session.agent, item.conversation_id)

    def _record(self, session: PtySession, final: bool) -> int:
        if session.status == SessionStatus.CLOSED:
            return 0  # being closed: the registry deletes its record
        end = session.output_end
        status = SessionStatus.RESTART_ENDED if final and session.status == SessionStatus.RUNNING else session.status
        facts = (session.label, str(status), session.exit_code, session.conversation_id, session.conversation_known)
        seen = self._seen.get(session.id)
        if seen == (end, facts):
            return 0
        screen = None
        if seen is None or seen[0] != end:
            end, screen, cols, rows = session.last_output(SCREEN_BYTES)
            self._sizes[session.id] = (cols, rows)
        cols, rows = self._sizes.get(session.id, (120, 32))
        now = time.time()
        record = SessionRecord(
            id=session.id, agent=session.agent, label=session.label, cwd=str(session.cwd),
            created_at=session.created_at, last_activity=session.last_activity, status=status,
            exit_code=session.exit_code, conversation_id=session.conversation_id,
            conversation_known=session.conversation_known, cols=cols, rows=rows, recorded_at=now,
            ended_at=now if status == SessionStatus.RESTART_ENDED else None,
        )
        self.store.save(record, screen)
        self._seen[session.id] = (end, facts)
        return 1

    def forget(self, session_id: str) -> None:
        """The user closed the session: delete its record (after a pass that may be writing it)."""
        with self._lock:
            self._seen.pop(session_id, None)
            self.store.delete(session_id)

    def stop(self, *, final: bool = True) -> None:
        """Stop the thread; with ``final``, record every session once more as ended by the restart."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if final:
            try:
                count = self.record_all(final=True)
            except Exception:  # shutdown goes on
                log.exception("Recording the sessions at shutdown failed")
            else:
                log.info("Recorded %d session(s) for after the restart.", count)
