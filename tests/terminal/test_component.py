"""Browser test of components/terminal against a fake terminal WebSocket.

A throwaway st.App serves a page with the real component and a WebSocket
route that behaves like the PTY route (replay on connect, echo, control
messages). Chromium, driven by Playwright, checks what a user would see.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
from tests.browser import CHROMIUM, CHROMIUM_ARGS

SCREENSHOT = Path(os.environ.get("TERMINAL_SCREENSHOT", "/tmp/terminal.png"))

# The fake server. Each session id picks a behaviour; every event is appended
# to a JSON-lines file the test reads.
APP_PY = r'''
import json, os
from urllib.parse import parse_qs, urlsplit
import streamlit as st
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

EVENTS = os.environ["TERMINAL_TEST_EVENTS"]
refuse_next = set()  # session ids whose next handshake is refused once
# Session ids whose handshakes are refused before accept, like the security
# middleware refuses them: [refusals left (None: always), the status that
# GET /api/sessions (the page's probe) answers meanwhile].
refusing = {"forbidden": [None, 403], "notready": [2, 503], "gone": [None, 200]}
ERRORS = {
    403: "This app belongs to owner@example.com. You are signed in as mallory@example.com.",
    503: "Owner not resolved yet: still looking.",
}
LISTED = ["s1", "s2", "exits", "missing", "closed", "forbidden", "notready"]  # not "gone"

def record(**event):
    with open(EVENTS, "a") as f:
        f.write(json.dumps(event) + "\n")

def refuse(sid):
    if sid in refuse_next:
        refuse_next.discard(sid)
        return True
    rule = refusing.get(sid)
    if rule is None or rule[0] == 0:
        return False
    if rule[0] is not None:
        rule[0] -= 1
    return True

async def list_sessions(request):
    # The page's session id, from the page URL the browser sends as Referer.
    query = parse_qs(urlsplit(request.headers.get("referer", "")).query)
    sid = query.get("sid", ["s1"])[0]
    record(type="probe", id=sid)
    status = refusing.get(sid, [0, 200])[1]
    if status != 200:
        return JSONResponse({"error": ERRORS[status]}, status_code=status)
    return JSONResponse([{"id": s} for s in LISTED])

async def fake_pty(ws):
    sid = ws.path_params["id"]
    if refuse(sid):  # handshake refused: the client must find out why, then back off or stop
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
    if sid == "closed":  # a code the page knows only from the table in its mount data
        await ws.close(code=4410)
        return
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

app = st.App("page.py", routes=[
    Route("/api/sessions", list_sessions, methods=["GET"]),
    WebSocketRoute("/terminal/ws/{id}", fake_pty),
])
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
    with sync_playwright() as p:
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
    assert len(_events(events, "s1", "probe")) == 1  # asked why once; the session is listed, so retried
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


def _status_seen(page, text: str, timeout_ms: int = 30_000) -> None:
    """Wait until the status overlay has shown ``text`` (it may be brief)."""
    page.wait_for_function(
        """(text) => {
            const el = document.querySelector("[data-testid=terminal-status]")
                || [...document.querySelectorAll("*")].map((e) => e.shadowRoot)
                    .filter(Boolean).map((r) => r.querySelector("[data-testid=terminal-status]")).find(Boolean);
            return !!el && !el.hidden && el.textContent.includes(text);
        }""",
        arg=text,
        timeout=timeout_ms,
        polling=20,
    )


def test_refused_handshake_forbidden_is_final(server, page):
    """A stranger's socket is refused before the handshake (the browser sees only
    1006): the page asks once why, shows Forbidden with the server's reason, and
    stops retrying."""
    url, events = server
    page.goto(f"{url}/?sid=forbidden")
    status = page.get_by_test_id("terminal-status")
    expect(status).to_have_text("Forbidden (4403)", timeout=30_000)
    expect(status).to_have_class(re.compile(r"coda-terminal__status--final"))
    _wait_for(lambda: "Forbidden: This app belongs to owner@example.com." in _buffer(page))
    page.wait_for_timeout(3000)  # longer than two backoff steps
    assert len(_events(events, "forbidden", "refused")) == 1
    assert len(_events(events, "forbidden", "probe")) == 1
    expect(status).to_have_text("Forbidden (4403)")


def test_refused_handshake_while_not_ready_retries(server, page):
    url, events = server
    page.goto(f"{url}/?sid=notready")
    _status_seen(page, "Not ready (4503), reconnecting…")
    page.wait_for_function("() => window.__codaTerm !== undefined", timeout=30_000)
    _wait_for(lambda: "replay-ok" in _buffer(page))
    expect(page.get_by_test_id("terminal-status")).to_be_hidden()
    assert len(_events(events, "notready", "refused")) == 2
    assert len(_events(events, "notready", "probe")) == 2
    assert len(_events(events, "notready", "connect")) == 1


def test_refused_handshake_for_unlisted_session_is_final(server, page):
    url, events = server
    page.goto(f"{url}/?sid=gone")
    expect(page.get_by_test_id("terminal-status")).to_have_text("Unknown session (4404)", timeout=30_000)
    page.wait_for_timeout(2000)
    assert len(_events(events, "gone", "refused")) == 1
    assert len(_events(events, "gone", "probe")) == 1


def test_close_code_table_reaches_the_component(server, page):
    """4410 is in no JavaScript: its meaning and finality come from protocol.Close."""
    from lib.terminal.protocol import Close

    url, events = server
    _open(page, url, "sid=closed")
    closed = Close.SESSION_CLOSED
    assert not closed.retry
    expect(page.get_by_test_id("terminal-status")).to_have_text(f"{closed.meaning} ({int(closed)})", timeout=10_000)
    page.wait_for_timeout(2000)
    assert len(_events(events, "closed", "connect")) == 1
    assert "4410" not in (REPO / "components/terminal/static/terminal.js").read_text()


def test_mount_data_carries_base_path_and_close_codes(monkeypatch):
    """The front end gets the close-code table and server.baseUrlPath, identical on every rerun."""
    from streamlit import config

    import components.terminal as component
    from lib.terminal import protocol

    calls: list[dict] = []
    monkeypatch.setattr(component, "_render", lambda **kw: calls.append(kw))
    monkeypatch.setattr(component, "declare_component", lambda name, path: type("C", (), {"name": f"x.{name}"})())
    before = config.get_option("server.baseUrlPath")
    try:
        for base in ("", "coda", "/coda/"):
            config.set_option("server.baseUrlPath", base)
            component.terminal("abc")
            component.terminal("abc")
    finally:
        config.set_option("server.baseUrlPath", before)
    data = [c["data"] for c in calls]
    assert data[0] == data[1] and data[2] == data[3] == data[4] == data[5]
    assert json.loads(json.dumps(data[0]["close_codes"])) == protocol.close_codes()
    assert data[0]["close_codes"]["4403"] == {"meaning": "Forbidden", "retry": False}
    assert data[0]["close_codes"]["4503"]["retry"] is True
    assert (data[0]["base"], data[0]["vendor"]) == ("", "/component/x.vendor/")
    assert (data[2]["base"], data[2]["vendor"]) == ("/coda", "/coda/component/x.vendor/")
