"""Session registry and PTY behaviour in-process, plus shutdown and uploads end to end."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from lib.settings import Settings
from lib.terminal import procs
from lib.terminal.pump import READ_BUDGET, READ_SIZE, SESSION_NICE, LoopPump, read_ready
from lib.terminal.registry import SessionRegistry, clean_label
from lib.terminal.scrollback import Scrollback
from lib.terminal.session import PAUSE_AT
from lib.terminal.uploads import safe_name
from tests.appserver import start_app
from tests.termclient import TermClient


@pytest.fixture
def loop(running_loop):
    """PTY output is read on an event loop, as in the app (``running_loop`` in conftest)."""
    return running_loop


@pytest.fixture
def registry_for(tmp_path, loop):
    """Makes registries served by ``loop``; their sessions are closed while it still runs."""
    made = []

    def make(**overrides) -> SessionRegistry:
        settings = replace(Settings(home=tmp_path), **overrides)
        made.append(SessionRegistry(lambda: settings, pump=LoopPump(loop)))
        return made[-1]

    yield make
    for reg in made:
        reg.close_all()


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def take(client, loop) -> bytes:
    """What a viewer's transport does: take everything queued (on the loop)."""
    return asyncio.run_coroutine_threadsafe(client.get(), loop).result(timeout=10)


def test_idle_sessions_without_clients_are_closed(registry_for, loop):
    reg = registry_for(idle_timeout_s=60)
    watched, idle = reg.create("bash"), reg.create("bash")
    client, _ = watched.attach(loop)
    assert reg.close_idle(now=time.time() + 30) == []
    assert reg.close_idle(now=time.time() + 120) == [idle.id]
    assert [s.id for s in reg.list()] == [watched.id]
    assert procs.session_members(idle.pid) == []
    watched.detach(client)
    assert reg.close_idle(now=time.time() + 120) == [watched.id]


def test_pty_layer_reads_writes_and_reports_the_exit(loop, tmp_path):
    output, codes, ended = [], [], threading.Event()

    def on_exit(code):
        codes.append(code)
        ended.set()

    pty = LoopPump(loop).spawn(
        ["/bin/sh", "-c", "read x; echo got-$x; exit 5"], cwd=str(tmp_path), env={"PATH": os.environ["PATH"]},
        cols=80, rows=24, on_read=output.append, on_exit=on_exit,
    )
    pty.write(b"hi\n")
    assert ended.wait(10) and codes == [5]
    assert b"got-hi" in b"".join(output)  # every byte is read before the exit is reported
    pty.kill(0.1)
    pty.resume()  # harmless after the end


def test_a_registry_without_a_loop_starts_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="event loop"):
        SessionRegistry(lambda: Settings(home=tmp_path)).create("bash")


def test_every_viewer_behind_pauses_the_program_until_one_catches_up(registry_for, loop):
    session = registry_for().create("bash")
    slow, _ = session.attach(loop)
    session.write(b"head -c 20000000 /dev/zero | tr '\\0' y; echo; echo done-$((2+2))\r")
    wait_for(lambda: slow.pending > PAUSE_AT)
    time.sleep(0.5)
    level = slow.pending  # paused: the queue no longer grows, far below the drop limit
    time.sleep(0.5)
    assert slow.pending == level < slow.limit and not slow.overflowed
    assert session.status == "running"
    got = bytearray()
    while b"done-4" not in got[-64:]:
        got += take(slow, loop)
        session.resume_output()  # the transport says its viewer caught up
    assert got.count(b"y") >= 20_000_000  # nothing dropped


def test_a_viewer_that_catches_up_unpauses_and_a_stalled_one_is_dropped(registry_for, loop):
    session = registry_for().create("bash")
    stalled, _ = session.attach(loop)
    session.write(b"head -c 20000000 /dev/zero | tr '\\0' y; echo; echo done-$((2+2))\r")
    wait_for(lambda: stalled.pending > PAUSE_AT)  # the only viewer is behind: paused
    live, replay = session.attach(loop)
    session.resume_output()  # the new viewer's transport sent the replay: it is caught up
    got = bytearray(replay)
    while b"done-4" not in got[-64:]:
        got += take(live, loop)
        session.resume_output()
    assert got.count(b"y") >= 20_000_000
    assert stalled.overflowed  # more than its limit behind while another kept up (4408 in the app)


def test_cap_counts_running_sessions_only(registry_for):
    reg = registry_for(session_cap=2)
    a = reg.create("bash")
    reg.create("bash")
    with pytest.raises(Exception) as err:
        reg.create("bash")
    assert getattr(err.value, "status", None) == 429
    a.write(b"exit 3\r")
    deadline = time.monotonic() + 5
    while a.status != "exited" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert a.exit_code == 3
    reg.create("bash")  # an exited session frees its slot
    reg.close_all()


