"""Session records: what each terminal session is, kept on disk so it outlives the app process.

On Databricks Apps every deploy restarts the process, and a restart ends every
PTY. So each session has a record under ``~/.coda/sessions/``:

- ``<id>.json``: agent, label, folder, created, last activity, status and exit
  code, the agent's conversation id, the terminal size;
- ``<id>.screen``: the last ``SCREEN_BYTES`` of its output, enough to draw its
  last screen again (``lib.terminal.snapshot``).

Both are written atomically (``lib.statefile``) and are bounded: a record is
small, a screen at most ``SCREEN_BYTES``, and at most ``MAX_ENDED`` ended
sessions are kept besides the running ones.

The ``Recorder`` keeps them current from its own thread, never on the
keystroke path: every ``INTERVAL_S`` it reads each session's output offset
(one integer) and rewrites only the records whose output, label, state or
conversation changed; once more at shutdown (``Runtime.stop``), marking the
running ones as ended by the restart. A record of a session the user closes
is deleted with it. At the next start, records of sessions that were running
become "ended by a restart" (``SessionStatus.RESTART_ENDED``): the Sessions
page and ``GET /api/sessions`` list them, and Resume starts the same agent in
the same folder on the same conversation (``SessionRegistry.resume``).

The conversation id: Claude Code and Gemini CLI take one chosen up front
(``Agent.new_conversation_args``), confirmed here once it is in the CLI's
store; Codex and OpenCode choose their own, found in their stores by folder
and time (``match_conversations``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lib import homefiles, statefile
from lib.agents import get_agent
from lib.agents.base import Conversation
from lib.terminal import procs
from lib.terminal.session import PtySession, SessionStatus

log = logging.getLogger(__name__)

SCREEN_BYTES = 256 * 1024  # output kept to draw the last screen again
INTERVAL_S = 2.0  # at most this often a running session's record is rewritten
MAX_ENDED = 30  # ended sessions kept (the most recent); older ones are forgotten at start
MAX_ENDED_AGE_S = 30 * 24 * 3600
SLACK_S = 5.0  # clock slack between a session's start and its CLI's own timestamps
_ID_RE = re.compile(r"^[0-9a-f]{12}$")
_MAX_TEXT = 4096


def records_dir(home: Path) -> Path:
    """``~/.coda/sessions``: one record (and last screen) per session."""
    return homefiles.coda_dir(home) / "sessions"


@dataclass
class SessionRecord:
    """A session as its record on disk says; ``to_dict`` is its entry in ``GET /api/sessions``."""

    id: str
    agent: str
    label: str
    cwd: str
    created_at: float
    last_activity: float
    status: SessionStatus
    exit_code: int | None = None
    conversation_id: str | None = None  # the agent's conversation (chosen up front, or found)
    conversation_known: bool = False  # the agent's store holds it: Resume continues it
    cols: int = 120
    rows: int = 32
    recorded_at: float = 0.0
    ended_at: float | None = None

    @property
    def resumable_conversation(self) -> str | None:
        """The conversation Resume continues; ``None``: the agent starts afresh in the same folder."""
        return self.conversation_id if self.conversation_known else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}

    @classmethod
    def from_json(cls, data: Any) -> SessionRecord | None:
        """A record read back; ``None`` when it is not one (hand-edited, another version)."""
        if not isinstance(data, dict) or not _ID_RE.match(str(data.get("id", ""))):
            return None
        try:
            record = cls(
                id=data["id"], agent=str(data["agent"])[:64], label=str(data["label"])[:_MAX_TEXT],
                cwd=str(data["cwd"])[:_MAX_TEXT], created_at=float(data["created_at"]),
                last_activity=float(data["last_activity"]), status=SessionStatus(data["status"]),
                exit_code=None if data.get("exit_code") is None else int(data["exit_code"]),
                conversation_id=_text_or_none(data.get("conversation_id")),
                conversation_known=bool(data.get("conversation_known")),
                cols=int(data.get("cols", 120)), rows=int(data.get("rows", 32)),
                recorded_at=float(data.get("recorded_at") or 0.0),
                ended_at=None if data.get("ended_at") is None else float(data["ended_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return record

    def to_dict(self) -> dict[str, Any]:
        """The same fields as a running session's (``PtySession.to_dict``), plus when it ended and its conversation."""
        return {
            "id": self.id,
            "agent": self.agent,
            "label": self.label,
            "cwd": self.cwd,
            "pid": None,
            "created_at": self.created_at,
            "last_activity": self.last_activity,
            "status": str(self.status),
            "exit_code": self.exit_code,
            "clients": 0,
            "foreground": None,
            "ended_at": self.ended_at,
            "conversation_id": self.resumable_conversation,
        }


def _text_or_none(value: Any) -> str | None:
    return value[:256] if isinstance(value, str) and value else None


