"""Browser test of components/terminal against a fake terminal WebSocket.

A throwaway st.App serves a page with the real component and a WebSocket
route that behaves like the PTY route (replay on connect, echo, control
messages). Chromium, driven by Playwright, checks what a user would see.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

REPO = Path(__file__).resolve().parents[1]
from tests.browser import CHROMIUM, CHROMIUM_ARGS
SCREENSHOT = Path(os.environ.get("TERMINAL_SCREENSHOT", "/tmp/terminal.png"))

# The fake server. Each session id picks a behaviour; every event is appended
# to a JSON-lines file the test reads.
APP_PY = r'''
import json, os
import streamlit as st
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

EVENTS = os.environ["TERMINAL_TEST_EVENTS"]
refuse_next = set()  # session ids whose next handshake is refused once

def record(**event):
    with open(EVENTS, "a") as f:
        f.write(json.dumps(event) + "\n")

async def fake_pty(ws):
    sid = ws.path_params["id"]
    if sid in refuse_next:  # handshake refused: the client must back off and retry
        refuse_next.discard(sid)
        record(type="refused", id=sid)
        await ws.close()
        return
    await ws.accept()
    record(type="connect", id=sid)
    if sid == "missing":
        await ws.close(code=4404, reason="Unknown session")
        return
    # The replay splits a UTF-8 character across frames: xterm must join them.
    await ws.send_bytes(b"replay-ok \xe2\x9c")
    await ws.send_bytes(b"\x93\r\n")
    if sid == "exits":
        await ws.send_text(json.dumps({"type": "error", "message": "boom"}))
        await ws.send_text(json.dumps({"type": "exit", "code": 3}))
        await ws.close()
        return
    typed = b""
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            if msg.get("text") is not None:
                record(id=sid, **json.loads(msg["text"]))
                continue
            data = msg["bytes"]
            record(type="bytes", id=sid, data=data.decode("latin-1"))
            await ws.send_bytes(data)
            typed += data
            if b"DROP" in typed:  # simulate a server-side drop
                refuse_next.add(sid)
                await ws.close(code=1011)
                break
    except WebSocketDisconnect:
        pass
    record(type="disconnect", id=sid)

app = st.App("page.py", routes=[WebSocketRoute("/terminal/ws/{id}", fake_pty)])
'''

PAGE_PY = r'''
import sys
sys.path.insert(0, {repo!r})
import streamlit as st
from components.terminal import terminal

st.set_page_config(layout="wide")
if st.checkbox("show terminal", value=True):
    terminal(
        st.query_params.get("sid", "s1"),
        theme=st.query_params.get("theme", "auto"),
        height=420,
    )
'''

READ_BUFFER = """() => {
  const b = window.__codaTerm.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join("\\n");
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Run the throwaway app with `streamlit run`, dark theme; yield (url, events file)."""
    tmp = tmp_path_factory.mktemp("terminal_app")
    (tmp / "app.py").write_text(APP_PY)
    (tmp / "page.py").write_text(PAGE_PY.format(repo=str(REPO)))
    events = tmp / "events.jsonl"
    events.touch()
    port = _free_port()
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py",
         "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false", "--theme.base", "dark"],
        cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "TERMINAL_TEST_EVENTS": str(events)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("streamlit did not start:\n" + (tmp / "server.log").read_text())
            time.sleep(0.2)
        yield url, events
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1200, "height": 800})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors


def _events(path: Path, sid: str, kind: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [r for r in rows if r.get("id") == sid and (kind is None or r["type"] == kind)]


def _wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return result


def _buffer(page) -> str:
    return page.evaluate(READ_BUFFER)


def _open(page, url: str, query: str):
    page.goto(f"{url}/?{query}")
    expect(page.get_by_test_id("terminal")).to_be_visible(timeout=30_000)
    page.wait_for_function("() => window.__codaTerm !== undefined", timeout=30_000)
    _wait_for(lambda: "replay-ok" in _buffer(page))


def test_renders_echoes_resizes_and_reconnects(server, page):
    url, events = server
    _open(page, url, "sid=s1")
    assert "replay-ok ✓" in _buffer(page)  # UTF-8 split across frames decoded by xterm
    expect(page.get_by_test_id("terminal-status")).to_be_hidden()

    # A resize arrives right after connect, with a size that fits 420 px.
    first = _wait_for(lambda: _events(events, "s1", "resize"))[0]
    assert 40 <= first["cols"] <= 300 and 10 <= first["rows"] <= 40, first

    # Focus is in the terminal on mount: typing goes to the socket and echoes back.
    page.keyboard.type("hello")
    _wait_for(lambda: "replay-ok ✓\nhello" in _buffer(page))
    typed = "".join(e["data"] for e in _events(events, "s1", "bytes"))
    assert typed == "hello"

    # Narrowing the window refits and sends a smaller size (debounced).
    page.set_viewport_size({"width": 800, "height": 800})
    smaller = _wait_for(
        lambda: [e for e in _events(events, "s1", "resize") if e["cols"] < first["cols"]]
    )
    assert smaller[-1]["rows"] == first["rows"]

    # Screenshot before the drop, for a human look at theme and layout.
    page.set_viewport_size({"width": 1200, "height": 800})
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOT))

    # The server drops the socket and refuses the first retry: the overlay
    # shows until the backoff reconnects, and the replay is not duplicated.
    page.keyboard.type("DROP")
    status = page.get_by_test_id("terminal-status")
    expect(status).to_have_text("Reconnecting…", timeout=5_000)
    expect(status).to_be_hidden(timeout=10_000)
    _wait_for(lambda: len(_events(events, "s1", "connect")) == 2)
    assert len(_events(events, "s1", "refused")) == 1
    _wait_for(lambda: "replay-ok" in _buffer(page))
    assert _buffer(page).count("replay-ok") == 1
    assert "hello" not in _buffer(page)  # screen was reset before the replay
    _wait_for(lambda: len(_events(events, "s1", "resize")) > 2)  # resent after reconnect

    # Unmounting closes the socket for good (no reconnect afterwards).
    page.get_by_text("show terminal").click()
    expect(page.get_by_test_id("terminal")).to_have_count(0)
    _wait_for(lambda: len(_events(events, "s1", "disconnect")) == 2)
    page.wait_for_timeout(1500)
    assert len(_events(events, "s1", "connect")) == 2
    assert page.evaluate("() => window.__codaTerm") is None


def test_exit_and_error_messages_stop_reconnecting(server, page):
    url, events = server
    _open(page, url, "sid=exits&theme=light")
    _wait_for(lambda: "[process exited with code 3]" in _buffer(page))
    assert "boom" in _buffer(page)
    assert page.get_by_test_id("terminal").get_attribute("data-theme") == "light"
    page.wait_for_timeout(1500)
    assert len(_events(events, "exits", "connect")) == 1
    expect(page.get_by_test_id("terminal-status")).to_be_hidden()


def test_unknown_session_is_final(server, page):
    url, events = server
    page.goto(f"{url}/?sid=missing")
    status = page.get_by_test_id("terminal-status")
    expect(status).to_have_text("Unknown session (4404)", timeout=30_000)
    page.wait_for_timeout(1500)
    assert len(_events(events, "missing", "connect")) == 1
    # "auto" follows Streamlit's dark theme.
    assert page.get_by_test_id("terminal").get_attribute("data-theme") == "dark"


def test_search_box(server, page):
    url, _ = server
    _open(page, url, "sid=s2")
    page.keyboard.press("Control+Shift+F")
    box = page.get_by_test_id("terminal-search")
    expect(box).to_be_visible()
    expect(box).to_be_focused()
    box.fill("replay")
    page.wait_for_function("() => window.__codaTerm.getSelection() === 'replay'")
    box.press("Escape")
    expect(box).to_be_hidden()
    page.keyboard.type("x")  # focus went back to the terminal
    _wait_for(lambda: "replay-ok ✓\nx" in _buffer(page))
