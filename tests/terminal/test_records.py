"""Session records (``lib.terminal.records``, ``recorder``, ``conversation_ids``): sessions outlive the app process.

Unit level: what a record holds and when it is written (only when something
changed), what the next process makes of it (running -> ended by a restart;
exited and closed ones are gone), the bounds, each agent's conversation store
and the rule that says which conversation is whose, the argv of a new and of a
resumed conversation (fake CLIs that print their arguments), the last screen
drawn again. App level (a shell, real processes): SIGTERM and SIGKILL, then
``GET /api/sessions``, ``POST /api/sessions/{id}/resume``, ``DELETE`` and the
"resume my sessions when the app starts" setting.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lib.agents import get_agent
from lib.agents.base import Conversation
from lib.settings import SettingsError, load_settings, validate
from lib.terminal import snapshot
from lib.terminal.conversation_ids import Known, Pending, match_conversations, settle_conversations
from lib.terminal.errors import SessionError, UnknownSession
from lib.terminal.pump import LoopPump
from lib.terminal.recorder import MAX_ENDED, Recorder
from lib.terminal.records import SCREEN_BYTES, RecordStore, SessionRecord, records_dir
from lib.terminal.registry import SessionRegistry
from lib.terminal.session import PtySession, SessionStatus
from tests.appserver import AppServer, start_app
from tests.termclient import TermClient

HOUR = 3600.0
Registries = Callable[..., SessionRegistry]  # one registry per "process", on one HOME


def _wait(condition: Callable[[], object], at_most_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + at_most_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _output(session: PtySession) -> bytes:
    return session.last_output(SCREEN_BYTES)[1]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "projects" / "demo").mkdir(parents=True)
    return home


def _registry(home: Path, loop: asyncio.AbstractEventLoop, **env: str) -> SessionRegistry:
    return SessionRegistry(lambda: load_settings({"HOME": str(home), "PATH": os.environ["PATH"], **env}),
                           LoopPump(loop))


@pytest.fixture
def registries(home: Path, running_loop: asyncio.AbstractEventLoop) -> Iterator[Registries]:
    """Registries on one HOME (one per "process"); every session ends at teardown."""
    made: list[SessionRegistry] = []

    def make(**env: str) -> SessionRegistry:
        made.append(_registry(home, running_loop, **env))
        return made[-1]

    yield make
    for registry in made:
        registry.stop_recording()
        registry.close_all()


# ---------------------------------------------------------------- recording


def test_a_record_is_written_only_when_something_changed(home: Path, registries: Registries) -> None:
    registry = registries()
    assert registry.start_recording(interval=HOUR) == []
    recorder = registry._recorder
    session = registry.create("bash", cwd="demo")
    session.write(b"echo rec-$((40+2))\r")
    _wait(lambda: b"rec-42" in _output(session), what="the echo")
    assert recorder.record_all() == 1
    assert recorder.record_all() == 0  # nothing new: no write, no screen copy
    record = json.loads((records_dir(home) / f"{session.id}.json").read_text())
    assert record["agent"] == "bash" and record["status"] == "running" and record["label"] == session.label
    assert record["cwd"] == str((home / "projects" / "demo").resolve())
    assert record["created_at"] == session.created_at and record["cols"] > 0 and record["rows"] > 0
    assert b"rec-42" in (records_dir(home) / f"{session.id}.screen").read_bytes()
    registry.rename(session.id, "renamed")
    assert recorder.record_all() == 1
    assert json.loads((records_dir(home) / f"{session.id}.json").read_text())["label"] == "renamed"
    session.write(b"exit 3\r")
    _wait(lambda: session.status == SessionStatus.EXITED, what="the exit")
    assert recorder.record_all() == 1
    record = json.loads((records_dir(home) / f"{session.id}.json").read_text())
    assert (record["status"], record["exit_code"]) == ("exited", 3)
    files = sorted(p.name for p in records_dir(home).iterdir())
    assert files == [f"{session.id}.json", f"{session.id}.screen"]
    assert oct(os.stat(records_dir(home) / f"{session.id}.screen").st_mode & 0o777) == "0o600"


def test_the_recorder_thread_keeps_records_current(home: Path, registries: Registries) -> None:
    registry = registries()
    registry.start_recording(interval=0.1)
    session = registry.create("bash", cwd="demo")
    session.write(b"echo tick-$((1+1))\r")
    screen = records_dir(home) / f"{session.id}.screen"
    _wait(lambda: screen.exists() and b"tick-2" in screen.read_bytes(), what="the recorded screen")


def test_a_closed_session_leaves_no_record(home: Path, registries: Registries) -> None:
    registry = registries()
    registry.start_recording(interval=HOUR)
    session = registry.create("bash", cwd="demo")
    registry._recorder.record_all()
    assert (records_dir(home) / f"{session.id}.json").exists()
    registry.close(session.id)
    assert list(records_dir(home).iterdir()) == []


def test_shutdown_then_the_next_process_lists_it_as_ended_by_a_restart(home: Path, registries: Registries) -> None:
    first = registries()
    first.start_recording(interval=HOUR)
    shell = first.create("bash", cwd="demo", label="my shell")
    shell.write(b"printf '\\033[1;32mgreen-%s\\033[0m\\n' $((6*7))\r")
    _wait(lambda: b"green-42" in _output(shell), what="the output")
    first.stop_recording()  # Runtime.stop: before close_all
    first.close_all()

    second = registries()
    [ended] = second.start_recording(interval=HOUR)
    assert second.ended() == [ended]
    assert (ended.id, ended.agent, ended.label, ended.status) == (shell.id, "bash", "my shell", "restart-ended")
    listed = ended.to_dict()
    assert listed["status"] == "restart-ended" and listed["pid"] is None and listed["ended_at"] >= listed["created_at"]
    assert json.loads(json.dumps(listed)) == listed
    screen = snapshot.render(second.ended_screen(ended.id), ended.cols, ended.rows)
    assert "green-42" in snapshot.to_text(screen)
    assert any(style.fg == "green" and style.bold for line in screen for text, style in line if "green-42" in text)
    with pytest.raises(UnknownSession):
        second.get(ended.id)

    resumed = second.resume(ended.id)  # a shell: a new shell in the same folder, same id and name
    assert (resumed.id, resumed.label, resumed.cwd, resumed.status) == (shell.id, "my shell", shell.cwd, "running")
    assert second.ended() == []
    resumed.write(b"echo in-$(pwd)\r")
    _wait(lambda: f"in-{shell.cwd}".encode() in _output(resumed), what="the new shell's pwd")
    with pytest.raises(SessionError, match="running already"):
        second.resume(ended.id)
    with pytest.raises(UnknownSession):
        second.resume("0123456789ab")


def test_after_a_kill_the_last_record_serves(home: Path, registries: Registries) -> None:
    """No shutdown hook: what the last pass wrote (status "running") becomes "ended by a restart"."""
    first = registries()
    first.start_recording(interval=HOUR)
    shell = first.create("bash", cwd="demo")
    shell.write(b"echo last-words\r")
    _wait(lambda: b"last-words" in _output(shell), what="the output")
    first._recorder.record_all()
    exited = first.create("bash", cwd="demo")
    exited.write(b"exit\r")
    _wait(lambda: exited.status == "exited", what="the exit")
    first._recorder.record_all()
    first._recorder.stop(final=False)  # as if killed: no final pass

    second = registries()
    ended = second.start_recording(interval=HOUR)
    assert [r.id for r in ended] == [shell.id]  # the session that had exited is not resumable
    assert ended[0].status == SessionStatus.RESTART_ENDED and ended[0].ended_at is not None
    assert not (records_dir(home) / f"{exited.id}.json").exists()
    assert b"last-words" in second.ended_screen(shell.id)


def test_dismissing_an_ended_session_forgets_it(home: Path, registries: Registries) -> None:
    first = registries()
    first.start_recording(interval=HOUR)
    shell = first.create("bash", cwd="demo")
    first.stop_recording()
    first.close_all()
    second = registries()
    second.start_recording(interval=HOUR)
    second.close(shell.id)
    assert second.ended() == [] and list(records_dir(home).iterdir()) == []
    third = registries()
    assert third.start_recording(interval=HOUR) == []


def test_resume_all_stops_at_the_cap(home: Path, registries: Registries) -> None:
    first = registries()
    first.start_recording(interval=HOUR)
    shells = [first.create("bash", cwd="demo") for _ in range(3)]
    first.stop_recording()
    first.close_all()
    second = registries(CODA_MAX_SESSIONS="2")
    second.start_recording(interval=HOUR)
    started = second.resume_all()
    assert [s.id for s in started] == [s.id for s in shells[:2]]
    assert [r.id for r in second.ended()] == [shells[2].id]  # still listed, resumable later


def test_records_are_bounded(home: Path) -> None:
    store = RecordStore(records_dir(home))
    now = time.time()
    for i in range(MAX_ENDED + 5):
        store.save(SessionRecord(id=f"{i:012x}", agent="bash", label=f"s{i}", cwd=str(home), created_at=now - 100 + i,
                                 last_activity=now, status=SessionStatus.RUNNING, recorded_at=now - 100 + i))
    store.save(SessionRecord(id="a" * 12, agent="bash", label="old", cwd=str(home), created_at=0, last_activity=0,
                             status=SessionStatus.RUNNING, recorded_at=now - 40 * 24 * 3600),
               b"x" * (SCREEN_BYTES * 3))
    assert len((records_dir(home) / f"{'a' * 12}.screen").read_bytes()) == SCREEN_BYTES
    (records_dir(home) / "ffffffffffff.json").write_text("{not json")
    (records_dir(home) / "eeeeeeeeeeee.json").write_text(json.dumps({"id": "../../etc", "agent": "bash"}))
    ended = Recorder(store, home, list).load_ended(now)
    assert len(ended) == MAX_ENDED
    assert {r.label for r in ended} == {f"s{i}" for i in range(5, MAX_ENDED + 5)}  # the most recent; old one gone
    assert not (records_dir(home) / f"{'a' * 12}.screen").exists()


# ---------------------------------------------------------------- conversations


def test_each_agent_reads_its_own_store(home: Path) -> None:
    folder = home / "projects" / "demo"
    other = home / "projects" / "other"
    t0 = time.time()
    # Claude Code: ~/.claude/projects/<slug>/<id>.jsonl
    slug = "".join(c if c.isalnum() else "-" for c in str(folder))
    claude_dir = home / ".claude" / "projects" / slug
    claude_dir.mkdir(parents=True)
    (claude_dir / "11111111-2222-4333-8444-555555555555.jsonl").write_text('{"type":"mode"}\n')
    # Codex: rollouts with a session_meta first line
    day = time.strftime("%Y/%m/%d", time.localtime(t0))
    codex_dir = home / ".codex" / "sessions" / day
    codex_dir.mkdir(parents=True)
    for cid, cwd in (("01a233cc-0000-7000-8000-000000000001", folder),
                     ("01a233cc-0000-7000-8000-000000000002", other)):
        meta = {"type": "session_meta",
                "payload": {"id": cid, "cwd": str(cwd), "timestamp": "2026-12-01T22:45:34.382Z"}}
        (codex_dir / f"rollout-2026-12-01T22-45-34-{cid}.jsonl").write_text(json.dumps(meta) + "\n")
    # Gemini CLI: ~/.gemini/tmp/<slug>/.project_root + chats/session-*.jsonl
    gemini_dir = home / ".gemini" / "tmp" / "demo"
    (gemini_dir / "chats").mkdir(parents=True)
    (gemini_dir / ".project_root").write_text(str(folder))
    head = {"sessionId": "11111111-2222-4333-8444-666666666666", "startTime": "2026-12-01T22:46:24.277Z",
            "kind": "main"}
    (gemini_dir / "chats" / "session-2026-12-01T22-46-11111111.jsonl").write_text(json.dumps(head) + "\n")
    sub = {**head, "sessionId": "sub", "kind": "subagent"}
    (gemini_dir / "chats" / "session-2026-12-01T22-47-sub.jsonl").write_text(json.dumps(sub) + "\n")
    # OpenCode: one SQLite database
    db_path = home / ".local" / "share" / "opencode" / "opencode.db"
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE session (id TEXT PRIMARY KEY, directory TEXT NOT NULL, parent_id TEXT, "
               "time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL)")
    ms = int(t0 * 1000)
    db.executemany("INSERT INTO session VALUES (?, ?, ?, ?, ?)", [
        ("ses_main", str(folder), None, ms, ms), ("ses_child", str(folder), "ses_main", ms, ms),
        ("ses_other", str(other), None, ms, ms), ("ses_old", str(folder), None, ms - 10 ** 7, ms - 10 ** 7)])
    db.commit()
    db.close()

    def ids(agent: str, since: float = t0 - 60) -> list[str]:
        return [c.id for c in get_agent(agent).conversations(home, folder, since)]

    assert ids("claude") == ["11111111-2222-4333-8444-555555555555"]
    assert ids("codex") == ["01a233cc-0000-7000-8000-000000000001"]
    assert ids("gemini") == ["11111111-2222-4333-8444-666666666666"]
    assert ids("opencode") == ["ses_main"]
    for agent in ("claude", "codex", "gemini", "opencode"):
        assert ids(agent, since=t0 + 60) == []  # nothing written since
        assert get_agent(agent).conversations(home / "nowhere", folder, 0) == []
    assert get_agent("bash").conversations is None and get_agent("bash").resume_args is None


def test_which_conversation_is_whose() -> None:
    def conv(cid: str, started: float, updated: float | None = None) -> Conversation:
        return Conversation(cid, started, started if updated is None else updated)

    one = [Pending("a", 100.0)]
    assert match_conversations(one, [conv("c1", 106.0)]) == {"a": "c1"}
    assert match_conversations(one, [conv("c0", 10.0)]) == {}  # written before the session began
    assert match_conversations(one, [conv("c0", 10.0, 150.0)]) == {"a": "c0"}  # one session continuing it
    two = [Pending("a", 100.0), Pending("b", 200.0)]
    # Each conversation goes to the session started last before it began.
    assert match_conversations(two, [conv("cb", 206.0), conv("ca", 104.0, 250.0)]) == {"a": "ca", "b": "cb"}
    assert match_conversations(two, [conv("cb", 206.0)]) == {"b": "cb"}
    # Begun before both, written since both: whose it is cannot be told; left alone.
    assert match_conversations(two, [conv("c0", 10.0, 300.0)]) == {}


def test_a_chosen_id_is_confirmed_once_in_the_store(home: Path) -> None:
    folder = home / "projects" / "demo"
    chosen = "11111111-2222-4333-8444-555555555555"
    item = Known("s1", "claude", folder, time.time() - 5, chosen, False)
    assert settle_conversations([item], home, set()) == [] and not item.conversation_known
    slug = "".join(c if c.isalnum() else "-" for c in str(folder))
    (home / ".claude" / "projects" / slug).mkdir(parents=True)
    (home / ".claude" / "projects" / slug / f"{chosen}.jsonl").write_text("{}\n")
    assert settle_conversations([item], home, set()) == [item] and item.conversation_known


def test_a_running_codex_session_takes_only_the_rollout_it_holds_open(home: Path) -> None:
    folder = home / "projects" / "demo"
    day = time.strftime("%Y/%m/%d")
    root = home / ".codex" / "sessions" / day
    root.mkdir(parents=True)
    paths = {}
    for cid in ("01a233cc-0000-7000-8000-00000000000a", "01a233cc-0000-7000-8000-00000000000b"):
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        meta = {"type": "session_meta", "payload": {"id": cid, "cwd": str(folder), "timestamp": now}}
        paths[cid] = root / f"rollout-x-{cid}.jsonl"
        paths[cid].write_text(json.dumps(meta) + "\n")
    holder = subprocess.Popen(["sh", "-c", f"exec 3<{paths['01a233cc-0000-7000-8000-00000000000b']}; sleep 30"],
                              start_new_session=True)
    try:
        _wait(lambda: str(paths["01a233cc-0000-7000-8000-00000000000b"]) in
              {os.readlink(f"/proc/{holder.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{holder.pid}/fd")},
              what="the file held open")
        running = Known("s1", "codex", folder, time.time() - 30, None, False, sid=holder.pid)
        idle = Known("s2", "codex", folder, time.time() - 30, None, False, sid=os.getpid())
        settle_conversations([running, idle], home, set())
        assert running.conversation_id == "01a233cc-0000-7000-8000-00000000000b" and running.conversation_known
        assert idle.conversation_id is None  # a file nobody holds open is no running session's yet
        after_kill = Known("s3", "codex", folder, time.time() - 30, None, False)  # at the next start
        settle_conversations([after_kill], home, {"01a233cc-0000-7000-8000-00000000000b"})
        assert after_kill.conversation_id == "01a233cc-0000-7000-8000-00000000000a"
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- argv of new and resumed conversations


@pytest.fixture
def fake_clis(home: Path) -> Path:
    """Scripts named like the CLIs that print their arguments and wait."""
    bin_dir = home / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("claude", "codex", "gemini", "opencode"):
        script = bin_dir / name
        script.write_text('#!/bin/sh\necho "ARGS[$*]"\nexec sleep 60\n')
        script.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(("agent", "new_args", "resumed_args"), [
    ("claude", "--session-id {id}", "--resume {id}"),
    ("gemini", "--session-id {id}", "--resume {id}"),
    ("codex", "--no-daemon", "--no-daemon resume {id}"),
    ("opencode", "", "--session {id}"),
])
def test_new_and_resumed_conversations_argv(agent: str, new_args: str, resumed_args: str, home: Path,
                                            fake_clis: Path, registries: Registries) -> None:
    registry = registries()
    session = registry.create(agent, cwd="demo")
    chosen = session.conversation_id
    if "{id}" in new_args:
        assert chosen is not None and len(chosen) == 36 and not session.conversation_known
    else:
        assert chosen is None
    expected = "ARGS[" + new_args.format(id=chosen) + "]"
    _wait(lambda: expected.encode() in _output(session), what=expected)
    record = SessionRecord(id="0123456789ab", agent=agent, label="x", cwd=str(session.cwd), created_at=0,
                           last_activity=0, status=SessionStatus.RESTART_ENDED, conversation_id="conv-7",
                           conversation_known=True)
    registry._ended[record.id] = record
    resumed = registry.resume(record.id)
    assert resumed.conversation_id == "conv-7" and resumed.conversation_known
    expected = "ARGS[" + resumed_args.format(id="conv-7") + "]"
    _wait(lambda: expected.encode() in _output(resumed), what=expected)


def test_an_unconfirmed_conversation_starts_afresh(home: Path, fake_clis: Path, registries: Registries) -> None:
    registry = registries()
    registry._ended["0123456789ab"] = SessionRecord(
        id="0123456789ab", agent="claude", label="x", cwd=str(home / "projects" / "demo"), created_at=0,
        last_activity=0, status=SessionStatus.RESTART_ENDED, conversation_id="never-answered")
    resumed = registry.resume("0123456789ab")
    assert resumed.conversation_id not in (None, "never-answered")
    _wait(lambda: f"ARGS[--session-id {resumed.conversation_id}]".encode() in _output(resumed), what="a new one")


# ---------------------------------------------------------------- the last screen, the setting


def test_the_last_screen_is_drawn_again() -> None:
    data = (b"\x1b[2J\x1b[Hplain \x1b[31mred\x1b[0m \x1b[1;4mbold\x1b[0m \x1b[38;2;1;2;3mtrue\x1b[0m"
            b" \x1b[7mrev\x1b[0m <script>alert(1)</script> \xe4\xb8\xad\r\n\x1b[5;3Hplaced")
    lines = snapshot.render(data, 60, 8)
    text = snapshot.to_text(lines)
    assert text.splitlines()[0].startswith("plain red bold true rev <script>alert(1)</script> 中")
    assert text.splitlines()[4] == "  placed"
    html = snapshot.to_html(lines)
    assert html.startswith('<pre class="coda-last-screen"') and "<script>" not in html
    assert "&lt;script&gt;" in html and '<span style="color:#cd0000">red</span>' in html
    assert "font-weight:bold;text-decoration:underline" in html and "color:#010203" in html
    # A tail cut out of a longer output starts at its first full line.
    assert snapshot.to_text(snapshot.render(b"[31mhalf\r\nwhole", 20, 3, cut=True)) == "whole"


def test_resume_on_start_setting() -> None:
    assert validate("resume_on_start", True) is True
    assert validate("resume_on_start", "off") is False
    with pytest.raises(SettingsError):
        validate("resume_on_start", "maybe")
    assert load_settings({"HOME": "/nonexistent", "CODA_RESUME_ON_START": "1"}).resume_on_start is True
    assert load_settings({"HOME": "/nonexistent"}).resume_on_start is False


# ---------------------------------------------------------------- the app, restarted


def _ids_by_status(server: AppServer) -> dict[str, str]:
    status, listed = server.request("GET", "/api/sessions")
    assert status == 200, listed
    return {s["id"]: s["status"] for s in listed}


def test_the_app_restarted_lists_resumes_and_dismisses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "projects" / "demo").mkdir(parents=True)
    server = start_app(home)
    try:
        ids = []
        for word in ("alpha", "beta"):
            status, body = server.request("POST", "/api/sessions", {"agent": "bash", "cwd": "demo"})
            assert status == 201, body
            ids.append(body["id"])
            term = TermClient(server.ws_url, body["id"])
            term.send(f"echo {word}-$((1+1))\r")
            term.read_until(f"{word}-2")
            term.close()
    finally:
        assert server.stop() < 15  # SIGTERM, as a deploy: the shutdown records them
    server = start_app(home)
    try:
        assert _ids_by_status(server) == dict.fromkeys(ids, "restart-ended")
        status, body = server.request("POST", f"/api/sessions/{ids[0]}/resume")
        assert status == 201 and body["id"] == ids[0] and body["status"] == "running", body
        assert server.request("POST", f"/api/sessions/{ids[0]}/resume")[0] == 400  # running already
        assert server.request("POST", "/api/sessions/0123456789ab/resume")[0] == 404
        term = TermClient(server.ws_url, ids[0])  # a tab still open on the old id reconnects
        term.send("echo again-$((2+2))\r")
        term.read_until("again-4")
        term.close()
        assert server.request("DELETE", f"/api/sessions/{ids[1]}")[0] == 204  # dismissed
        assert _ids_by_status(server) == {ids[0]: "running"}
        os.kill(server.proc.pid, signal.SIGKILL)  # no shutdown hook this time
        server.proc.wait(timeout=10)
    finally:
        server.stop()
    server = start_app(home, {"CODA_RESUME_ON_START": "true"})
    try:
        _wait(lambda: _ids_by_status(server) == {ids[0]: "running"}, 30, "the session resumed at start")
        term = TermClient(server.ws_url, ids[0])
        term.send("echo back-$((3+3))\r")
        term.read_until("back-6")
        term.close()
    finally:
        server.stop()