def test_scrollback_is_bounded_and_starts_on_a_character():
    sb = Scrollback(10)
    sb.append("é".encode() * 4)  # 8 bytes
    sb.append("中".encode() * 2)  # 6 bytes -> trimmed into the middle of an é
    data = sb.snapshot()
    assert len(sb) == 10
    assert data.decode() == "éé中中" or data.decode() == "é中中"
    big = Scrollback(1024)
    for _ in range(10000):
        big.append(b"x" * 100)
    assert len(big) == 1024 and len(big.snapshot()) == 1024


def test_labels_are_cleaned():
    assert clean_label("  \x1b[31mred\x07  ", "fb") == "[31mred"
    assert clean_label("", "fallback") == "fallback"
    assert len(clean_label("x" * 500, "fb")) == 80


@pytest.mark.parametrize(
    "name,expected",
    [("../../etc/passwd", "passwd"), ("..\\..\\win.ini", "win.ini"), (".bashrc", "bashrc"),
     ("a b;rm -rf ~.txt", "a_b_rm_-rf_.txt"), ("", "upload"), ("résumé.pdf", "résumé.pdf")],
)
def test_upload_names_are_sanitized(name, expected):
    assert safe_name(name) == expected


def test_slow_client_is_dropped_without_stalling_others(clean_app):
    _, s = clean_app.request("POST", "/api/sessions", {"agent": "bash"})
    slow = TermClient(clean_app.ws_url, s["id"])  # never reads
    fast = TermClient(clean_app.ws_url, s["id"])
    fast.send("head -c 40000000 /dev/zero | tr '\\0' 'y'; echo; echo flood-$((4+4))\r")
    fast.read_until(r"flood-8\r?\n", timeout=60)
    assert slow.wait_closed(timeout=30) == 4408
    # the slow viewer reconnects and catches up from the scrollback
    again = TermClient(clean_app.ws_url, s["id"])
    again.read_until(r"flood-8")


