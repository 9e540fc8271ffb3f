"""Boot setup: a failing npm install is recorded and retried; a second boot is fast.

No internet is needed: the three CLIs that are "already installed" come from
the test CLI cache (linked into ``~/.local``), and Claude's package spec is
overridden with ``CODA_NPM_SPEC_CLAUDE`` to first a missing tarball (npm
fails) and then a tiny local package (npm succeeds offline).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from lib.agents import get_agent, installable_agents
from lib.agents import setup as boot
from lib.agents.installer import install, is_installed
from lib.settings import load_settings
from lib.workspace import tokens
from tests.fakeworkspace import FakeWorkspace

OWNER = ("owner.person@example.com", "Owner Person")


def _link_installed(home: Path, cache: Path, agent_ids: list[str]) -> None:
    """Make ``~/.local`` look like npm installed these agents (symlinks into the cache)."""
    for agent_id in agent_ids:
        agent = get_agent(agent_id)
        bin_dir = home / ".local" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / agent.executable).symlink_to(cache / "bin" / agent.executable)
        pkg = home / ".local" / "lib" / "node_modules" / agent.npm_package
        pkg.parent.mkdir(parents=True, exist_ok=True)
        pkg.symlink_to(cache / "lib" / "node_modules" / agent.npm_package)


def _fake_package(folder: Path) -> Path:
    """A one-file npm package providing a ``claude`` program (installs offline)."""
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps(
        {"name": "coda-fake-claude", "version": "9.9.9", "bin": {"claude": "cli.js"}}))
    (folder / "cli.js").write_text("#!/usr/bin/env node\nconsole.log('fake claude 9.9.9');\n")
    return folder


@pytest.fixture
def workspace():
    with FakeWorkspace(owner_email=OWNER[0]) as fw:
        yield fw


def _git(home: Path, key: str) -> str:
    return subprocess.run(["git", "config", "--global", "--get", key], env={**os.environ, "HOME": str(home)},
                          capture_output=True, text=True).stdout.strip()


def test_failing_install_is_reported_and_retry_works(tmp_path: Path, clis: Path, workspace: FakeWorkspace,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _link_installed(home, clis, ["codex", "gemini", "opencode"])
    token = workspace.create_token()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", token + "\n")
    monkeypatch.setenv("CODA_NPM_SPEC_CLAUDE", str(tmp_path / "does-not-exist.tgz"))
    settings = load_settings()
    runner = boot.BootSetup(token_store=tokens.TokenStore(), owner=lambda wait: OWNER)
    assert runner.state() == "pending"
    runner.start(settings)
    assert runner.wait(120)
    steps = {s.id: s for s in runner.steps()}
    assert runner.state() == "failed"
    claude = steps["install:claude"]
    assert claude.state == "failed"
    assert "npm install" in claude.error and "does-not-exist.tgz" in claude.error
    assert claude.duration_s is not None
    for other in ("install:codex", "install:gemini", "install:opencode"):
        assert steps[other].state == "ok" and "already installed" in steps[other].detail
    assert steps["token"].state == "ok" and OWNER[0] in steps["token"].detail
    assert steps["configs"].state == "ok"
    assert steps["git"].state == "ok"
    assert _git(home, "user.email") == OWNER[0] and _git(home, "user.name") == OWNER[1]
    # The token was stripped of its newline before it went anywhere.
    assert f"token = {token}\n" in (home / ".databrickscfg").read_text()

    # Fix the cause, retry: only the failed step runs again.
    monkeypatch.setenv("CODA_NPM_SPEC_CLAUDE", str(_fake_package(tmp_path / "fake-claude")))
    token_step_before = runner.step("token")
    assert runner.retry_failed()
    assert runner.wait(120)
    assert runner.step("install:claude").state == "ok", runner.step("install:claude")
    assert runner.step("token") == token_step_before
    assert runner.state() == "ok"
    assert runner.retry_failed() is False  # nothing left to retry
    out = subprocess.run([str(home / ".local" / "bin" / "claude")], capture_output=True, text=True)
    assert "fake claude" in out.stdout

    # Second boot: everything is in place, so it must be quick and change nothing.
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and ".local" not in p.parts}
    second = boot.BootSetup(token_store=tokens.TokenStore(), owner=lambda wait: OWNER)
    began = time.monotonic()
    second.start(settings)
    assert second.wait(60)
    elapsed = time.monotonic() - began
    print(f"\nsecond boot setup took {elapsed:.3f} s (runner's own figure {second.total_s:.3f} s)")
    assert second.state() == "ok"
    assert elapsed < 3.0, f"a second boot took {elapsed:.2f} s"
    after = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and ".local" not in p.parts}
    assert after == before


def test_no_host_locally_is_not_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clis: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _link_installed(home, clis, ["claude", "codex", "gemini", "opencode"])
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_GATEWAY_HOST", "DATABRICKS_APP_NAME",
                "DATABRICKS_APP_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    subprocess.run(["git", "config", "--global", "user.name", "Already Me"], env={**os.environ, "HOME": str(home)},
                   check=True)
    runner = boot.BootSetup(token_store=tokens.TokenStore(), owner=lambda wait: (None, None))
    runner.start(load_settings())
    assert runner.wait(60)
    steps = {s.id: s for s in runner.steps()}
    assert runner.state() == "ok"
    assert steps["token"].state == "skipped"
    assert steps["configs"].state == "skipped"
    assert "not configured: no workspace host" in steps["configs"].detail
    # A local user's own git name is left alone; only the missing email is filled in.
    assert _git(home, "user.name") == "Already Me"
    assert _git(home, "user.email").endswith("@localhost")


def test_install_timeout_and_missing_npm_are_readable(tmp_path: Path) -> None:
    agent = get_agent("codex")
    result = install(agent, tmp_path, env={"PATH": str(tmp_path / "nothing")})
    assert not result.ok and "npm is not installed" in result.error
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "npm").write_text("#!/bin/sh\nexec /bin/sleep 30\n")
    (slow / "npm").chmod(0o755)
    result = install(agent, tmp_path, env={"PATH": str(slow)}, timeout_s=0.5)
    assert not result.ok and "did not finish within" in result.error
    assert not is_installed(agent, tmp_path)


def test_every_installable_agent_is_pinned_exactly() -> None:
    import re

    for agent in installable_agents():
        assert re.fullmatch(r"\d+\.\d+\.\d+", agent.npm_version or ""), agent.id


def test_skip_install_switch_never_runs_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODA_SKIP_INSTALL", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DATABRICKS_HOST", raising=False)
    monkeypatch.delenv("DATABRICKS_TOKEN", raising=False)
    calls: list[str] = []
    runner = boot.BootSetup(token_store=tokens.TokenStore(), owner=lambda wait: (None, None),
                            install=lambda agent, home: calls.append(agent.id))
    runner.start(load_settings())
    assert runner.wait(30)
    assert calls == []
    steps = {s.id: s for s in runner.steps()}
    assert steps["install:claude"].state == "skipped" and "CODA_SKIP_INSTALL" in steps["install:claude"].detail
    assert runner.state() == "ok"


def test_no_token_with_a_cli_profile_says_agents_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            workspace: FakeWorkspace) -> None:
    """A `databricks auth login` profile serves the agents: the token step says a token is only for sync."""
    from lib.agents.base import Loopback
    from lib.workspace.credentials import Credentials

    home = tmp_path / "home"
    home.mkdir()
    (home / ".databrickscfg").write_text(f"[work]\nhost = {workspace.url}\ntoken = {workspace.create_token()}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CODA_SKIP_INSTALL", "1")
    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "work")
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_GATEWAY_HOST", "DATABRICKS_APP_NAME"):
        monkeypatch.delenv(var, raising=False)
    store = tokens.TokenStore()
    credentials = Credentials(store, load_settings)
    runner = boot.BootSetup(token_store=store, owner=lambda wait: (None, None),
                            models=lambda: Loopback("http://127.0.0.1:9/_coda/local/gateway", credentials.problem()))
    runner.start(load_settings())
    assert runner.wait(30)
    token = runner.step("token")
    assert token.state == "skipped"
    assert "agents reach models through the app's own credentials" in token.detail
    assert "sync needs a token" in token.detail
    # Every agent is configured (for the gateway); only the CLI's own ~/.databrickscfg is the user's profile.
    configs = runner.step("configs").detail
    assert configs.startswith("databrickscfg:") and not any(a in configs for a in ("claude", "codex", "gemini", "opencode"))

    # With no credential at all the step still asks for a token.
    (home / ".databrickscfg").unlink()
    second = boot.BootSetup(token_store=tokens.TokenStore(), owner=lambda wait: (None, None),
                            models=lambda: Loopback("http://127.0.0.1:9/_coda/local/gateway", credentials.problem()))
    second.start(load_settings())
    assert second.wait(30)
    assert second.step("token").detail == "no token: paste a personal access token in the sidebar"
