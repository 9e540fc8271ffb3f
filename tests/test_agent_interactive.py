"""Each agent CLI, started the way a session starts it, answers a typed prompt.

Like ``test_agent_clis`` but interactive: the CLI runs in a PTY with the
terminal environment sessions get (``lib.sessions.session_env``), HOME holds
our config files plus the launcher's project trust entries, and the prompt is
typed. This catches first-run dialogs ("trust this folder?", auth pickers)
that the non-interactive modes skip. A tiny responder answers the terminal
queries (colours, cursor position, device attributes) that xterm.js answers
in the browser; without answers some TUIs wait forever.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

from lib.agents import config as agent_config
from lib.agents.base import CODING_AGENT_HEADER
from lib.agents import get_agent
from lib.terminal.session import session_env
from lib.settings import load_settings
from tests.fakeworkspace import FakeWorkspace
from tests.test_agent_clis import clis  # noqa: F401  (session fixture: the pinned CLIs)

REPLY = "PONG-interactive-7731"
# What each pinned CLI shows (whitespace removed) once its prompt takes input.
READY = {"claude": "foragents", "codex": "AskCodextodoanything", "gemini": "Typeyourmessage",
         "opencode": "Askanything"}
_ANSWERS = [
    (b"\x1b]10;?", b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\"),
    (b"\x1b]11;?", b"\x1b]11;rgb:0000/0000/0000\x1b\\"),
    (b"\x1b[6n", b"\x1b[1;1R"),
    (b"\x1b[c", b"\x1b[?62;22c"),
    (b"\x1b[?u", b"\x1b[?0u"),
    (b"\x1b[>0q", b"\x1bP>|xterm.js(5.5.0)\x1b\\"),
]
_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=!]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1bP[^\x1b]*\x1b\\|\x1b[()][A-Z0-9]|\x1b[=>78]")


class Terminal:
    """A PTY plus the answers a real terminal would give to its queries."""

    def __init__(self, proc: PtyProcess) -> None:
        self.proc = proc
        self.output = b""

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.proc.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.proc.fd, 65536)
            except OSError:
                return
            self.output += chunk
            for query, answer in _ANSWERS:
                if query in chunk:
                    os.write(self.proc.fd, answer)
            for mode in re.findall(rb"\x1b\[\?(\d+)\$p", chunk):
                os.write(self.proc.fd, b"\x1b[?" + mode + b";2$y")

    def wait_for(self, marker: str, at_most_s: float = 60.0) -> bool:
        """Pump until ``marker`` is on screen (whitespace ignored)."""
        deadline = time.monotonic() + at_most_s
        while marker not in self.text() and time.monotonic() < deadline and self.proc.isalive():
            self.pump(0.3)
        return marker in self.text()

    def text(self) -> str:
        """Everything shown so far, escapes and all whitespace removed."""
        return "".join(_ESCAPES.sub(b"", self.output).decode("utf-8", "replace").split())


def _kill_leftovers(home: Path) -> None:
    """End processes still running from this HOME (Codex leaves an app-server daemon)."""
    marker = str(home)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def workspace():
    fw = FakeWorkspace()
    fw.start()
    fw.model_reply = REPLY
    yield fw
    fw.stop()


@pytest.mark.parametrize("agent_id", ["claude", "codex", "gemini", "opencode"])
def test_typed_prompt_gets_the_reply(agent_id: str, clis: Path, workspace: FakeWorkspace, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".local").symlink_to(clis)  # as if the boot setup had installed them
    token = workspace.create_token()
    settings = load_settings({"HOME": str(home), "DATABRICKS_HOST": workspace.url})
    assert all(r.ok for r in agent_config.write_all(home, settings, token))
    project = settings.projects_dir / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    agent_config.trust_project(home, project)
    env = session_env(home, project, os.environ)
    agent = get_agent(agent_id)
    program = shutil.which(agent.command[0], path=env["PATH"])
    assert program == str(home / ".local" / "bin" / agent.command[0])
    workspace.clear_requests()
    term = Terminal(PtyProcess.spawn([program, *agent.command[1:]], cwd=str(project), env=env, dimensions=(40, 120)))
    try:
        ready = term.wait_for(READY[agent_id])
        assert "trust" not in term.text().lower(), f"{agent_id} asked about trust:\n{term.text()[-1500:]}"
        assert ready, f"{agent_id} never became ready:\n{term.text()[-1500:]}"
        term.pump(1.5)  # the prompt is drawn a moment before it listens
        for char in b"Say hi":  # typed, not pasted: TUIs treat a fast burst + Enter as a paste
            term.proc.write(bytes([char]))
            term.pump(0.05)
        term.pump(1.0)
        term.proc.write(b"\r")
        if not term.wait_for(REPLY, at_most_s=10) and not workspace.model_requests:
            term.proc.write(b"\r")  # an Enter swallowed by paste detection; a real user presses again
        assert term.wait_for(REPLY), f"{agent_id} never showed the reply:\n{term.text()[-2000:]}"
    finally:
        term.proc.terminate(force=True)
        _kill_leftovers(home)
    calls = workspace.model_requests
    assert calls
    for call in calls:
        assert call.headers.get("authorization") == f"Bearer {token}"
        assert call.headers.get(CODING_AGENT_HEADER) == "true"