def test_uploads(clean_app, tmp_path):
    files = {"file": ("../../evil name.txt", b"hello upload\x00\xff", "text/plain")}
    r = httpx.post(clean_app.url + "/api/uploads", files=files)
    assert r.status_code == 201, r.text
    path = Path(r.json()["path"])
    assert path.parent == clean_app.home / "uploads" and path.name == "evil_name.txt"
    assert path.read_bytes() == b"hello upload\x00\xff"
    again = httpx.post(clean_app.url + "/api/uploads", files=files)
    assert Path(again.json()["path"]).name == "evil_name-1.txt"  # never overwrites
    assert httpx.post(clean_app.url + "/api/uploads", data={"x": "1"}).status_code == 400
    r = httpx.post(clean_app.url + "/api/uploads", files=files, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


def test_upload_size_cap(tmp_path):
    app = start_app(tmp_path / "home", {"CODA_MAX_UPLOAD_BYTES": "100000"})
    try:
        r = httpx.post(app.url + "/api/uploads", files={"file": ("big.bin", b"x" * 300000)})
        assert r.status_code == 413 and "upload limit" in r.json()["error"]
        assert not list((app.home / "uploads").glob("*")) if (app.home / "uploads").exists() else True
        ok = httpx.post(app.url + "/api/uploads", files={"file": ("small.bin", b"x" * 1000)})
        assert ok.status_code == 201
    finally:
        app.stop()


def test_sigterm_ends_every_session_quickly(tmp_path):
    app = start_app(tmp_path / "home")
    pids = []
    clients = []
    for _ in range(3):
        _, s = app.request("POST", "/api/sessions", {"agent": "bash"})
        t = TermClient(app.ws_url, s["id"])
        t.send("sleep 1000 & trap '' HUP; sleep 999\r")
        clients.append(t)
        pids.append(s["pid"])
    time.sleep(1)
    assert all(procs.session_members(p) for p in pids)
    took = app.stop(timeout=20)
    assert app.proc.returncode is not None
    assert took < 15, took
    for pid in pids:
        assert procs.session_members(pid) == []
    assert "Ended 3 session(s) at shutdown" in app.log()


def test_sessions_not_typed_in_yield_the_cpu(registry_for, loop):
    """Session programs rank under the server; the session typed in keeps its group's priority (issue 14)."""
    reg = registry_for()
    busy, typed = reg.create("bash"), reg.create("bash")
    client, _ = busy.attach(loop)
    busy.write(b"sleep 30 & echo child-$!\r")
    got = bytearray()
    while not (found := re.search(rb"child-(\d+)\r", got)):
        got += take(client, loop)
    child = int(found.group(1))
    assert os.getpriority(os.PRIO_PROCESS, busy.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + SESSION_NICE)
    assert os.getpriority(os.PRIO_PROCESS, child) == os.getpriority(os.PRIO_PROCESS, busy.pid)
    typed.write(b"\r")

    def group_nice(pid: int) -> str:
        return Path(f"/proc/{pid}/autogroup").read_text().split()[-1]

    if Path(f"/proc/{busy.pid}/autogroup").exists():  # kernels that group each session apart
        wait_for(lambda: group_nice(busy.pid) == str(SESSION_NICE) and group_nice(typed.pid) == "0")
        busy.write(b"\r")  # typing there gives it the focus back
        wait_for(lambda: group_nice(busy.pid) == "0" and group_nice(typed.pid) == str(SESSION_NICE))
    busy.detach(client)


def test_a_readiness_callback_reads_a_bounded_slice_and_never_waits(loop, tmp_path):
    """One callback takes at most READ_BUDGET (+ one read) from a flooding PTY; all bytes still arrive."""
    sizes, ended = [], threading.Event()
    pty = LoopPump(loop).spawn(
        ["/bin/sh", "-c", "head -c 3000000 /dev/zero"], cwd=str(tmp_path),
        env={"PATH": os.environ["PATH"]}, cols=80, rows=24,
        on_read=lambda data: sizes.append(len(data)), on_exit=lambda code: ended.set(),
    )
    assert ended.wait(30)
    assert sum(sizes) >= 3_000_000
    assert max(sizes) <= READ_BUDGET + READ_SIZE
    pty.kill(0.1)
    quiet = LoopPump(loop).spawn(["/bin/sh", "-c", "sleep 5"], cwd=str(tmp_path), env={"PATH": os.environ["PATH"]},
                                 cols=80, rows=24, on_read=lambda data: None, on_exit=lambda code: None)
    started = time.monotonic()
    assert read_ready(quiet.fd) == (b"", False)  # nothing to read: back at once, not blocked on the PTY
    assert time.monotonic() - started < 0.5
    quiet.kill(0.1)


def test_a_quiet_session_echoes_while_others_flood(registry_for, loop):
    """Keystrokes reach a quiet session and come back while two others stream as fast as they can."""
    reg = registry_for()
    floods = [reg.create("bash") for _ in range(2)]
    viewers = [s.attach(loop)[0] for s in floods]
    for s in floods:
        s.write(b"stty -echo; exec yes\r")

    async def keep_up():  # what each flood's transport does: take everything, say it caught up
        while True:
            for s, c in zip(floods, viewers, strict=True):
                if c.pending:
                    await c.get()
                    s.resume_output()
            await asyncio.sleep(0.001)

    reader = asyncio.run_coroutine_threadsafe(keep_up(), loop)
    quiet = reg.create("bash")
    client, _ = quiet.attach(loop)
    quiet.write(b"stty -echo; PS1=''; echo rea''dy\r")
    got = bytearray()
    while b"ready" not in got:
        got += take(client, loop)
    for i in range(20):
        quiet.write(b"echo k%d\r" % i)
        got = bytearray()
        while b"k%d" % i not in got:
            got += take(client, loop)
    reader.cancel()


def _unanswered(session, loop) -> bytes:
    """The output a new viewer's terminal would answer queries in (what nobody watched, still recent)."""
    client, replay, unseen = session.attach_viewer(loop)
    session.detach(client)
    data = b"".join(i for i in replay.items if isinstance(i, bytes))
    return data[unseen - replay.start:]


def test_only_recent_or_still_awaited_queries_are_answered_by_a_late_viewer(registry_for, loop, monkeypatch):
    """A query nobody answered is answered by the next viewer only while the program may still wait for it."""
    from lib.terminal import session as session_mod

    monkeypatch.setattr(session_mod, "ANSWER_WINDOW_S", 1.0)
    monkeypatch.setattr(session_mod, "BURST_GAP_S", 0.3)
    registry = registry_for()
    waiting, moved_on = registry.create("bash"), registry.create("bash")
    ask = b"printf 'ASK\\033[cED'; read -r -t 30 _\r"  # asks for device attributes, then waits
    waiting.write(ask)
    moved_on.write(ask)
    time.sleep(0.6)
    moved_on.write(b"\r")  # its read ends: a new burst (the prompt) after the query
    time.sleep(1.5)  # both queries are older than the window
    assert b"ASK\x1b[cED" in _unanswered(waiting, loop)  # still the latest output: the program waits
    assert b"\x1b[c" not in _unanswered(moved_on, loop)  # given up on: answering now would type junk


def test_a_long_burst_does_not_keep_an_old_query_answerable(registry_for, loop, monkeypatch):
    """Output that never pauses (a build log) after a query: past ANSWER_LIMIT_S the query is not answered."""
    from lib.terminal import session as session_mod

    monkeypatch.setattr(session_mod, "ANSWER_WINDOW_S", 0.5)
    monkeypatch.setattr(session_mod, "BURST_GAP_S", 1.0)
    monkeypatch.setattr(session_mod, "ANSWER_LIMIT_S", 1.5)
    streaming = registry_for().create("bash")
    streaming.write(b"printf 'ASK\\033[cED'; for i in $(seq 40); do echo line-$i; sleep 0.1; done\r")
    time.sleep(3)  # one burst all along (gaps of 0.1 s), the query at its start
    assert b"\x1b[c" not in _unanswered(streaming, loop)
