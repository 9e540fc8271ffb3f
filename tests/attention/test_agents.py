"""Each real agent CLI tells the app what it is doing: working, needs input, working again, done.

The real app runs with the pinned CLIs in ``~/.local`` against the fake
workspace, in the "ask" permission mode; its boot setup writes every CLI's
config, hooks included. Each CLI runs as an agent session
(``POST /api/sessions``), watched over the terminal WebSocket by a client
that answers the terminal's queries as xterm.js does and records every
``attention`` push. The fake model answers the typed prompt with one shell
tool call (``fw.model_tool_command``), so the CLI asks for permission:

prompt -> ``working`` -> the permission question on screen -> ``needs_input``
within 2 s of it -> Enter (the first choice: allow once) -> ``working`` ->
the fake's final text -> ``done``, each pushed by the app, and the same in
``GET /api/sessions``. Which hook said what is checked too (``EXPECTED``):
every one of the four CLIs has a hook for every step, so no step here rests
on the terminal alone.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.agentterm import ANSWERS, ESCALATE, ESCAPES, QUESTION, READY, kill_leftovers
from tests.appserver import AppServer, start_app
from tests.fakeworkspace import FakeWorkspace

REPLY = "PONG-attention-6127"
PROMPT = "Create the marker file"
AGENTS = ("claude", "codex", "gemini", "opencode")


@dataclass(frozen=True)
class Expected:
    working: set[str]  # events that may report the prompt being worked on
    needs_input: set[str]  # the permission question
    answered: set[str]  # a hook that reports work again after the answer (besides the Enter itself)
    done: set[str]


EXPECTED = {
    "claude": Expected({"UserPromptSubmit"}, {"PermissionRequest"}, {"PostToolUse"}, {"Stop"}),
    "codex": Expected({"UserPromptSubmit"}, {"PermissionRequest"}, {"PostToolUse"}, {"Stop", "notify"}),
    "gemini": Expected({"BeforeAgent"}, {"Notification"}, {"AfterTool"}, {"AfterAgent"}),
    "opencode": Expected({"working"}, {"needs_input"}, {"working"}, {"done"}),
}


@dataclass
class Push:
    at: float  # time.monotonic() when it arrived
    attention: str
    event: str
    detail: str
    since: float


@dataclass
class AgentView:
    """One viewer of a session over the app's WebSocket: answers the terminal's queries, records pushes."""

    url: str
    session_id: str
    output: bytearray = field(default_factory=bytearray)
    pushes: list[Push] = field(default_factory=list)
    seen_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ws = connect(f"{self.url}/terminal/ws/{self.session_id}", max_size=None, open_timeout=10)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                msg = self.ws.recv(timeout=min(left, 0.1))
            except TimeoutError:
                continue
            if isinstance(msg, bytes):
                self.output += msg
                for query, answer in ANSWERS:
                    if query in msg:
                        self.ws.send(answer)
                for mode in re.findall(rb"\x1b\[\?(\d+)\$p", msg):
                    self.ws.send(b"\x1b[?" + mode + b";2$y")
                continue
            control = json.loads(msg)
            if control.get("type") == "ping":
                self.ws.send(json.dumps({"type": "pong"}))
            elif control.get("type") == "attention":
                row = next((s for s in control["sessions"] if s["id"] == self.session_id), None)
                if row is not None:
                    self.pushes.append(Push(time.monotonic(), row["attention"], row["event"], row["detail"],
                                            row["since"]))

    def text(self) -> str:
        return "".join(ESCAPES.sub(b"", bytes(self.output)).decode("utf-8", "replace").split())

    def wait(self, condition: Callable[[], Any], at_most_s: float) -> Any:
        deadline = time.monotonic() + at_most_s
        while not (found := condition()) and time.monotonic() < deadline:
            self.pump(0.1)
        return found

    def wait_for(self, marker: str, at_most_s: float) -> float | None:
        """When ``marker`` (whitespace ignored) was first seen on screen, waiting for it if need be."""
        if self.wait(lambda: marker in self.text(), at_most_s):
            return self.seen_at.setdefault(marker, time.monotonic())
        return None

    def state_after(self, state: str, after: float, at_most_s: float) -> Push | None:
        return self.wait(lambda: next((p for p in self.pushes if p.at >= after and p.attention == state), None),
                         at_most_s)

    def type(self, text: str) -> None:
        for char in text.encode():  # typed, not pasted: TUIs treat a fast burst + Enter as a paste
            self.ws.send(bytes([char]))
            self.pump(0.05)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def fw() -> Iterator[FakeWorkspace]:
    with FakeWorkspace() as workspace:
        workspace.model_reply = REPLY
        yield workspace


@pytest.fixture(scope="module")
def deployed(clis: Path, fw: FakeWorkspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:  # noqa: F811
    home = tmp_path_factory.mktemp("attention-agents") / "home"
    home.mkdir(parents=True)
    (home / ".local").symlink_to(clis)  # what the boot setup's npm installs leave
    project = home / "projects" / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    token = fw.create_token()
    server = start_app(home, {"DATABRICKS_HOST": fw.url, "DATABRICKS_TOKEN": token, "CODA_PERMISSION_MODE": "ask"})
    server.wait_setup(120)
    yield server
    server.stop()
    kill_leftovers(home)


def _listed(server: AppServer, session_id: str) -> dict[str, Any]:
    return next(s for s in server.request("GET", "/api/sessions")[1] if s["id"] == session_id)


@pytest.mark.parametrize("agent_id", AGENTS)
def test_agent_reports_working_needs_input_working_done(agent_id: str, deployed: AppServer,
                                                         fw: FakeWorkspace) -> None:
    expected = EXPECTED[agent_id]
    marker = deployed.home / "projects" / "demo" / f"marker-{agent_id}"
    fw.clear_requests()
    fw.model_tool_command = f"touch {marker}"
    fw.model_tool_arguments = ESCALATE  # Codex asks only for a command that wants out of its sandbox
    status, session = deployed.request("POST", "/api/sessions", {"agent": agent_id, "cwd": "demo"})
    assert status == 201, session
    view = AgentView(deployed.ws_url, session["id"])
    try:
        # OpenCode waits once per HOME for its own install of its plugin SDK (our plugin makes it wait).
        assert view.wait_for(READY[agent_id], 300), f"{agent_id} never became ready:\n{view.text()[-1500:]}"
        view.pump(1.5)  # the prompt is drawn a moment before it listens
        view.type(PROMPT)
        view.pump(1.0)
        typed = time.monotonic()
        view.ws.send(b"\r")
        if not view.wait(lambda: fw.model_requests, 10):
            view.ws.send(b"\r")  # an Enter swallowed by paste detection; a person presses again

        working = view.state_after("working", typed, 60)
        assert working, f"{agent_id}: never 'working': {view.pushes}"
        assert working.event in expected.working, working

        asked = view.wait_for(QUESTION[agent_id], 90)
        assert asked, f"{agent_id} did not ask:\n{view.text()[-2000:]}\n{view.pushes}"
        needs = view.state_after("needs_input", working.at, 10)
        assert needs, f"{agent_id}: never 'needs_input': {view.pushes}"
        assert needs.at - asked <= 2.0, f"{agent_id}: 'needs_input' {needs.at - asked:.2f} s after the question"
        assert needs.event in expected.needs_input and needs.detail.startswith("permission"), needs
        assert _listed(deployed, session["id"])["attention"] == "needs_input"
        view.pump(2.0)
        assert not marker.exists(), f"{agent_id} ran the command without an answer"

        approved = time.monotonic()
        view.ws.send(b"\r")  # the first choice of every CLI's question: allow once
        again = view.state_after("working", approved, 10)
        assert again, f"{agent_id}: not 'working' after the answer: {view.pushes}"
        assert view.wait(marker.exists, 30), f"{agent_id} did not run the approved command"
        assert view.wait_for(REPLY, 60), f"{agent_id} never showed the reply:\n{view.text()[-2000:]}"
        done = view.state_after("done", approved, 30)
        assert done, f"{agent_id}: never 'done': {view.pushes}"
        assert done.event in expected.done, done
        after = [p for p in view.pushes if approved <= p.at <= done.at]
        assert {p.event for p in after if p.attention == "working"} & expected.answered, \
            f"{agent_id}: no hook reported the work after the answer: {after}"
        listed = _listed(deployed, session["id"])
        assert listed["attention"] == "done" and abs(listed["attention_since"] - done.since) < 1e-6
        print(f"\n{agent_id}: " + " -> ".join(f"{p.attention}({p.event})" for p in view.pushes))
    finally:
        fw.model_tool_command = None
        fw.model_tool_arguments = {}
        view.close()
        deployed.request("DELETE", f"/api/sessions/{session['id']}")
