"""Each agent CLI asks before running a shell command, or not, as its config says.

The fake model answers the typed prompt with one call of the CLI's own shell
tool (``fw.model_tool_command``) running ``touch <project>/marker``. In the
"ask" mode the CLI must show its permission question and leave the file
alone until the question is answered; in "all" it must run the command at
once and send the result back to the model, which then answers with text.
The CLIs run in a PTY as in ``tests/agentterm.py`` (same terminal,
environment and config files). The first tests check the fake's tool-call
answers on the wire, without CLIs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ptyprocess import PtyProcess

from lib.agents import config as agent_config
from lib.agents import get_agent
from lib.settings import load_settings
from lib.terminal.spec import session_env
from tests.agentterm import ESCALATE, QUESTION, READY, Terminal, kill_leftovers
from tests.fakeworkspace import FakeWorkspace

REPLY = "PONG-permissions-4417"
# Claude Code in an explicit manual/bypass mode no longer shows "shift+tab to cycle" in every mode.
READY_MARKERS = {**READY, "claude": "foragents"}
# What each pinned CLI asks (whitespace removed, as Terminal.text() shows it).
@pytest.fixture(scope="module")
def workspace() -> Iterator[FakeWorkspace]:
    with FakeWorkspace() as fw:
        fw.model_reply = REPLY
        yield fw


# ---------------------------------------------------------------- the fake, on the wire

def _events(http: httpx.Client, fw: FakeWorkspace, token: str, path: str, body: dict[str, Any]) -> list[Any]:
    with http.stream("POST", fw.url + path, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status_code == 200
        datas = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    return [json.loads(d) for d in datas if d != "[DONE]"]


def _anthropic(events: list[Any]) -> dict[str, Any]:
    start = next(e for e in events if e["type"] == "content_block_start")["content_block"]
    if start["type"] == "text":
        return {"text": "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")}
    args = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"
    return {"id": start["id"], "name": start["name"], "args": json.loads(args)}


def _responses(events: list[Any]) -> dict[str, Any]:
    item = next(e for e in events if e["type"] == "response.output_item.done")["item"]
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["output"] == [item]
    if item["type"] == "message":
        return {"text": item["content"][0]["text"]}
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert deltas == item["arguments"]
    return {"id": item["call_id"], "name": item["name"], "args": json.loads(item["arguments"])}


def _chat(events: list[Any]) -> dict[str, Any]:
    deltas = [e["choices"][0] for e in events if e["choices"]]
    if deltas[-1]["finish_reason"] == "stop":
        return {"text": "".join(d["delta"].get("content") or "" for d in deltas)}
    assert deltas[-1]["finish_reason"] == "tool_calls"
    calls = [c for d in deltas for c in d["delta"].get("tool_calls", [])]
    args = "".join(c["function"]["arguments"] for c in calls)
    return {"id": calls[0]["id"], "name": calls[0]["function"]["name"], "args": json.loads(args)}


def _gemini(events: list[Any]) -> dict[str, Any]:
    parts = [p for e in events for p in e["candidates"][0]["content"]["parts"]]
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    if not calls:
        return {"text": "".join(p["text"] for p in parts)}
    return {"id": calls[0]["id"], "name": calls[0]["name"], "args": calls[0]["args"]}


SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
          "required": ["command"]}
CODEX_SCHEMA = {"type": "object", "properties": {"cmd": {"type": "string"}, "sandbox_permissions": {"type": "string"},
                                                 "justification": {"type": "string"}}, "required": ["cmd"]}
# api: (path, first request, how to add the tool result, parse, expected tool name, its arguments)
WIRE: dict[str, tuple] = {
    "anthropic": (
        "/anthropic/v1/messages",
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "go"}],
         "tools": [{"name": "Read", "input_schema": {}}, {"name": "Bash", "input_schema": SCHEMA}]},
        lambda body, cid: body["messages"].extend([
            {"role": "assistant", "content": [{"type": "tool_use", "id": cid, "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": cid,
                                          "content": [{"type": "text", "text": "done"}]}]}]),
        _anthropic, "Bash", {"command": "touch /x", "description": "Run the requested shell command"},
    ),
    "responses": (
        "/openai/v1/responses",
        {"model": "m", "stream": True, "input": [{"role": "user", "content": "go"}],
         "tools": [{"type": "function", "name": "exec_command", "parameters": CODEX_SCHEMA}]},
        lambda body, cid: body["input"].extend([
            {"type": "function_call", "call_id": cid, "name": "exec_command", "arguments": "{}"},
            {"type": "function_call_output", "call_id": cid, "output": "done"}]),
        _responses, "exec_command", {"cmd": "touch /x", **ESCALATE},
    ),
    "chat": (
        "/serving-endpoints/chat/completions",
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "go"}],
         "tools": [{"type": "function", "function": {"name": "bash", "parameters": SCHEMA}}]},
        lambda body, cid: body["messages"].extend([
            {"role": "assistant", "tool_calls": [{"id": cid, "type": "function",
                                                  "function": {"name": "bash", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": cid, "content": "done"}]),
        _chat, "bash", {"command": "touch /x", "description": "Run the requested shell command"},
    ),
    "gemini": (
        "/gemini/v1beta/models/m:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "go"}]}],
         "tools": [{"functionDeclarations": [{"name": "run_shell_command", "parametersJsonSchema": SCHEMA}]}]},
        lambda body, cid: body["contents"].extend([
            {"role": "model", "parts": [{"functionCall": {"id": cid, "name": "run_shell_command", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": cid, "name": "run_shell_command",
                                                             "response": {"output": "done"}}}]}]),
        _gemini, "run_shell_command", {"command": "touch /x", "description": "Run the requested shell command"},
    ),
}


@pytest.mark.parametrize("api", list(WIRE))
def test_fake_answers_with_one_shell_call_then_text(api: str, workspace: FakeWorkspace) -> None:
    path, body, add_result, parse, name, args = WIRE[api]
    body = json.loads(json.dumps(body))
    token = workspace.create_token()
    workspace.clear_requests()
    workspace.model_tool_command = "touch /x"
    workspace.model_tool_arguments = ESCALATE  # only where the schema has these keys
    try:
        with httpx.Client(timeout=10) as http:
            no_tools = {k: v for k, v in body.items() if k != "tools"}
            assert parse(_events(http, workspace, token, path, no_tools)) == {"text": REPLY}
            call = parse(_events(http, workspace, token, path, body))
            assert call["name"] == name and call["args"] == args
            add_result(body, call["id"])
            assert parse(_events(http, workspace, token, path, body)) == {"text": REPLY}
            assert parse(_events(http, workspace, token, path, body)) == {"text": REPLY}  # result seen once
    finally:
        workspace.model_tool_command = None
        workspace.model_tool_arguments = {}
    [recorded] = workspace.model_tool_calls
    assert (recorded.api, recorded.call_id, recorded.name, recorded.arguments) == (api, call["id"], name, args)
    [result] = workspace.model_tool_results
    assert (result.api, result.call_id, result.is_error) == (api, call["id"], False) and "done" in result.output


# ---------------------------------------------------------------- the real CLIs

def _wait(condition: Callable[[], Any], at_most_s: float, term: Terminal) -> bool:
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
    settings = load_settings({"HOME": str(home), "DATABRICKS_HOST": workspace.url, "CODA_PERMISSION_MODE": mode})
    assert all(r.ok for r in agent_config.write_all(home, settings, token))
    project = settings.projects_dir / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    agent_config.trust_project(home, project)
    marker = project / "marker"
    env = session_env(home, project, os.environ)
    agent = get_agent(agent_id)
    program = shutil.which(agent.command[0], path=env["PATH"])
    workspace.clear_requests()
    workspace.model_tool_command = f"touch {marker}"
    workspace.model_tool_arguments = ESCALATE if mode == "ask" else {}
    term = Terminal(PtyProcess.spawn([program, *agent.command[1:]], cwd=str(project), env=env, dimensions=(40, 120)))
    try:
        assert term.wait_for(READY_MARKERS[agent_id]), f"{agent_id} never became ready:\n{term.text()[-1500:]}"
        term.pump(1.5)  # the prompt is drawn a moment before it listens
        for char in b"Create the marker file":  # typed, not pasted
            term.proc.write(bytes([char]))
            term.pump(0.05)
        term.pump(1.0)
        term.proc.write(b"\r")
        if not _wait(lambda: workspace.model_requests, 10, term):
            term.proc.write(b"\r")  # an Enter swallowed by paste detection
        assert _wait(lambda: workspace.model_tool_calls, 60, term), \
            f"{agent_id} got no tool call:\n{term.text()[-2000:]}"
        [call] = workspace.model_tool_calls
        if mode == "ask":
            assert term.wait_for(QUESTION[agent_id], at_most_s=30), f"{agent_id} did not ask:\n{term.text()[-2000:]}"
            term.pump(3.0)
            assert not marker.exists(), f"{agent_id} ran the command without an answer"
            assert not workspace.model_tool_results
            term.proc.write(b"\r")  # the first choice of every CLI's question: allow once
        else:
            assert _wait(marker.exists, 30, term), f"{agent_id} did not run the command:\n{term.text()[-2000:]}"
        assert _wait(marker.exists, 30, term), f"{agent_id} did not run the approved command:\n{term.text()[-2000:]}"
        assert _wait(lambda: workspace.model_tool_results, 30, term), "the tool result never reached the model"
        [result] = workspace.model_tool_results
        assert result.call_id == call.call_id and not result.is_error, result
        assert term.wait_for(REPLY, at_most_s=30), f"{agent_id} never showed the reply:\n{term.text()[-2000:]}"
        if mode == "all":
            assert QUESTION[agent_id] not in term.text(), f"{agent_id} asked:\n{term.text()[-2000:]}"
    finally:
        workspace.model_tool_command = None
        workspace.model_tool_arguments = {}
        term.proc.terminate(force=True)
        kill_leftovers(home)
