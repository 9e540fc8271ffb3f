"""What the terminal's server side and its browser component agree on.

Text frames on the terminal WebSocket carry JSON control messages (this
module parses and builds them); binary frames are raw terminal bytes in both
directions and never pass through here. Parsing is strict so that a confused
or hostile client gets a readable error instead of a crashed session.

Close codes: ``Close`` is the one table. The component gets it in its mount
data (``close_codes()``) and looks up every close there: what to tell the
user, and whether reconnecting can help. Our codes are 4000 + the HTTP status
that means the same thing, because a refused handshake never reaches the
browser as a close code: the security middleware refuses strangers and
cross-site sockets *before* the handshake (with an HTTP 403/503), and the
browser reports that only as 1006, exactly like a network failure. So when a
socket closes without ever having opened, the component asks once
``GET {base}/api/sessions`` (same cookies, same access checks) and looks up
``4000 + status``: 403 → ``FORBIDDEN`` (final), 503 → ``NOT_READY`` (retry);
a 200 list without the session → ``UNKNOWN_SESSION`` (final); anything else
(including no answer at all) → retry with backoff.

URLs: Streamlit serves everything under ``server.baseUrlPath``; ``lib.settings.base_url_path()``
is that prefix, for the middleware's open paths, the routes and the
component's URLs (``{base}/terminal/ws/{id}``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

MIN_COLS, MAX_COLS = 2, 1000
MIN_ROWS, MAX_ROWS = 1, 500
MAX_CONTROL_BYTES = 4096


class Close(IntEnum):
    """WebSocket close codes of the terminal route: code, meaning, and whether a retry can help."""

    meaning: str
    retry: bool

    def __new__(cls, code: int, meaning: str, retry: bool) -> Close:
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        member.retry = retry
        return member

    # Sent by the server after the handshake.
    UNKNOWN_SESSION = 4404, "Unknown session", False
    TOO_SLOW = 4408, "Too far behind", True  # reconnect, replay catches up
    SESSION_CLOSED = 4410, "Session closed", False
    # Refused before the handshake (HTTP 403/503); the component finds out by probing.
    FORBIDDEN = 4403, "Forbidden", False
    NOT_READY = 4503, "Not ready", True  # owner not known yet on Databricks Apps


# The names routes.py uses.
CLOSE_UNKNOWN_SESSION = Close.UNKNOWN_SESSION
CLOSE_TOO_SLOW = Close.TOO_SLOW
CLOSE_SESSION_CLOSED = Close.SESSION_CLOSED


def close_codes() -> dict[str, dict[str, Any]]:
    """The close-code table as the component receives it: ``{"4404": {"meaning", "retry"}, ...}``."""
    return {str(int(c)): {"meaning": c.meaning, "retry": c.retry} for c in Close}



class ProtocolError(ValueError):
    """A control message that cannot be applied; the text is sent back as is."""


@dataclass(frozen=True)
class Resize:
    cols: int
    rows: int


def _dimension(msg: dict, name: str, lo: int, hi: int) -> int:
    value = msg.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"resize needs a whole number for '{name}', got {value!r}")
    if not lo <= value <= hi:
        raise ProtocolError(f"resize '{name}' must be between {lo} and {hi}, got {value}")
    return value


def parse_control(text: str) -> Resize:
    if len(text) > MAX_CONTROL_BYTES:
        raise ProtocolError("control message too long")
    try:
        msg = json.loads(text)
    except ValueError:
        raise ProtocolError("control message is not valid JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("control message must be a JSON object")
    kind = msg.get("type")
    if kind == "resize":
        return Resize(_dimension(msg, "cols", MIN_COLS, MAX_COLS), _dimension(msg, "rows", MIN_ROWS, MAX_ROWS))
    raise ProtocolError(f"unknown control message type {kind!r}")


def exit_message(code: int | None) -> str:
    return json.dumps({"type": "exit", "code": code})


def error_message(text: str) -> str:
    return json.dumps({"type": "error", "message": text})
