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

Connecting: ``{base}/terminal/ws/{id}``, then the browser's first message is
``{"type": "hello", "viewer": <id>, "resume": <offset>}``. ``viewer`` names
the browser tab's terminal (it keeps it across reconnects); ``resume`` is how
much output it already has (an absolute byte offset), when any. The server
waits for it (a browser, which always sends an ``Origin``, up to
``HELLO_WAIT_S``; other clients not at all) and first sends the replay,
framed by control messages::

    {"type": "replay", "mode": "full"|"resume", "offset", "cols", "rows", "input"}
    binary (full mode: a state prefix, then output) and {"type": "size", "cols", "rows"} items
    {"type": "unseen"}   (optional) output from here on was produced with nobody watching
    {"type": "live", "offset"}

In "full" mode the terminal resets and takes ``cols`` x ``rows`` first; in
"resume" mode it keeps its screen. Until "unseen" (or "live") the terminal's
answers to queries found in the bytes (cursor position, colours, device
attributes) are dropped: they were answered when the output was live, and
answering again would type them into the program. ``input`` is how many
bytes of this viewer's input the session has taken; the browser resends the
rest, so nothing typed during a reconnect is lost or doubled (``null``: no
hello, nothing counted, nothing resent). After "live",
``offset`` plus the binary bytes received so far is what to send as
``resume`` next time.

Keepalive, both ways, every ``PING_INTERVAL_S``: ``{"type": "ping"}`` is
answered with ``{"type": "pong", "input"}`` (the server's pong carries the
input count, so the browser can forget what is delivered). A side that hears
nothing for ``3 * PING_INTERVAL_S`` closes and, in the browser, reconnects.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

MIN_COLS, MAX_COLS = 2, 1000
MIN_ROWS, MAX_ROWS = 1, 500
MAX_CONTROL_BYTES = 4096
# Lines of history the browser's terminal keeps: the replay needs no more (``Scrollback.replay``).
SCROLLBACK_LINES = 10000
HELLO_WAIT_S = 5.0  # how long the server waits for a browser's hello before replaying as for an anonymous client
_VIEWER_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def ping_interval() -> float:
    """Seconds between keepalive pings (``CODA_PING_SECONDS`` for tests; 25 otherwise)."""
    try:
        value = float(os.environ.get("CODA_PING_SECONDS", "25"))
    except ValueError:
        return 25.0
    return min(max(value, 0.2), 300.0)


PING_INTERVAL_S = ping_interval()


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
    REPLACED = 4409, "Replaced by a newer connection", False  # the same viewer reconnected
    # The other side answered nothing for three ping intervals (a dead proxy or network).
    NO_ANSWER = 4504, "Connection went quiet", True
    # Refused before the handshake (HTTP 403/503); the component finds out by probing.
    FORBIDDEN = 4403, "Forbidden", False
    NOT_READY = 4503, "Not ready", True  # owner not known yet on Databricks Apps


# The names routes.py uses.
CLOSE_UNKNOWN_SESSION = Close.UNKNOWN_SESSION
CLOSE_TOO_SLOW = Close.TOO_SLOW
CLOSE_SESSION_CLOSED = Close.SESSION_CLOSED
CLOSE_REPLACED = Close.REPLACED
# The session no longer exists: the page says so and offers what to do instead.
GONE_CODES = (Close.UNKNOWN_SESSION, Close.SESSION_CLOSED)
CLOSE_NO_ANSWER = Close.NO_ANSWER


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


@dataclass(frozen=True)
class Hello:
    """Who the terminal is (``viewer``), how much output it has (``resume``); ``whole``: no late start."""

    viewer: str | None
    resume: int | None
    whole: bool = False


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Pong:
    pass


def parse_control(text: str) -> Resize | Hello | Ping | Pong:
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
    if kind == "hello":
        viewer, resume = msg.get("viewer"), msg.get("resume")
        ok_resume = isinstance(resume, int) and not isinstance(resume, bool) and 0 <= resume < 1 << 62
        return Hello(
            viewer if isinstance(viewer, str) and _VIEWER_RE.match(viewer) else None,
            resume if ok_resume else None,
            msg.get("replay") == "all",
        )
    if kind == "ping":
        return Ping()
    if kind == "pong":
        return Pong()
    raise ProtocolError(f"unknown control message type {kind!r}")


def exit_message(code: int | None) -> str:
    return json.dumps({"type": "exit", "code": code})


def error_message(text: str) -> str:
    return json.dumps({"type": "error", "message": text})


def replay_message(mode: str, offset: int, cols: int, rows: int, input_taken: int | None) -> str:
    return json.dumps(
        {"type": "replay", "mode": mode, "offset": offset, "cols": cols, "rows": rows, "input": input_taken}
    )


def size_message(cols: int, rows: int) -> str:
    return json.dumps({"type": "size", "cols": cols, "rows": rows})


def unseen_message() -> str:
    return json.dumps({"type": "unseen"})


def live_message(offset: int) -> str:
    return json.dumps({"type": "live", "offset": offset})


def ping_message() -> str:
    return json.dumps({"type": "ping"})


def pong_message(input_taken: int | None) -> str:
    return json.dumps({"type": "pong", "input": input_taken})
