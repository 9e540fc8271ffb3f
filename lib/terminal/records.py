"""Session records: what each terminal session is, kept on disk so it outlives the app process.

On Databricks Apps every deploy restarts the process, and a restart ends every
PTY. So each session has a record under ``~/.coda/sessions/``:

- ``<id>.json``: agent, label, folder, created, last activity, status and exit
  code, the agent's conversation id, the terminal size;
- ``<id>.screen``: the last ``SCREEN_BYTES`` of its output, enough to draw its
  last screen again (``lib.terminal.snapshot``).

Both are written atomically (``lib.statefile``) and are bounded: a record is
small, a screen at most ``SCREEN_BYTES``. This module owns the format and the
files (``SessionRecord``, ``RecordStore``) and nothing else, so the Sessions
page can read records without the machinery that writes them:

- ``lib.terminal.recorder`` keeps the records of running sessions current
  from its own thread, and turns the previous process's records into
  sessions "ended by a restart" (``SessionStatus.RESTART_ENDED``) at start;
- ``lib.terminal.conversation_ids`` finds which agent conversation each
  session holds, so Resume continues the same conversation.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lib import homefiles, statefile
from lib.terminal.session import SessionStatus

log = logging.getLogger(__name__)

SCREEN_BYTES = 256 * 1024  # output kept to draw the last screen again
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
