"""Sessions outlive the app process (issue 10, part 1), with the real CLIs and the fake model.

The real app runs with the pinned CLIs in ``~/.local`` against the fake
workspace. Claude Code and Codex each answer one typed prompt in the browser,
a shell prints a line; then the app is killed with SIGKILL (no shutdown hook
runs: what survives is what the recorder had written) and started again on
the same HOME. ``GET /api/sessions`` lists the three as ended by a restart;
the Sessions page shows each one's last screen; Resume starts the same agent
in the same folder on the same conversation: the fake model receives the
earlier prompt and answer in the resumed conversation's next request. The
shell comes back as a new shell in the same folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from lib.terminal import snapshot
from lib.terminal.records import records_dir
from tests.agentterm import READY, kill_leftovers
from tests.appserver import AppServer, start_app
from tests.browser import SCREEN_HAS, browser, terminal_text
from tests.fakeworkspace import FakeWorkspace
from tests.termclient import TermClient

FIRST_PROMPT = "Remember the word pelican"
SECOND_PROMPT = "Which word did I ask you to remember"
REPLY_ONE = "FIRST-ANSWER-5821"
REPLY_TWO = "SECOND-ANSWER-9034"
# What each CLI shows once a resumed conversation takes input: OpenCode's placeholder
# ("Ask anything") is only for a new one; its footer hint ("ctrl+p commands") wraps with a long path.
RESUMED_READY = {**READY, "opencode": "ctrl+p"}
SHELL_LINE = "echo before-restart-$((40+2))"
SHELL_OUT = "before-restart-42"

@pytest.fixture(scope="module")
def fw() -> Iterator[FakeWorkspace]:
    with FakeWorkspace() as workspace:
        workspace.model_reply = REPLY_ONE
        yield workspace




def _until(condition: Callable[[], object], at_most_s: float, what: str) -> None:
    deadline = time.monotonic() + at_most_s
    while True:
        try:
            if condition():
                return
        except FileNotFoundError:  # a record not written yet
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def _squashed(text: str) -> str:
    return "".join(text.split())


def _type_prompt(page: Page, fw: FakeWorkspace, prompt: str) -> None:
    """Type like a person (a fast burst + Enter reads as a paste to some TUIs), then Enter."""
    page.wait_for_timeout(3000)  # the prompt is drawn a moment before it listens
    page.keyboard.type(prompt, delay=40)
    page.wait_for_timeout(800)
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 10
    while not _asked(fw, prompt) and time.monotonic() < deadline:
        page.wait_for_timeout(300)
    if not _asked(fw, prompt):
        page.keyboard.press("Enter")  # an Enter swallowed by paste detection; a person presses again


def _asked(fw: FakeWorkspace, prompt: str) -> list[dict]:
    """Model request bodies that carry ``prompt`` (its end: a TUI that has just resumed may drop
    the first keystrokes while it still loads the conversation, as Gemini CLI does)."""
    bodies = [r.json for r in fw.model_requests]
    return [b for b in bodies if prompt[-18:] in json.dumps(b)]


def _wait_screen(page: Page, needle: str, what: str, server: AppServer, fw: FakeWorkspace,
                 timeout_ms: int = 150000) -> None:
    try:
        page.wait_for_function(SCREEN_HAS, arg=needle, timeout=timeout_ms)
    except Exception as exc:
        requests = [(r.path, json.dumps(r.json)[-300:]) for r in fw.model_requests]
        raise AssertionError(f"{what}: {needle!r} never on screen:\n{terminal_text(page)[-3000:]}\n"
                             f"model requests: {requests}\n{server.log()[-3000:]}") from exc


def _record(home: Path, session_id: str) -> dict:
    return json.loads((records_dir(home) / f"{session_id}.json").read_text())


def _screen_text(home: Path, session_id: str) -> str:
    record = _record(home, session_id)
    data = (records_dir(home) / f"{session_id}.screen").read_bytes()
    return snapshot.to_text(snapshot.render(data, record["cols"], record["rows"]))


def test_claude_codex_and_a_shell_survive_kill_9(clis: Path, fw: FakeWorkspace, tmp_path: Path) -> None:  # noqa: F811
    _survive_kill_9(("claude", "codex"), True, clis, fw, tmp_path)


def test_gemini_and_opencode_survive_kill_9(clis: Path, fw: FakeWorkspace, tmp_path: Path) -> None:  # noqa: F811
    _survive_kill_9(("gemini", "opencode"), False, clis, fw, tmp_path)


def _survive_kill_9(agents: tuple[str, ...], with_shell: bool, clis: Path, fw: FakeWorkspace,  # noqa: F811
                    tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".local").symlink_to(clis)  # what the boot setup's npm installs leave
    project = home / "projects" / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    env = {"DATABRICKS_HOST": fw.url, "DATABRICKS_TOKEN": fw.create_token()}
    ids: dict[str, str] = {}
    server = start_app(home, env)
    try:
        server.wait_setup(120)
        # ---- before: each agent answers once, the shell prints a line
        with browser() as b:
            context = b.new_context(viewport={"width": 1300, "height": 900})
            for agent in agents:
                status, body = server.request("POST", "/api/sessions", {"agent": agent, "cwd": "demo"})
                assert status == 201, body
                ids[agent] = body["id"]
                page = context.new_page()
                page.goto(f"{server.url}/?session={body['id']}")
                _wait_screen(page, READY[agent], f"{agent} starting", server, fw, 90000)
                _type_prompt(page, fw, FIRST_PROMPT)
                _wait_screen(page, REPLY_ONE, f"{agent}'s first answer", server, fw)
                page.close()
        if with_shell:
            status, body = server.request("POST", "/api/sessions", {"agent": "bash", "cwd": "demo"})
            assert status == 201, body
            ids["bash"] = body["id"]
            term = TermClient(server.ws_url, body["id"])
            term.send(SHELL_LINE + "\r")
            term.read_until(SHELL_OUT)
            term.close()
        # The recorder (every 2 s, off the keystroke path) has each conversation and last screen.
        for agent in agents:
            _until(lambda a=agent: _record(home, ids[a]).get("conversation_known"), 30,
                   f"{agent}'s conversation was never found")
            _until(lambda a=agent: REPLY_ONE in _squashed(_screen_text(home, ids[a])), 15,
                   f"{agent}'s last screen was never recorded")
        if with_shell:
            _until(lambda: SHELL_OUT in _screen_text(home, ids["bash"]), 15, "the shell's screen was never recorded")
        conversations = {a: _record(home, ids[a])["conversation_id"] for a in agents}
        # ---- kill -9: no shutdown hook runs
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
    finally:
        server.stop()

    fw.clear_requests()
    server = start_app(home, env)
    try:
        server.wait_setup(120)
        _, listed = server.request("GET", "/api/sessions")
        by_id = {s["id"]: s for s in listed}
        assert set(by_id) == set(ids.values()), listed
        for agent, session_id in ids.items():
            entry = by_id[session_id]
            assert entry["status"] == "restart-ended" and entry["agent"] == agent, entry
            assert entry["cwd"] == str(project.resolve()) and entry["pid"] is None, entry
            assert entry["conversation_id"] == conversations.get(agent), entry
        with browser() as b:
            context = b.new_context(viewport={"width": 1300, "height": 900})
            for agent, session_id in ids.items():
                page = context.new_page()
                page.goto(f"{server.url}/?session={session_id}")
                ended = page.locator(f".st-key-ended-{session_id}")
                screen = ended.locator(".coda-last-screen")
                screen.wait_for(timeout=30000)
                expected = SHELL_OUT if agent == "bash" else REPLY_ONE
                assert expected in _squashed(screen.inner_text()), screen.inner_text()
                assert "Ended by a restart" in page.content()
                ended.get_by_role("button", name="Resume").click()
                if agent == "bash":
                    page.wait_for_function("() => !!window.__codaTerm", timeout=30000)
                    page.wait_for_timeout(1000)
                    page.keyboard.type("echo now-in-$(pwd)\n", delay=20)
                    page.wait_for_function(SCREEN_HAS, arg=f"now-in-{project.resolve()}", timeout=30000)
                    page.close()
                    continue
                _wait_screen(page, RESUMED_READY[agent], f"{agent} resuming", server, fw, 90000)
                fw.clear_requests()
                fw.model_reply = REPLY_TWO
                _type_prompt(page, fw, SECOND_PROMPT)
                _wait_screen(page, REPLY_TWO, f"{agent}'s second answer", server, fw)
                fw.model_reply = REPLY_ONE
                asked = _asked(fw, SECOND_PROMPT)
                assert asked, (f"{agent}: no model request carried the second prompt: "
                               f"{[json.dumps(r.json)[-600:] for r in fw.model_requests]}\n{terminal_text(page)}")
                body = json.dumps(asked[0])
                assert FIRST_PROMPT in body and REPLY_ONE in body, \
                    f"{agent}'s resumed conversation lost the earlier messages: {body[-3000:]}"
                page.close()
        _, listed = server.request("GET", "/api/sessions")
        assert {s["id"]: s["status"] for s in listed} == dict.fromkeys(ids.values(), "running"), listed
        for agent in agents:  # the same conversation goes on under the same id
            _until(lambda a=agent: _record(home, ids[a]).get("conversation_id") == conversations[a], 10,
                   f"{agent}'s record lost its conversation")
    finally:
        server.stop()
        kill_leftovers(home)
