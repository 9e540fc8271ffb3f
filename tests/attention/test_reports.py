"""Needs attention: the state model, the hooks' configs and script, the report route and the push.

The CLI payloads below are what the pinned CLIs sent in a real run (trimmed);
``tests/attention/test_agents.py`` runs the four CLIs themselves. Reports are forged
here every way the issue names (a wrong key, another session's key, a peer
that is not loopback, a request carrying proxy headers) and must change
nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from lib.agents import config as agent_config
from lib.agents.base import Loopback
from lib.attention import install
from lib.attention.events import Report, interpret, parse_payload
from lib.attention.hub import AttentionHub
from lib.attention.routes import KEY_HEADER, build_routes
from lib.attention.states import Attention, badge_markdown, plain_text
from lib.attention.tracker import AttentionTracker, TerminalScanner
from lib.settings import load_settings
from lib.terminal import keys
from tests.appserver import AppServer, start_app
from tests.termclient import TermClient

SID = "0123456789ab"


# ---------------------------------------------------------------- what each CLI's report means

CLAUDE_PERMISSION = {
    "session_id": "083fed56", "hook_event_name": "PermissionRequest", "tool_name": "Bash",
    "tool_input": {"command": "touch /tmp/demo/marker", "description": "Run the requested shell command"},
}
CODEX_TITLE_TURN = {"type": "agent-turn-complete", "thread-id": "title-thread", "input-messages": ["Generate a title"]}
CODEX_TURN = {"type": "agent-turn-complete", "thread-id": "main-thread", "last-assistant-message": "PONG"}
GEMINI_PERMISSION = {
    "hook_event_name": "Notification", "notification_type": "ToolPermission",
    "message": "Tool Confirm Shell Command requires execution",
    "details": {"type": "exec", "title": "Confirm Shell Command", "command": "touch /tmp/demo/marker"},
}


@pytest.mark.parametrize(("agent", "event", "payload", "state"), [
    ("claude", "SessionStart", {"session_id": "x", "source": "startup"}, Attention.IDLE),
    ("claude", "UserPromptSubmit", {}, Attention.WORKING),
    ("claude", "PermissionRequest", CLAUDE_PERMISSION, Attention.NEEDS_INPUT),
    ("claude", "Notification", {"notification_type": "permission_prompt", "message": "Claude needs"},
     Attention.NEEDS_INPUT),
    ("claude", "Notification", {"notification_type": "elicitation_dialog"}, Attention.NEEDS_INPUT),
    ("claude", "Notification", {"notification_type": "auth_success"}, None),
    ("claude", "PostToolUse", {}, Attention.WORKING),
    ("claude", "Stop", {"last_assistant_message": "PONG"}, Attention.DONE),
    ("claude", "SessionEnd", {}, Attention.EXITED),
    ("claude", "PreCompact", {}, None),
    ("codex", "SessionStart", {"session_id": "main-thread"}, Attention.IDLE),
    ("codex", "UserPromptSubmit", {}, Attention.WORKING),
    ("codex", "PermissionRequest", {"tool_name": "Bash", "tool_input": {"command": "touch m"}}, Attention.NEEDS_INPUT),
    ("codex", "PostToolUse", {}, Attention.WORKING),
    ("codex", "Stop", {"last_assistant_message": "PONG"}, Attention.DONE),
    ("codex", "notify", CODEX_TURN, Attention.DONE),
    ("gemini", "SessionStart", {"source": "startup"}, Attention.IDLE),
    ("gemini", "BeforeAgent", {"prompt": "go"}, Attention.WORKING),
    ("gemini", "Notification", GEMINI_PERMISSION, Attention.NEEDS_INPUT),
    ("gemini", "AfterTool", {}, Attention.WORKING),
    ("gemini", "AfterAgent", {"prompt_response": "PONG"}, Attention.DONE),
    ("gemini", "SessionEnd", {}, Attention.EXITED),
    ("opencode", "start", {}, Attention.IDLE),
    ("opencode", "working", {}, Attention.WORKING),
    ("opencode", "needs_input", {"detail": "permission: bash: touch m"}, Attention.NEEDS_INPUT),
    ("opencode", "done", {}, Attention.DONE),
    ("opencode", "error", {"detail": "boom"}, Attention.DONE),
])
def test_each_report_means_one_state(agent: str, event: str, payload: dict, state: Attention | None) -> None:
    assert interpret(Report(agent, event, payload)).state is state


def test_details_say_what_waits() -> None:
    assert interpret(Report("claude", "PermissionRequest", CLAUDE_PERMISSION)).detail == \
        "permission: Bash: touch /tmp/demo/marker"
    assert interpret(Report("gemini", "Notification", GEMINI_PERMISSION)).detail == "permission: touch /tmp/demo/marker"
    long = interpret(Report("claude", "Stop", {"last_assistant_message": "x\n" * 500})).detail
    assert len(long) <= 160 and "\n" not in long


def test_codex_notify_of_another_thread_is_ignored() -> None:
    """Codex's title job ends its own turn with notify: only the session's own thread counts."""
    tracker = AttentionTracker("codex", shell=False)
    tracker.report(Report("codex", "SessionStart", {"session_id": "main-thread"}, t=time.time()))
    tracker.report(Report("codex", "UserPromptSubmit", {"session_id": "main-thread"}, t=time.time()))
    assert not tracker.report(Report("codex", "notify", CODEX_TITLE_TURN, t=time.time()))
    assert tracker.state is Attention.WORKING
    assert tracker.report(Report("codex", "notify", CODEX_TURN, t=time.time()))
    assert tracker.state is Attention.DONE


def test_a_cut_payload_still_gives_its_first_fields() -> None:
    body = json.dumps({"hook_event_name": "Notification", "notification_type": "permission_prompt",
                       "message": "Claude needs your permission", "tool_response": "x" * 1000}).encode()[:200]
    assert parse_payload(body)["notification_type"] == "permission_prompt"
    assert parse_payload(b"") == {} and parse_payload(b"[1]") == {} and parse_payload(b"\xff\xfe") == {}


# ---------------------------------------------------------------- one session's tracker

def test_late_reports_and_since() -> None:
    changes: list[str] = []
    tracker = AttentionTracker("claude", shell=False, on_change=lambda: changes.append(tracker.state.value))
    now = time.time()
    assert tracker.report(Report("claude", "UserPromptSubmit", {}, t=now))
    since = tracker.since
    assert tracker.report(Report("claude", "PostToolUse", {}, t=now + 0.1))  # same state: since kept
    assert tracker.since == since
    assert tracker.report(Report("claude", "Stop", {}, t=now + 0.2))
    assert not tracker.report(Report("claude", "PostToolUse", {}, t=now + 0.15))  # arrived late: dropped
    assert tracker.state is Attention.DONE
    # idle_prompt only turns a "working" that missed its Stop into "done"
    assert not tracker.report(Report("claude", "Notification", {"notification_type": "idle_prompt"}, t=now + 1))
    assert changes[0] == "working" and changes[-1] == "done"
    assert tracker.fields() == {"attention": "done", "attention_since": tracker.since, "attention_detail": ""}


def test_enter_answers_and_silence_ends_working(monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = AttentionTracker("gemini", shell=False)
    tracker.report(Report("gemini", "Notification", GEMINI_PERMISSION))
    tracker.input(b"\x1b[B")  # moving through the choices answers nothing
    assert tracker.state is Attention.NEEDS_INPUT
    tracker.input(b"\r")
    assert (tracker.state, tracker.event) == (Attention.WORKING, "input")
    monkeypatch.setattr("lib.attention.tracker.QUIET_S", 0.05)
    tracker.output(b"spinner")
    tracker.tick()
    assert tracker.state is Attention.WORKING
    time.sleep(0.1)
    tracker.tick()
    assert (tracker.state, tracker.event) == (Attention.IDLE, "quiet")
    tracker.report(Report("gemini", "Notification", GEMINI_PERMISSION))
    tracker.input(b"\x1b")  # Esc: the question dismissed; the CLI waits for the user
    assert (tracker.state, tracker.event) == (Attention.IDLE, "dismissed")
    tracker.exited()
    assert tracker.state is Attention.EXITED
    tracker.report(Report("gemini", "BeforeAgent", {}))
    assert tracker.state is Attention.EXITED  # nothing comes back from the dead


def test_scanner_finds_marks_and_bells_across_reads() -> None:
    scanner = TerminalScanner()
    stream = (b"\x1b]0;title\x07" b"\x1b]133;A\x1b\\prompt$ " b"\x1b]133;C\x07out\x07put" b"\x1b]2;t\x1b\\"
              b"\x1b]133;D;0\x07")
    assert scanner.feed(stream) == ["133;A", "133;C", "bell", "133;D"]
    split = TerminalScanner()
    events = [e for i in range(len(stream)) for e in split.feed(stream[i:i + 1])]  # one byte at a time
    assert events == ["133;A", "133;C", "bell", "133;D"]
    assert TerminalScanner().feed(b"plain text, no escapes " * 100) == []
    # A flood: only its tail is read, from its first terminator on (an OSC may have begun before it).
    flood = b"\x1b]8;;https://example.com/" + b"x" * 100_000 + b"\x07 link \x07\x1b]133;D;0\x07\x1b]133;A\x07$ "
    assert TerminalScanner().feed(flood) == ["bell", "133;D", "133;A"]


def test_shell_running_idle_and_bell() -> None:
    front = {"pgid": 100}
    tracker = AttentionTracker("bash", shell=True)
    tracker.watch(lambda: front["pgid"], 100)
    tracker.tick()
    assert tracker.state is Attention.IDLE
    tracker.input(b"\t")
    tracker.output(b"\x07")  # readline's bell right after Tab: not a call for attention
    assert tracker.state is Attention.IDLE
    front["pgid"] = 200  # `sleep 100` in front
    tracker.tick()
    assert tracker.state is Attention.RUNNING
    tracker._last_input -= 5  # the user typed a while ago
    tracker.output(b"done?\x07")
    assert (tracker.state, tracker.detail) == (Attention.NEEDS_INPUT, "bell")
    front["pgid"] = 100  # `make; printf '\a'`: the bell outlives the command, until the user types
    tracker.tick()
    assert tracker.state is Attention.NEEDS_INPUT
    tracker.input(b"l")
    assert tracker.state is Attention.IDLE
    front["pgid"] = 200
    tracker.tick()
    tracker._last_input -= 5
    tracker.output(b"\x07")
    tracker.input(b"x")  # a program still in front
    assert tracker.state is Attention.RUNNING
    front["pgid"] = 100
    tracker.tick()
    assert tracker.state is Attention.IDLE
    # An agent started from the shell reports through its hooks; its end gives the prompt back.
    front["pgid"] = 300
    tracker.report(Report("claude", "PermissionRequest", CLAUDE_PERMISSION))
    tracker.tick()
    assert tracker.state is Attention.NEEDS_INPUT
    tracker.report(Report("claude", "SessionEnd", {}))
    assert tracker.state is Attention.IDLE


def test_osc_133_marks_win_over_the_foreground() -> None:
    tracker = AttentionTracker("bash", shell=True)
    tracker.watch(lambda: 100, 100)  # the shell always in front: only the marks can say "running"
    tracker.output(b"\x1b]133;C\x07")
    assert tracker.state is Attention.RUNNING
    tracker.tick()
    assert tracker.state is Attention.RUNNING
    tracker.output(b"\x1b]133;D;0\x07\x1b]133;A\x07$ ")
    assert tracker.state is Attention.IDLE


def test_badges_have_a_word_an_icon_and_a_colour() -> None:
    now = time.time()
    assert badge_markdown("needs_input", now - 125, now) == ":orange-badge[:material/back_hand: needs input · 2m]"
    assert badge_markdown("working", now - 125, now) == ":blue-badge[:material/progress_activity: working]"
    assert plain_text("done", now - 5, now) == "✅ done (5s)"


# ---------------------------------------------------------------- the hub and its route, in process

class _Session:
    def __init__(self, sid: str, agent: str = "claude") -> None:
        self.id, self.agent, self.label = sid, agent, f"label {sid}"
        self.attention = AttentionTracker(agent, shell=agent == "bash")


def _local_app(peer: str) -> tuple[TestClient, dict[str, _Session], keys.SessionKeys]:
    registry = keys.SessionKeys()
    sessions = {sid: _Session(sid) for sid in ("aaaaaaaaaaaa", "bbbbbbbbbbbb")}
    for sid in sessions:
        registry.issue(sid)
    hub = AttentionHub(lambda: list(sessions.values()), registry.session_for)
    # The route alone, without the security middleware in front: it must never rely on it.
    app = Starlette(routes=build_routes(hub, base=""))
    return TestClient(app, client=(peer, 50000)), sessions, registry


def test_the_route_header_is_the_session_key_header() -> None:
    assert KEY_HEADER == keys.KEY_HEADER


@pytest.mark.parametrize("peer", ["10.1.2.3", "192.168.0.7", "2001:db8::1"])
def test_a_peer_that_is_not_loopback_changes_nothing(peer: str) -> None:
    client, sessions, registry = _local_app(peer)
    key = registry.issue("aaaaaaaaaaaa")
    reply = client.post("/_coda/local/attention?agent=claude&event=PermissionRequest",
                        headers={KEY_HEADER: key}, json=CLAUDE_PERMISSION)
    assert reply.status_code == 403
    assert all(s.attention.state is Attention.IDLE for s in sessions.values())


def test_forged_reports_in_process() -> None:
    client, sessions, registry = _local_app("127.0.0.1")
    key_a, key_b = registry.issue("aaaaaaaaaaaa"), registry.issue("bbbbbbbbbbbb")
    url = "/_coda/local/attention?agent=claude&event=PermissionRequest"
    forged = ({}, {KEY_HEADER: "wrong"}, {KEY_HEADER: key_a[:-1]}, {KEY_HEADER: key_a, "X-Forwarded-For": "1.2.3.4"},
              {KEY_HEADER: key_a, "Forwarded": "for=1.2.3.4"}, {KEY_HEADER: key_a, "X-Real-IP": "1.2.3.4"})
    for headers in forged:
        assert client.post(url, headers=headers, json=CLAUDE_PERMISSION).status_code == 403, headers
    for query in ("agent=rogue&event=x", "agent=claude&event=a%20b", "agent=claude&event="):
        assert client.post(f"/_coda/local/attention?{query}", headers={KEY_HEADER: key_a}).status_code == 400
    assert all(s.attention.state is Attention.IDLE for s in sessions.values())
    # B's key, naming A every way a request could: only B changes.
    reply = client.post(f"{url}&session=aaaaaaaaaaaa&id=aaaaaaaaaaaa", headers={KEY_HEADER: key_b},
                        json={**CLAUDE_PERMISSION, "session": "aaaaaaaaaaaa", "id": "aaaaaaaaaaaa"})
    assert reply.status_code == 204
    assert sessions["aaaaaaaaaaaa"].attention.state is Attention.IDLE
    assert sessions["bbbbbbbbbbbb"].attention.state is Attention.NEEDS_INPUT


def test_the_route_lives_under_the_base_path() -> None:
    registry = keys.SessionKeys()
    session = _Session("aaaaaaaaaaaa")
    key = registry.issue(session.id)
    hub = AttentionHub(lambda: [session], registry.session_for)
    client = TestClient(Starlette(routes=build_routes(hub, base="/coda/")), client=("127.0.0.1", 50000))
    assert client.post("/_coda/local/attention?agent=claude&event=Stop", headers={KEY_HEADER: key}).status_code == 404
    reply = client.post("/coda/_coda/local/attention?agent=claude&event=UserPromptSubmit", headers={KEY_HEADER: key})
    assert reply.status_code == 204 and session.attention.state is Attention.WORKING


def test_stream_sends_every_change_and_coalesces_bursts() -> None:
    sessions = [_Session("aaaaaaaaaaaa"), _Session("bbbbbbbbbbbb")]
    for s in sessions:
        s.attention = AttentionTracker(s.agent, shell=False)
    hub = AttentionHub(lambda: sessions, lambda key: None)
    for s in sessions:
        s.attention._on_change = hub.changed
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        async def send(text: str) -> None:
            sent.append(json.loads(text))
        task = asyncio.create_task(hub.stream(send))
        await asyncio.sleep(0.05)
        sessions[1].attention.report(Report("claude", "PermissionRequest", CLAUDE_PERMISSION))
        await asyncio.sleep(0.05)
        for event in ("UserPromptSubmit", "PostToolUse", "Stop"):  # a burst: one message or a few, the last wins
            sessions[0].attention.report(Report("claude", event, {}))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(run())
    assert sent[0]["type"] == "attention" and [s["attention"] for s in sent[0]["sessions"]] == ["idle", "idle"]
    assert sent[1]["sessions"][0] == {"id": "bbbbbbbbbbbb", "label": "label bbbbbbbbbbbb", "agent": "claude",
                                      "attention": "needs_input", "since": sessions[1].attention.since,
                                      "detail": "permission: Bash: touch /tmp/demo/marker",
                                      "event": "PermissionRequest"}  # needs input first
    last = {s["id"]: s["attention"] for s in sent[-1]["sessions"]}
    assert last == {"aaaaaaaaaaaa": "done", "bbbbbbbbbbbb": "needs_input"}
    assert len(sent) <= 5


# ---------------------------------------------------------------- hook settings in each CLI's config

GATEWAY = Loopback("http://127.0.0.1:8000/_coda/local/gateway")


def _write(home: Path, access: Any) -> None:
    settings = load_settings({"HOME": str(home), "DATABRICKS_HOST": "https://adb-1.azuredatabricks.net"})
    assert all(r.ok for r in agent_config.write_all(home, settings, "dapi-x", gateway=access))


def test_codex_trust_hash_matches_what_codex_wrote() -> None:
    """Hashes Codex 0.171 itself recorded on "Trust all and continue" for hooks of this shape."""
    command = "/work/main/.venv/bin/python /tmp/exp/logger.py codex {}"
    seen = {"pre_tool_use": ("PreToolUse", "sha256:9d34c9f0c04ca036147969b012d42ef0306e1a0c7065f4571e76693c1b119eac"),
            "stop": ("Stop", "sha256:c025be7a38d2b3808f521279b8f1fcca0362a63774b95773e88bb4043e0f6b50")}
    for label, (event, expected) in seen.items():
        handler = {"type": "command", "command": command.format(event), "timeout": 2}
        assert install.codex_trust_hash(label, {"hooks": [handler]}, handler) == expected


def test_hooks_only_with_the_app_and_the_users_own_kept(tmp_path: Path) -> None:
    home = tmp_path
    (home / ".claude").mkdir()
    user_hook = {"matcher": "Bash", "hooks": [{"type": "command", "command": "echo mine"}]}
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"PostToolUse": [user_hook]}}))
    (home / ".codex").mkdir()
    (home / ".codex" / "hooks.json").write_text(json.dumps({"hooks": {"Stop": [user_hook]}}))
    (home / ".codex" / "config.toml").write_text('notify = ["my-notifier"]\n')
    _write(home, GATEWAY)
    claude = json.loads((home / ".claude" / "settings.json").read_text())["hooks"]
    assert claude["PostToolUse"][0] == user_hook and install.is_ours(claude["PostToolUse"][1]["hooks"][0]["command"])
    assert set(claude) >= {"SessionStart", "UserPromptSubmit", "PermissionRequest", "Notification", "Stop"}
    codex_hooks = json.loads((home / ".codex" / "hooks.json").read_text())["hooks"]
    assert codex_hooks["Stop"][0] == user_hook  # ours after theirs: their trust keys keep their positions
    config = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert config["notify"] == ["my-notifier"]  # the user's notify program stays
    state = config["hooks"]["state"]
    assert f"{home}/.codex/hooks.json:stop:0:0" not in state  # the user's hook is theirs to trust
    assert state[f"{home}/.codex/hooks.json:stop:1:0"]["trusted_hash"].startswith("sha256:")
    assert len(state) == 5
    gemini = json.loads((home / ".gemini" / "settings.json").read_text())["hooks"]
    assert gemini["Notification"][0]["hooks"][0]["name"] == "coda-attention"
    assert (home / ".config/opencode/plugin/coda-attention.js").read_bytes() == install.plugin_text()
    assert (home / ".coda/hooks/attention.sh").read_bytes() == install.SCRIPT_SOURCE.read_bytes()
    again = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    _write(home, GATEWAY)
    assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file()} == again  # idempotent
    # Without the app's loopback address there is nobody to report to: ours go, theirs stay.
    _write(home, None)
    assert json.loads((home / ".claude" / "settings.json").read_text())["hooks"] == {"PostToolUse": [user_hook]}
    assert json.loads((home / ".codex" / "hooks.json").read_text())["hooks"] == {"Stop": [user_hook]}
    config = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert "hooks" not in config and config["notify"] == ["my-notifier"]
    assert "hooks" not in json.loads((home / ".gemini" / "settings.json").read_text())
    assert not (home / ".config/opencode/plugin/coda-attention.js").exists()
    assert not (home / ".config/opencode/.npmrc").exists()


def test_opencode_npmrc_keeps_the_users_settings(tmp_path: Path) -> None:
    npmrc = tmp_path / ".config/opencode/.npmrc"
    npmrc.parent.mkdir(parents=True)
    npmrc.write_text("registry=https://npm.example.com/\nfetch-timeout=20000\n")
    _write(tmp_path, GATEWAY)
    lines = npmrc.read_text().splitlines()
    assert lines[:2] == ["registry=https://npm.example.com/", "fetch-timeout=20000"]  # theirs first, theirs win
    assert "fetch-retries=0" in lines and "fetch-timeout=5000" not in lines
    _write(tmp_path, None)
    assert npmrc.read_text() == "registry=https://npm.example.com/\nfetch-timeout=20000\n"


# ---------------------------------------------------------------- the hook script

SCRIPT = install.SCRIPT_SOURCE


def _run_hook(env: dict[str, str], *args: str, stdin: bytes = b"{}") -> tuple[int, float, bytes]:
    start = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPT), *args], input=stdin, capture_output=True, timeout=10,
                          env={"PATH": os.environ["PATH"], **env})
    return proc.returncode, time.monotonic() - start, proc.stdout + proc.stderr


def test_the_hook_is_silent_and_fast_when_it_cannot_report() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    cases = [
        {},  # outside a Coda terminal
        {"CODA_APP_URL": f"http://127.0.0.1:{closed_port}", "CODA_SESSION_KEY": "k"},  # the app is down
        {"CODA_APP_URL": "https://example.com", "CODA_SESSION_KEY": "k"},  # never anything but loopback http
        {"CODA_APP_URL": f"http://127.0.0.1:{closed_port}"},  # no key
    ]
    for env in cases:
        code, took, output = _run_hook(env, "claude", "Stop", stdin=b'{"a": 1}' * 50_000)  # 400 KB, drained
        assert (code, output) == (0, b""), env
        assert took < 1.0, (env, took)


def test_the_hook_gives_up_on_a_stuck_app_within_a_second() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts, never answers
        port = listener.getsockname()[1]
        code, took, output = _run_hook({"CODA_APP_URL": f"http://127.0.0.1:{port}/base", "CODA_SESSION_KEY": "k"},
                                       "codex", "notify", json.dumps(CODEX_TURN))
        conn, _ = listener.accept()
        request = conn.recv(65536)
        conn.close()
    assert (code, output) == (0, b"") and took < 1.0, took
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /base/_coda/local/attention?agent=codex&event=notify&t=")
    assert b"\r\nX-Coda-Session-Key: k\r\n" in head and json.loads(body) == CODEX_TURN


# ---------------------------------------------------------------- the real app

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("attention") / "home")
    server.wait_setup(60)
    yield server
    server.stop()


def _env_of(pid: int) -> dict[str, str]:
    deadline = time.monotonic() + 5
    while True:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
        if keys.KEY_ENV.encode() in raw or time.monotonic() > deadline:
            return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
        time.sleep(0.05)


def _states(server: AppServer) -> dict[str, str]:
    return {s["id"]: s["attention"] for s in server.request("GET", "/api/sessions")[1]}


def _shell_running_something(server: AppServer, term: TermClient) -> None:
    term.send("sleep 600\r")
    time.sleep(1.2)  # a program in front: hook reports stand (an agent started from the shell)


def test_forged_reports_change_nothing(served: AppServer) -> None:
    a = served.request("POST", "/api/sessions", {"agent": "bash"})[1]
    b = served.request("POST", "/api/sessions", {"agent": "bash"})[1]
    terms = [TermClient(served.ws_url, s["id"]) for s in (a, b)]
    try:
        for term in terms:
            _shell_running_something(served, term)
        before = _states(served)
        key_a, key_b = _env_of(a["pid"])[keys.KEY_ENV], _env_of(b["pid"])[keys.KEY_ENV]
        url = f"{served.url}/_coda/local/attention?agent=claude&event=PermissionRequest"
        forged = [
            {KEY_HEADER: "not-a-key"},
            {KEY_HEADER: key_a + "x"},
            {KEY_HEADER: key_a, "X-Forwarded-For": "203.0.113.9"},
            {KEY_HEADER: key_a, "X-Forwarded-Email": "owner@example.com"},
            {KEY_HEADER: key_a, "Forwarded": "for=203.0.113.9"},
            {},
        ]
        for headers in forged:
            reply = httpx.post(url, headers=headers, json=CLAUDE_PERMISSION, timeout=10)
            assert reply.status_code == 403, (headers, reply.text)
        time.sleep(0.3)
        assert _states(served) == before == {a["id"]: "running", b["id"]: "running"}
        # Another session's key: it speaks for that session only, whatever the request names.
        reply = httpx.post(f"{url}&session={a['id']}", headers={KEY_HEADER: key_b},
                           json={**CLAUDE_PERMISSION, "session": a["id"]}, timeout=10)
        assert reply.status_code == 204
        assert _states(served) == {a["id"]: "running", b["id"]: "needs_input"}
        # A closed session's key is dead.
        served.request("DELETE", f"/api/sessions/{b['id']}")
        assert httpx.post(url, headers={KEY_HEADER: key_b}, json={}, timeout=10).status_code == 403
    finally:
        for term in terms:
            term.close()
        for s in (a, b):
            served.request("DELETE", f"/api/sessions/{s['id']}")


def _other_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_a_report_from_another_machine_changes_nothing(tmp_path: Path) -> None:
    """The app listening on every interface; the report reaches it through a non-loopback address."""
    address = _other_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    # The address is an allowed host name, so what refuses is the loopback rule, not the Host check.
    server = start_app(tmp_path / "home", {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0", "CODA_ALLOWED_HOSTS": address})
    try:
        session = server.request("POST", "/api/sessions", {"agent": "bash"})[1]
        key = _env_of(session["pid"])[keys.KEY_ENV]
        reply = httpx.post(f"http://{address}:{server.port}/_coda/local/attention?agent=claude&event=Stop",
                           headers={KEY_HEADER: key}, json={}, timeout=10)
        assert reply.status_code == 403
        assert _states(server)[session["id"]] == "idle"
        local = httpx.post(f"{server.url}/_coda/local/attention?agent=claude&event=UserPromptSubmit",
                           headers={KEY_HEADER: key}, json={}, timeout=10)
        assert local.status_code == 204
    finally:
        server.stop()


def test_pushed_to_every_viewer_within_a_second(served: AppServer) -> None:
    a = served.request("POST", "/api/sessions", {"agent": "bash"})[1]
    b = served.request("POST", "/api/sessions", {"agent": "bash"})[1]
    viewer = TermClient(served.ws_url, a["id"])  # watching A; B changes
    worker = TermClient(served.ws_url, b["id"])
    try:
        first = viewer.wait_control("attention", 10)
        assert {s["id"] for s in first["sessions"]} >= {a["id"], b["id"]}
        _shell_running_something(served, worker)
        env = {k: v for k, v in _env_of(b["pid"]).items() if k in (keys.KEY_ENV, keys.APP_URL_ENV)}
        latencies = []
        for event in ("PermissionRequest", "PostToolUse", "Stop", "UserPromptSubmit") * 3:
            viewer.controls.clear()
            start = time.monotonic()
            code, _, _ = _run_hook(env, "claude", event, stdin=json.dumps(CLAUDE_PERMISSION).encode())
            assert code == 0
            while True:
                msg = viewer.wait_control("attention", 5)
                row = next(s for s in msg["sessions"] if s["id"] == b["id"])
                if row["event"] == event:
                    break
            latencies.append(time.monotonic() - start)
        latencies.sort()
        assert latencies[len(latencies) // 2] < 1.0 and latencies[-1] < 2.0, latencies
        listed = next(s for s in served.request("GET", "/api/sessions")[1] if s["id"] == b["id"])
        assert listed["attention"] == "working" and listed["attention_since"] <= time.time()
    finally:
        viewer.close()
        worker.close()
        for s in (a, b):
            served.request("DELETE", f"/api/sessions/{s['id']}")


def test_a_shell_says_running_idle_and_rings(served: AppServer) -> None:
    session = served.request("POST", "/api/sessions", {"agent": "bash"})[1]
    term = TermClient(served.ws_url, session["id"])
    seen: list[str] = []

    def watch(until: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = term.wait_control("attention", max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            state = next(s for s in msg["sessions"] if s["id"] == session["id"])["attention"]
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == until:
                return
        raise AssertionError(f"never {until}: {seen}; screen: {bytes(term.output[-400:])!r}")

    try:
        watch("idle", 15)  # the shell at its prompt
        term.send("sleep 2; printf 'ready\\a'; sleep 600\r")
        watch("needs_input", 10)  # a bell, two seconds after the last keystroke
        assert "running" in seen[:-1]
        time.sleep(1.0)  # `sleep 600` in front (a Ctrl-C between two commands of the list is lost)
        term.send("\x03")  # Ctrl-C: answered; the program ends, the prompt is back
        watch("idle", 10)
        # A prompt that emits OSC 133 marks is believed over the foreground check.
        term.send("printf '\\033]133;C\\007'; sleep 1.5; printf '\\033]133;D;0\\007'\r")
        watch("running", 10)
        watch("idle", 10)
    finally:
        term.close()
        served.request("DELETE", f"/api/sessions/{session['id']}")


def test_sessions_api_lists_attention(served: AppServer) -> None:
    session = served.request("POST", "/api/sessions", {"agent": "bash"})[1]
    try:
        assert session["attention"] == "idle" and isinstance(session["attention_since"], float)
        listed = next(s for s in served.request("GET", "/api/sessions")[1] if s["id"] == session["id"])
        assert {"attention", "attention_since", "attention_detail"} <= set(listed)
    finally:
        served.request("DELETE", f"/api/sessions/{session['id']}")


def test_hook_files_exist_after_boot(served: AppServer) -> None:
    assert (served.home / ".coda/hooks/attention.sh").read_bytes() == SCRIPT.read_bytes()
    assert install.is_ours(json.loads((served.home / ".claude/settings.json").read_text())["hooks"]["Stop"][-1]
                           ["hooks"][0]["command"])


def test_notification_settings_are_saved(tmp_path: Path) -> None:
    from lib.settings import EDITABLE, save_overrides

    env = {"HOME": str(tmp_path)}
    assert {"notify_desktop", "notify_sound"} <= set(EDITABLE)
    assert not load_settings(env).notify_desktop and not load_settings(env).notify_sound
    save_overrides({"notify_desktop": True, "notify_sound": "on"}, env)
    saved = load_settings(env)
    assert saved.notify_desktop is True and saved.notify_sound is True
