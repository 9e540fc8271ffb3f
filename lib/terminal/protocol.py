"""The terminal WebSocket's control messages (text frames carrying JSON).

Binary frames are raw terminal bytes in both directions and never pass
through here. Parsing is strict so that a confused or hostile client gets a
readable error instead of a crashed session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MIN_COLS, MAX_COLS = 2, 1000
MIN_ROWS, MAX_ROWS = 1, 500
MAX_CONTROL_BYTES = 4096

# Close codes the browser component understands (4000-4999 are ours).
CLOSE_UNKNOWN_SESSION = 4404
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_SESSION_CLOSED = 4410


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