class RecordStore:
    """The files of ``~/.coda/sessions``: ``<id>.json`` and ``<id>.screen``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _json(self, session_id: str) -> Path:
        return self.folder / f"{session_id}.json"

    def _screen(self, session_id: str) -> Path:
        return self.folder / f"{session_id}.screen"

    def save(self, record: SessionRecord, screen: bytes | None = None) -> None:
        """Write the record (and its last output when given), each atomically; the screen first."""
        if screen is not None:
            statefile.atomic_write(self._screen(record.id), screen[-SCREEN_BYTES:])
        statefile.write_json(self._json(record.id), record.to_json())

    def load_all(self) -> list[SessionRecord]:
        records = []
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            record = SessionRecord.from_json(statefile.read_json(path))
            if record is None or path.stem != record.id:
                log.warning("Ignoring %s: not a session record.", path)
                continue
            records.append(record)
        return records

    def screen(self, session_id: str) -> bytes:
        """The last output recorded for ``session_id`` (``b""`` when none)."""
        try:
            with self._screen(session_id).open("rb") as f:
                return f.read(SCREEN_BYTES)
        except OSError:
            return b""

    def delete(self, session_id: str) -> None:
        for path in (self._json(session_id), self._screen(session_id)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("Could not delete %s: %s", path, exc)


# ---------------------------------------------------------------- which conversation is whose


@dataclass(frozen=True)
class Pending:
    """A session of an agent that picks its own conversation ids, whose conversation is not known yet."""

    id: str
    created_at: float


def match_conversations(pending: Iterable[Pending], candidates: Iterable[Conversation],
                        slack: float = SLACK_S) -> dict[str, str]:
    """Session id -> conversation id, for sessions of one agent in one folder.

    ``candidates`` are the conversations of that folder in the CLI's store that
    no other session has. A conversation written since a session started may
    be its own; when several sessions could own one, it goes to the one
    started last before the conversation began (Codex stamps a conversation
    with its TUI's start, OpenCode with its first message), and when it began
    before all of them (a conversation continued with ``--continue``) it is
    left alone rather than guessed.
    """
    free = sorted(pending, key=lambda p: p.created_at)
    found: dict[str, str] = {}
    for conversation in sorted(candidates, key=lambda c: c.started_at):
        owners = [p for p in free if conversation.updated_at >= p.created_at - slack]
        if len(owners) > 1:
            owners = [p for p in owners if p.created_at - slack <= conversation.started_at][-1:]
        if owners:
            found[owners[0].id] = conversation.id
            free.remove(owners[0])
    return found


def _lookup(agent_id: str, home: Path, folder: Path, since: float) -> list[Conversation]:
    agent = get_agent(agent_id)
    if agent is None or agent.conversations is None:
        return []
    try:
        return agent.conversations(home, folder, since)
    except Exception:  # a CLI's store in an unexpected shape must not stop the recording
        log.exception("Reading %s's conversations failed", agent_id)
        return []


@dataclass
class _Known:
    """The conversation facts a lookup settles, for a session or a record."""

    id: str
    agent: str
    folder: Path
    created_at: float
    conversation_id: str | None
    conversation_known: bool
    sid: int | None = None  # a running session's process session (its processes' files tell)


def open_files(sid: int) -> set[str]:
    """Paths of the files the processes of session ``sid`` hold open."""
    paths = set()
    for pid in procs.session_members(sid):
        try:
            fds = os.scandir(f"/proc/{pid}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    paths.add(os.readlink(fd.path))
                except OSError:
                    pass
    return paths


def settle_conversations(items: list[_Known], home: Path, claimed: set[str]) -> list[_Known]:
    """Confirm chosen ids found in the stores and find the others; returns the items that changed."""
    changed = []
    groups: dict[tuple[str, Path], list[_Known]] = {}
    for item in items:
        agent = get_agent(item.agent)
        if item.conversation_known or agent is None or agent.conversations is None:
            continue
        groups.setdefault((item.agent, item.folder), []).append(item)
    for (agent_id, folder), group in groups.items():
        found = _lookup(agent_id, home, folder, min(i.created_at for i in group) - SLACK_S)
        ids = {c.id for c in found}
        chosen = [i for i in group if i.conversation_id]
        for item in chosen:
            if item.conversation_id in ids:
                item.conversation_known = True
                changed.append(item)
        taken = claimed | {i.conversation_id for i in chosen if i.conversation_id}
        unknown = {i.id: i for i in group if not i.conversation_id}
        by_path = {c.path: c for c in found if c.path and c.id not in taken}
        for item in list(unknown.values()):  # the conversation file its own processes hold open (Codex)
            if item.sid is not None and by_path:
                held = [by_path[p] for p in open_files(item.sid) if p in by_path]
                if len(held) == 1:
                    item.conversation_id, item.conversation_known = held[0].id, True
                    taken.add(held[0].id)
                    del unknown[item.id]
                    changed.append(item)
        # By folder and time (``match_conversations``): for a running session only where no file
        # can tell (OpenCode's one database); a file nobody holds open is no running session's yet.
        live = any(i.sid is not None for i in unknown.values())
        pool = [c for c in found if c.id not in taken and not (live and c.path)]
        if unknown and pool:
            matched = match_conversations([Pending(i.id, i.created_at) for i in unknown.values()], pool)
            for session_id, conversation_id in matched.items():
                item = unknown[session_id]
                item.conversation_id, item.conversation_known = conversation_id, True
                changed.append(item)
    return changed


# ---------------------------------------------------------------- the recorder


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
        items = [_Known(r.id, r.agent, Path(r.cwd), r.created_at, r.conversation_id, r.conversation_known)
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
        items = [_Known(s.id, s.agent, s.cwd, s.created_at, s.conversation_id, s.conversation_known, s.pid)
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

