"""Truthful session states (issue 9, point 3).

A shell killed with SIGKILL while a background job holds its PTY is
"exited" with code 137 within a second, and the job is ended. Exited sessions
free their slot under the cap, show greyed with their exit code, last screen,
Restart and Close, and ``/`` never opens one as if it ran. A page whose
session is gone says so, and never "running".
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from lib.terminal import procs
from tests.browser import browser, wait_for_terminal_text
from tests.fidelity import wait_live
from tests.termclient import TermClient


def _session(app, label: str | None = None) -> dict:
    status, body = app.request("POST", "/api/sessions", {"agent": "bash", **({"label": label} if label else {})})
    assert status == 201, body
    return body


def _shell(app, session_id: str) -> TermClient:
    t = TermClient(app.ws_url, session_id)
    t.send("PS1='$ '\r")
    t.read_until(r"\$ ")
    return t


def _ended(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == "Z"
    except OSError:
        return True


def _entry(app, session_id: str) -> dict | None:
    _, listed = app.request("GET", "/api/sessions")
    return next((s for s in listed if s["id"] == session_id), None)


def _kill_shell(app, session_id: str, *, note: str = "") -> tuple[TermClient, int, float]:
    """``sleep 1000 &`` then ``kill -9 $$``: returns the viewer, the job's pid and when the kill was sent."""
    t = _shell(app, session_id)
    t.send(f"sleep 1000 & echo {note}job-$!\r")
    job = int(re.search(rb"job-(\d+)", t.read_until(rb"job-\d+")).group(1))
    time.sleep(0.2)
    sent = time.monotonic()
    t.send("kill -9 $$\r")
    return t, job, sent


def test_sigkilled_shell_with_a_background_job_is_exited_137_within_a_second(clean_app):
    s = _session(clean_app)
    t, job, sent = _kill_shell(clean_app, s["id"])
    assert t.wait_control("exit", timeout=5)["code"] == 137
    took = time.monotonic() - sent
    assert took < 1.0, f"exit seen after {took:.2f} s"
    entry = _entry(clean_app, s["id"])
    assert entry["status"] == "exited" and entry["exit_code"] == 137
    deadline = time.monotonic() + 5
    while procs.session_members(s["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs.session_members(s["pid"]) == [], "the background job still runs"
    assert _ended(job)
    # A later viewer gets the last screen and the code.
    late = TermClient(clean_app.ws_url, s["id"])
    assert late.wait_control("exit")["code"] == 137
    assert b"job-" in late.output


def test_exited_sessions_do_not_count_toward_the_cap(clean_app):
    sessions = [_session(clean_app) for _ in range(5)]  # the default cap
    assert clean_app.request("POST", "/api/sessions", {"agent": "bash"})[0] == 429
    t, _, _ = _kill_shell(clean_app, sessions[0]["id"])
    t.wait_control("exit", timeout=5)
    assert clean_app.request("POST", "/api/sessions", {"agent": "bash"})[0] == 201
    _, health = clean_app.request("GET", "/health")
    assert health["sessions"] == 5


def _caption(page) -> str:
    return page.locator(".st-key-session-head").inner_text(timeout=15000)


def test_ended_sessions_show_as_ended_and_home_opens_a_live_one(clean_app):
    alive = _session(clean_app, "alive one")
    dead = _session(clean_app, "dead one")  # the newest
    t, _, _ = _kill_shell(clean_app, dead["id"], note="last-words-")
    t.wait_control("exit", timeout=5)
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        page.goto(clean_app.url)
        page.wait_for_url(f"**session={alive['id']}**", timeout=20000)
        assert "running" in _caption(page)
        assert "dead one (exited 137)" in page.locator(".st-key-session-bar").inner_text()

        page.goto(f"{clean_app.url}/?session={dead['id']}")
        page.wait_for_function("() => !!window.__codaTerm", timeout=20000)
        wait_for_terminal_text(page, "last-words-job-")
        wait_for_terminal_text(page, "[process exited with code 137]")
        head = _caption(page)
        assert "exited with code 137" in head and "running" not in head
        assert page.get_by_test_id("terminal").evaluate("(el) => el.classList.contains('coda-terminal--ended')")
        page.get_by_role("button", name="Close", exact=True).wait_for()
        page.get_by_role("button", name="Restart").click()
        page.wait_for_function(f"() => !location.search.includes('{dead['id']}')", timeout=20000)
        page.wait_for_function(
            "() => (document.querySelector('.st-key-session-head') || {}).innerText?.includes('running')",
            timeout=20000,
        )
        wait_live(page)
    listed = {s["id"]: s for s in clean_app.request("GET", "/api/sessions")[1]}
    assert dead["id"] not in listed
    restarted = [s for s in listed.values() if s["label"] == "dead one"]
    assert len(restarted) == 1 and restarted[0]["status"] == "running"


def test_exit_while_watching_updates_the_header(clean_app):
    s = _session(clean_app)
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{clean_app.url}/?session={s['id']}")
        wait_live(page)
        assert "running" in _caption(page)
        page.keyboard.type("exit 3\n")
        page.wait_for_function(
            "() => (document.querySelector('.st-key-session-head') || {}).innerText?.includes('exited with code 3')",
            timeout=20000,
        )
        page.get_by_role("button", name="Close", exact=True).click()
        page.wait_for_function("() => !document.querySelector('.st-key-session-head')", timeout=20000)
    assert _entry(clean_app, s["id"]) is None


def test_a_page_whose_session_is_gone_says_so(clean_app):
    s = _session(clean_app)
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{clean_app.url}/?session={s['id']}")
        wait_live(page)
        clean_app.request("DELETE", f"/api/sessions/{s['id']}")  # closed elsewhere (or the app restarted)
        warning = page.get_by_text("no longer exists")
        warning.wait_for(timeout=20000)
        assert page.locator(".st-key-session-head").count() == 0  # no "pid … · running" header for it
        assert "Pick a session above, or start a new shell" in warning.inner_text()

        page.goto(f"{clean_app.url}/?session=0123456789ab")
        page.get_by_text("no longer exists").wait_for(timeout=20000)
        assert page.locator(".st-key-session-head").count() == 0
        page.get_by_role("button", name="New shell").click()
        page.wait_for_function(
            "() => (document.querySelector('.st-key-session-head') || {}).innerText?.includes('running')",
            timeout=20000,
        )
