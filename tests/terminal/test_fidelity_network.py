"""Keepalive and reconnects that survive a proxy (issue 9, point 2).

The browser reaches the app through ``tests/loopproxy.py``, which cuts the
terminal WebSockets every few seconds (or freezes them) while a program in
the session streams numbered lines and the test types. Afterwards the
terminal holds every line exactly once, in order, and the program read
every typed byte exactly once. The app runs with 1 s pings
(``CODA_PING_SECONDS``) so silence is noticed within seconds.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.appserver import start_app
from tests.browser import browser, wait_for_terminal_text
from tests.fidelity import buffer_lines, recorder_command, wait_file, wait_live
from tests.loopproxy import LoopProxy
from tests.termclient import TermClient


@pytest.fixture(scope="module")
def pinging_app(tmp_path_factory):
    server = start_app(tmp_path_factory.mktemp("pings") / "home", {"CODA_PING_SECONDS": "1"})
    yield server
    server.stop()


@pytest.fixture
def proxy(pinging_app):
    p = LoopProxy(pinging_app.port)
    yield p
    p.close()
    _, sessions = pinging_app.request("GET", "/api/sessions")
    for s in sessions or []:
        pinging_app.request("DELETE", f"/api/sessions/{s['id']}")


def _open(b, proxy: LoopProxy, session_id: str):
    page = b.new_context(viewport={"width": 1200, "height": 800}).new_page()
    page.goto(f"{proxy.url}/?session={session_id}")
    wait_live(page)
    return page


def _new_session(app) -> str:
    status, body = app.request("POST", "/api/sessions", {"agent": "bash"})
    assert status == 201, body
    return body["id"]


def test_drops_every_few_seconds_lose_and_double_nothing(pinging_app, proxy, tmp_path):
    sid = _new_session(pinging_app)
    typed_file = tmp_path / "typed.bin"
    lines = 2500
    text = "".join(f"w{i:03d}-" for i in range(60))  # 300 characters, every one distinct in context
    with browser() as b:
        page = _open(b, proxy, sid)
        page.keyboard.type(recorder_command(typed_file, stream=lines, interval=0.006) + "\n")
        wait_for_terminal_text(page, "REC-READY")
        proxy.drop_every(2.5)
        page.keyboard.type(text, delay=35)  # ~10 s of typing across several drops
        wait_for_terminal_text(page, "stream-done", 60000)
        proxy.stop_dropping()
        wait_live(page)
        got = wait_file(typed_file, lambda d: len(d) >= len(text), 30)
        time.sleep(1)
        assert typed_file.read_bytes() == text.encode(), "typed input lost or doubled"
        numbers = [int(m.group(1)) for ln in buffer_lines(page) if (m := re.fullmatch(r"line-(\d+)", ln))]
        assert numbers == list(range(1, lines + 1)), "output has a gap or a duplicate"
        stats = page.evaluate("() => window.__codaTermViewer")
    assert got == text.encode()
    assert proxy.drops >= 3, proxy.drops
    assert stats["resumes"] + stats["replays"] - 1 >= 3, stats  # it reconnected after each drop


def test_a_frozen_path_is_noticed_and_typed_input_arrives_once(pinging_app, proxy, tmp_path):
    sid = _new_session(pinging_app)
    typed_file = tmp_path / "typed.bin"
    with browser() as b:
        page = _open(b, proxy, sid)
        page.keyboard.type(recorder_command(typed_file) + "\n")
        wait_for_terminal_text(page, "REC-READY")
        page.keyboard.type("before ")
        wait_file(typed_file, lambda d: d == b"before ")
        assert proxy.freeze() == 1
        page.keyboard.type("during-the-freeze ")  # sent on a socket that no longer carries anything
        status = page.get_by_test_id("terminal-status")
        status.wait_for(state="visible", timeout=8000)  # ~3 ping intervals of silence
        page.keyboard.type("while-reconnecting ")
        page.wait_for_function("() => window.__codaTermViewer.resumes >= 1", timeout=20000)
        wait_live(page)
        page.keyboard.type("after")
        data = wait_file(typed_file, lambda d: d.endswith(b"after"), 20)
        assert data == b"before during-the-freeze while-reconnecting after"


def test_status_says_what_happens_while_disconnected(pinging_app, proxy, tmp_path):
    sid = _new_session(pinging_app)
    with browser() as b:
        page = _open(b, proxy, sid)
        proxy.freeze()
        status = page.get_by_test_id("terminal-status")
        status.wait_for(state="visible", timeout=8000)
        page.keyboard.type("abc")
        page.wait_for_function(
            "() => [...document.querySelectorAll('*')].map((e) => e.shadowRoot).filter(Boolean)"
            ".some((r) => /reconnecting.*3 typed bytes will be sent/i.test("
            "(r.querySelector('[data-testid=terminal-status]') || {}).textContent || ''))",
            timeout=10000,
        )
        wait_live(page)
        status.wait_for(state="hidden", timeout=15000)


def test_pings_both_ways(pinging_app, proxy):
    sid = _new_session(pinging_app)
    # A client that never answers is let go after three silent intervals ...
    mute = TermClient(pinging_app.ws_url, sid)
    assert mute.wait_closed(timeout=10) == 4504
    pings = [c for c in mute.controls if c.get("type") == "ping"]
    assert len(pings) >= 2
    # ... one that pings gets pongs: with its input count when it said who it is.
    talk = TermClient(pinging_app.ws_url, sid)
    talk.ws.send('{"type": "ping"}')
    assert talk.wait_control("pong")["input"] is None
    talk.close()
    named = TermClient(pinging_app.ws_url, sid, origin=pinging_app.url)
    named.ws.send('{"type": "hello", "viewer": "test-viewer-1"}')
    assert named.wait_control("replay")["input"] == 0
    named.send(":")
    named.ws.send('{"type": "ping"}')
    assert named.wait_control("pong")["input"] == 1
    named.close()
    # The page pings and answers pings: it stays on one connection, and its
    # typed bytes are acknowledged (so it can forget them).
    with browser() as b:
        page = _open(b, proxy, sid)
        page.keyboard.type("echo hi")
        time.sleep(5)
        stats = page.evaluate("() => [window.__codaTermViewer.replays, window.__codaTermViewer.resumes,"
                              " window.__codaTermViewer.state().outboxBytes]")
        assert stats == [1, 0, 0], stats
