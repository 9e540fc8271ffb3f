"""Each agent CLI asks before running a shell command, or not, as its config says.

The fake model answers the typed prompt with one call of the CLI's own shell
tool (``fw.model_tool_command``) running ``touch <project>/marker``. With
the "ask" mode the CLI must show its permission question and leave the file
alone; with "all" it must run the command at once and send the result back
to the model, which then answers with text. The CLIs run in a PTY exactly as
in ``test_agent_interactive`` (same terminal, environment and config files).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

from lib.agents import config as agent_config
from lib.agents import get_agent
from lib.terminal.session import session_env
from lib.settings import load_settings
from tests.fakeworkspace import FakeWorkspace
from tests.test_agent_clis import clis  # noqa: F401  (session fixture: the pinned CLIs)
from tests.test_agent_interactive import READY, Terminal, _kill_leftovers

REPLY = "PONG-permissions-4417"
# A word of each pinned CLI's permission question (whitespace removed, as Terminal.text() shows it).
QUESTION = {
    "claude": "Doyouwanttoproceed?",
    "codex": "Wouldyouliketorunthefollowingcommand?",
    "gemini": "Allowexecutionof",
    "opencode": "Permissionrequired",
}


def _set_mode(home: Path, agent_id: str, mode: str) -> None:
    """Patch the permission keys into the files ``write_all`` wrote ("ask" or "all").

    Stand-in until ``lib.agent_config`` writes them from a ``permission_mode`` setting.
    """
    ask = mode == "ask"
    if agent_id == "claude":
        path = home / ".claude" / "settings.json"
        data = json.loads(path.read_text())
        data["permissions"] = {**data.get("permissions", {}), "defaultMode": "default" if ask else "bypassPermissions"}
        if not ask:
            data["skipDangerousModePermissionPrompt"] = True  # else a "Bypass Permissions mode" disclaimer
        path.write_text(json.dumps(data, indent=2))
    elif agent_id == "codex":
        path = home / ".codex" / "config.toml"
        data = tomllib.loads(path.read_text())
        top = {"approval_policy": "untrusted" if ask else "never",
               "sandbox_mode": "read-only" if ask else "danger-full-access"}
        path.write_text(agent_config.toml_dumps({**top, **data}))
    elif agent_id == "gemini":
        path = home / ".gemini" / "settings.json"
        data = json.loads(path.read_text())
        data.setdefault("general", {})["defaultApprovalMode"] = "default"  # "yolo" is ignored in settings
        path.write_text(json.dumps(data, indent=2))
        if not ask:  # what --approval-mode=yolo does, as a user policy file
            policies = home / ".gemini" / "policies"
            policies.mkdir(parents=True, exist_ok=True)
            (policies / "coda.toml").write_text(
                '[[rule]]\ntoolName = "*"\ndecision = "allow"\npriority = 100\n'
            )
    elif agent_id == "opencode":
        path = home / ".config" / "opencode" / "opencode.json"
        data = json.loads(path.read_text())
        data["permission"] = {"edit": "ask", "bash": "ask"} if ask else "allow"
        path.write_text(json.dumps(data, indent=2))
    else:
        raise KeyError(agent_id)


@pytest.fixture(scope="module")
def workspace():
    fw = FakeWorkspace()
    fw.start()
    fw.model_reply = REPLY
    yield fw
    fw.stop()


def _wait(condition, at_most_s: float, term: Terminal) -> bool:
    deadline = time.monotonic() + at_most_s
    while not condition() and time.monotonic() < deadline and term.proc.isalive():
        term.pump(0.3)
    return bool(condition())


@pytest.mark.parametrize("mode", ["ask", "all"])
@pytest.mark.parametrize("agent_id", ["claude", "codex", "gemini", "opencode"])
def test_shell_tool_call_asks_or_runs(agent_id: str, mode: str, clis: Path, workspace: FakeWorkspace,
                                      tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".local").symlink_to(clis)
    token = workspace.create_token()
    settings = load_settings({"HOME": str(home), "DATABRICKS_HOST": workspace.url})
    assert all(r.ok for r in agent_config.write_all(home, settings, token))
    _set_mode(home, agent_id, mode)
    project = settings.projects_dir / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    agent_config.trust_project(home, project)
    marker = project / "marker"
    env = session_env(home, project, os.environ)
    if agent_id == "claude" and mode == "all" and os.getuid() == 0:
        env["IS_SANDBOX"] = "1"  # Claude Code refuses bypassPermissions as root otherwise
    agent = get_agent(agent_id)
    program = shutil.which(agent.command[0], path=env["PATH"])
    workspace.clear_requests()
    workspace.model_tool_command = f"touch {marker}"
    term = Terminal(PtyProcess.spawn([program, *agent.command[1:]], cwd=str(project), env=env, dimensions=(40, 120)))
    try:
        assert term.wait_for(READY[agent_id]), f"{agent_id} never became ready:\n{term.text()[-1500:]}"
        term.pump(1.5)
        for char in b"Create the marker file":
            term.proc.write(bytes([char]))
            term.pump(0.05)
        term.pump(1.0)
        term.proc.write(b"\r")
        if not _wait(lambda: workspace.model_tool_calls, 10, term):
            term.proc.write(b"\r")  # an Enter swallowed by paste detection
        assert _wait(lambda: workspace.model_tool_calls, 60, term), \
            f"{agent_id} got no tool call:\n{term.text()[-2000:]}"
        call = workspace.model_tool_calls[0]
        if mode == "ask":
            assert term.wait_for(QUESTION[agent_id], at_most_s=30), \
                f"{agent_id} did not ask:\n{term.text()[-2000:]}"
            term.pump(3.0)
            assert not marker.exists(), f"{agent_id} ran the command without asking"
            assert not workspace.model_tool_results
        else:
            assert _wait(marker.exists, 30, term), f"{agent_id} did not run the command:\n{term.text()[-2000:]}"
            assert _wait(lambda: workspace.model_tool_results, 30, term), "the tool result never reached the model"
            result = workspace.model_tool_results[0]
            assert result.call_id == call.call_id and not result.is_error, result
            assert term.wait_for(REPLY, at_most_s=30), f"{agent_id} never showed the reply:\n{term.text()[-2000:]}"
            assert QUESTION[agent_id] not in term.text()
    finally:
        workspace.model_tool_command = None
        term.proc.terminate(force=True)
        _kill_leftovers(home)
