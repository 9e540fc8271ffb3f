"""Where sessions start and what they trust (issue 12, items 8 and 9's labels).

Before: ``POST /api/sessions {"cwd": "/etc"}`` (or a symlink in ``~/projects``
pointing to ``/etc``) started there and wrote ``/etc`` and ``HOME`` as trusted
folders into Claude's, Codex's and Gemini's trust files, even for a bash
session. Labels kept bidi overrides (U+202E) and C1 controls (U+009B).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from lib.agents import config as agent_config
from lib.settings import load_settings
from lib.terminal.errors import SessionError
from lib.terminal.pump import LoopPump
from lib.terminal.registry import SessionRegistry, clean_label
from tests.appserver import AppServer, start_app


def _trust_files(home: Path) -> dict[str, str]:
    files = {".claude.json": home / ".claude.json", "codex": home / ".codex" / "config.toml",
             "gemini": home / ".gemini" / "trustedFolders.json"}
    return {name: path.read_text() if path.exists() else "" for name, path in files.items()}


@pytest.fixture
def registry(tmp_path: Path, running_loop):
    home = tmp_path / "home"
    (home / "projects" / "demo").mkdir(parents=True)
    settings = load_settings({"HOME": str(home)})
    reg = SessionRegistry(lambda: settings, pump=LoopPump(running_loop))
    yield reg, home
    reg.close_all()


def test_sessions_start_under_home_only(registry, tmp_path: Path) -> None:
    reg, home = registry
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "projects" / "link-to-etc").symlink_to("/etc")
    (home / "projects" / "link-outside").symlink_to(outside)
    for cwd in ("/etc", "/", str(outside), "link-to-etc", "link-outside", "../..", str(home / "projects" / ".." / ".."),
                "~/../..", "~root"):
        with pytest.raises(SessionError, match="outside your home folder|does not exist"):
            reg.create("bash", cwd=cwd)
    assert reg.list() == []
    assert _trust_files(home) == {".claude.json": "", "codex": "", "gemini": ""}
    for cwd, expected in (("demo", home / "projects" / "demo"), ("~", home), ("~/projects", home / "projects"),
                          (str(home / "projects" / "demo"), home / "projects" / "demo"), (None, home / "projects")):
        session = reg.create("bash", cwd=cwd)
        assert Path(session.cwd) == expected.resolve(), cwd
        reg.close(session.id)


def test_a_shell_records_no_trust_and_an_agent_only_its_own(registry) -> None:
    reg, home = registry
    session = reg.create("bash", cwd="demo")
    reg.close(session.id)
    assert _trust_files(home) == {".claude.json": "", "codex": "", "gemini": ""}
    # An agent session (a stand-in "claude" on the session's PATH) trusts its project, for itself only.
    fake = home / ".local" / "bin" / "claude"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    session = reg.create("claude", cwd="demo")
    reg.close(session.id)
    project = str((home / "projects" / "demo").resolve())
    claude = json.loads((home / ".claude.json").read_text())
    assert claude["projects"] == {project: {"hasTrustDialogAccepted": True}}
    assert not (home / ".codex" / "config.toml").exists() and not (home / ".gemini" / "trustedFolders.json").exists()
    # An agent started in HOME itself gets no trust entry for HOME.
    session = reg.create("claude", cwd="~")
    reg.close(session.id)
    assert list(json.loads((home / ".claude.json").read_text())["projects"]) == [project]


def test_trust_is_never_recorded_for_home_or_above(tmp_path: Path) -> None:
    home = tmp_path / "home"
    project = home / "projects" / "demo"
    project.mkdir(parents=True)
    for folder in (home, tmp_path, Path("/"), home / "projects" / ".."):
        assert agent_config.trust_project(home, folder) is False
    assert _trust_files(home) == {".claude.json": "", "codex": "", "gemini": ""}
    assert agent_config.trust_project(home, project) is True
    assert tomllib.loads((home / ".codex" / "config.toml").read_text())["projects"][str(project)]["trust_level"] == "trusted"
    assert str(home) not in json.loads((home / ".claude.json").read_text())["projects"]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> AppServer:
    server = start_app(tmp_path_factory.mktemp("sessions") / "home")
    yield server
    server.stop()


def test_the_api_refuses_folders_outside_home(app: AppServer) -> None:
    (app.home / "projects").mkdir(parents=True, exist_ok=True)
    (app.home / "projects" / "etc-link").symlink_to("/etc")
    for cwd in ("/etc", "etc-link", "/tmp", "/"):
        status, body = app.request("POST", "/api/sessions", {"agent": "bash", "cwd": cwd})
        assert status == 400 and "outside your home folder" in body["error"], (cwd, body)
    assert app.request("GET", "/api/sessions")[1] == []
    status, body = app.request("POST", "/api/sessions", {"agent": "bash", "cwd": "~"})
    assert status == 201 and body["cwd"] == str(app.home.resolve())
    app.request("DELETE", f"/api/sessions/{body['id']}")


def test_labels_lose_bidi_overrides_and_c1_controls(app: AppServer) -> None:
    sneaky = "invoice\u202egnp.exe \x9b31m red \u2066x\u2069 \u200f"
    assert clean_label(sneaky, "fb") == "invoicegnp.exe 31m red x"
    assert clean_label("日本語 ✓ — ok", "fb") == "日本語 ✓ — ok"
    status, body = app.request("POST", "/api/sessions", {"agent": "bash", "label": sneaky})
    assert status == 201 and body["label"] == "invoicegnp.exe 31m red x"
    status, renamed = app.request("PATCH", f"/api/sessions/{body['id']}", {"label": "\u202eabc\x85\x9bdef"})
    assert status == 200 and renamed["label"] == "abcdef"
    app.request("DELETE", f"/api/sessions/{body['id']}")
