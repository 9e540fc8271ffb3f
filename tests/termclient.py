"""A tiny terminal client over the app's WebSocket, for tests and benchmarks."""

from __future__ import annotations

import json
import re
import time

from websockets.sync.client import connect


class TermClient:
    def __init__(self, ws_url: str, session_id: str, headers: dict[str, str] | None = None, origin: str | None = None):
        self.ws = connect(  # a sync client, kept open across calls
            f"{ws_url}/terminal/ws/{session_id}",
            additional_headers=headers or {},
            origin=origin,
            max_size=None,
            open_timeout=10,
        )
        self.output = bytearray()
        self.controls: list[dict] = []
        self.close_code: int | None = None

    def send(self, data: str | bytes) -> None:
        self.ws.send(data.encode() if isinstance(data, str) else data)

    def resize(self, cols: int, rows: int) -> None:
        self.ws.send(json.dumps({"type": "resize", "cols": cols, "rows": rows}))

    def _pump(self, timeout: float) -> bool:
        try:
            msg = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return False
        except Exception:  # closed
            self.close_code = self.ws.close_code
            raise EOFError(f"socket closed with code {self.close_code}") from None
        if isinstance(msg, bytes):
            self.output += msg
        else:
            self.controls.append(json.loads(msg))
        return True

    def read_until(self, pattern: bytes | str, timeout: float = 10) -> bytes:
        """Wait until the output so far matches ``pattern`` (a regex); returns all output."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        start = 0
        while not regex.search(self.output, start):
            # Only new output (plus an overlap for a match across chunks) is searched again.
            start = max(0, len(self.output) - 4096)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{pattern!r} not seen; got tail {bytes(self.output[-500:])!r}")
            self._pump(min(left, 0.5))
        return bytes(self.output)

    def wait_control(self, kind: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for c in self.controls:
                if c.get("type") == kind:
                    self.controls.remove(c)
                    return c
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind!r} control message; controls={self.controls}")
            self._pump(min(left, 0.5))

    def wait_closed(self, timeout: float = 10) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._pump(0.5)
            except EOFError:
                return self.close_code
        raise TimeoutError("socket still open")

    def close(self) -> None:
        self.ws.close()
