"""Shared helpers of the terminal fidelity tests (issue 9).

- ``RECORDER``: a program to run in a session. It puts its terminal in raw
  mode, optionally prints terminal queries and a stream of numbered lines,
  and appends every byte it reads to a file: the exact bytes that reached the
  PTY, so a test proves what was typed (and that a replay typed nothing).
- ``SCREEN_JS``: the visible screen of the page's xterm.js, cell attributes
  included, and its cursor; ``buffer_lines`` the whole buffer as text.
- ``run_in_session``: type a command into a session over its WebSocket.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from tests.termclient import TermClient

RECORDER = Path(__file__).with_name("termrecorder.py")

# The visible screen: text, a digest of every cell's attributes per row, the
# cursor and the active buffer. Two terminals showing the same thing give equal values.
SCREEN_JS = """() => {
  const t = window.__codaTerm; if (!t) return null;
  const b = t.buffer.active;
  const rows = [];
  for (let y = 0; y < t.rows; y++) {
    const line = b.getLine(b.baseY + y);
    if (!line) { rows.push(["", ""]); continue; }
    let attrs = "";
    for (let x = 0; x < t.cols; x++) {
      const c = line.getCell(x);
      if (!c) break;
      attrs += [c.getChars() ? 1 : 0, c.getWidth(), c.getFgColorMode(), c.getFgColor(), c.getBgColorMode(),
        c.getBgColor(), c.isBold(), c.isDim(), c.isItalic(), c.isUnderline(), c.isInverse(), c.isInvisible()].join(",")
        + ";";
    }
    rows.push([line.translateToString(true), attrs]);
  }
  return { cols: t.cols, rows: t.rows, type: b.type, cursorX: b.cursorX, cursorY: b.cursorY, lines: rows };
}"""

BUFFER_JS = """() => {
  const t = window.__codaTerm; if (!t) return null;
  const b = t.buffer.normal; const out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  while (out.length && out[out.length - 1] === "") out.pop();
  return out;
}"""


def screen(page) -> dict:
    """The visible screen, attributes hashed per row (short diffs when a test fails)."""
    raw = page.evaluate(SCREEN_JS)
    raw["lines"] = [[text, hashlib.sha1(attrs.encode()).hexdigest()[:10]] for text, attrs in raw["lines"]]
    return raw


def buffer_lines(page) -> list[str]:
    return page.evaluate(BUFFER_JS)


def settled_screen(page, quiet_s: float = 0.6, timeout_s: float = 20) -> dict:
    """The screen once it stopped changing for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    last = screen(page)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = screen(page)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
    return last


def wait_live(page, timeout_ms: int = 60000) -> None:
    """The page's terminal is connected and past its replay.

    The first page of a freshly started app also waits for Streamlit's first
    script run and the component's assets: on a busy 2-core machine that took
    over 30 s once, so the default leaves room for it.
    """
    page.wait_for_function(
        "() => window.__codaTerm && document.querySelector('*') &&"
        " window.__codaTermViewer && window.__codaTermViewer.state().outOffset !== null"
        " && !window.__codaTermViewer.state().replaying",
        timeout=timeout_ms,
    )


def run_in_session(app, session_id: str, command: str, *, headers: dict | None = None) -> None:
    """Type ``command`` and Enter into a session from a second, short-lived viewer."""
    t = TermClient(app.ws_url, session_id, headers=headers)
    try:
        t.send(command + "\r")
        time.sleep(0.2)
    finally:
        t.close()


def recorder_command(out: Path, *, queries: bool = False, stream: int = 0, interval: float = 0.01,
                     bracketed: bool = False) -> str:
    args = [sys.executable, str(RECORDER), str(out)]
    if queries:
        args.append("--queries")
    if stream:
        args += ["--stream", str(stream), "--interval", str(interval)]
    if bracketed:
        args.append("--bracketed")
    return " ".join(args)


def wait_file(path: Path, predicate, timeout_s: float = 15) -> bytes:
    deadline = time.monotonic() + timeout_s
    data = b""
    while time.monotonic() < deadline:
        data = path.read_bytes() if path.exists() else b""
        if predicate(data):
            return data
        time.sleep(0.05)
    raise AssertionError(f"{path.name}: condition not met; it holds {data[-300:]!r}")


def assert_same_screens(a, b, what: str, timeout_s: float = 20) -> None:
    """The two pages show the same screen: compared together, until they agree or time runs out.

    A program may change its screen at any moment (a hint that goes away, a
    clock): both pages get that change, so a real difference stays while a
    change caught between two reads goes away.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        sa, sb = screen(a), screen(b)
        if sa == sb:
            return
        if time.monotonic() > deadline:
            diff = [(i, x, y) for i, (x, y) in enumerate(zip(sa["lines"], sb["lines"], strict=False)) if x != y][:4]
            head = {k: (sa[k], sb[k]) for k in ("cols", "rows", "type", "cursorX", "cursorY") if sa[k] != sb[k]}
            raise AssertionError(f"{what}: screens differ {head} {diff}")
        time.sleep(0.25)
