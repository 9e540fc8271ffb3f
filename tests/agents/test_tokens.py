"""The workspace token: checked before use, never shown, dead tokens reported."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from lib import homefiles
from lib.agents import config as agent_config
from lib.settings import load_settings
from lib.sync import Cause, refused_token, sync_project
from lib.workspace import endpoints, tokens
from tests.fakeworkspace import FakeWorkspace
from tests.gitrepos import commit_all, home, make_repo, write_files  # noqa: F401 - fixture

OWNER = "owner.person@example.com"


@pytest.fixture(scope="module")
def workspace():
    with FakeWorkspace(owner_email=OWNER) as fw:
        yield fw


def _store(sync_refusal: tokens.SyncRefusal | None = None) -> tokens.TokenStore:
    return tokens.TokenStore(check=lambda host, token: tokens.check_token(host, token, timeout_s=2),
                             sync_refusal=sync_refusal)


def test_clean_token_strips_newlines_and_spaces() -> None:
    assert tokens.clean_token(" dapi123\n") == "dapi123"
    assert tokens.clean_token("\n \t") is None
    assert tokens.clean_token(None) is None


def test_secret_token_is_used_and_checked(workspace: FakeWorkspace, tmp_path: Path) -> None:
    token = workspace.create_token()
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": workspace.url})
    store = _store()
    status = store.load_initial(settings, {"DATABRICKS_TOKEN": token + "\r\n"})
    assert status.state == tokens.UNCHECKED and status.source == "secret"
    assert store.token() == token
    status = store.verify(settings)
    assert status.state == tokens.OK and status.user == OWNER


def test_pasted_token_is_checked_before_use(workspace: FakeWorkspace, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": workspace.url})
    store = _store()
    store.load_initial(settings, {})
    assert store.status().state == tokens.MISSING and store.token() is None
    bad = "dapi-not-a-real-token-0000"
    outcome = store.submit(settings, bad)
    assert outcome.state == tokens.REJECTED
    assert bad not in outcome.message and "personal access token" in outcome.message
    assert store.token() is None, "a rejected token must not be used"
    good = workspace.create_token()
    outcome = store.submit(settings, f"  {good}\n")
    assert outcome.state == tokens.OK and outcome.user == OWNER
    assert store.token() == good
    assert bad not in caplog.text and good not in caplog.text


def test_revoked_token_is_reported_with_the_fix(workspace: FakeWorkspace, tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": workspace.url})
    token = workspace.create_token()
    store = _store()
    assert store.submit(settings, token).state == tokens.OK
    workspace.revoke_token(token)
    status = store.verify(settings)
    assert status.state == tokens.REJECTED
    assert "rejected" in status.message and "paste it in the sidebar" in status.message
    assert token not in status.message
    assert not status.usable


def test_expired_token_is_reported(workspace: FakeWorkspace, tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": workspace.url})
    token = workspace.create_token()
    store = _store()
    store.load_initial(settings, {"DATABRICKS_TOKEN": token})
    workspace.expire_token(token)
    assert store.verify(settings).state == tokens.REJECTED


def test_unreachable_workspace_is_not_a_dead_token(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": "http://127.0.0.1:9"})
    store = _store()
    store.load_initial(settings, {"DATABRICKS_TOKEN": "dapi-some-token"})
    status = store.verify(settings)
    assert status.state == tokens.UNREACHABLE
    assert status.usable
    assert "dapi-some-token" not in status.message


def test_token_survives_a_restart_through_the_config_it_wrote(workspace: FakeWorkspace, tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": workspace.url})
    token = workspace.create_token()
    agent_config.write_all(tmp_path, settings, token)
    store = _store()
    status = store.load_initial(settings, {})
    assert status.source == "saved" and store.token() == token
    other = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": "https://other.example.com"})
    assert _store().load_initial(other, {}).state == tokens.MISSING


def test_background_recheck_returns_at_once(workspace: FakeWorkspace, tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": workspace.url})
    store = _store()
    store.load_initial(settings, {"DATABRICKS_TOKEN": workspace.create_token()})
    assert store.verify_in_background(settings).state == tokens.UNCHECKED
    import time

    deadline = time.time() + 10
    while store.status().state == tokens.UNCHECKED and time.time() < deadline:
        time.sleep(0.05)
    assert store.status().state == tokens.OK


def test_token_the_sync_saw_refused_reaches_the_sidebar(workspace: FakeWorkspace, home: Path) -> None:  # noqa: F811  (the gitrepos fixture)
    """The detached sync's "token refused" shows in the sidebar, for the token in use only, cheaply."""
    settings = load_settings({"HOME": str(home), "DATABRICKS_HOST": workspace.url})
    token = workspace.create_token()
    agent_config.write_databrickscfg(home, settings, token)  # what the hook reads, as the app writes it
    homefiles.write_identity(home, owner=OWNER, display_name=None, source="test", resolved_at=time.time())
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "first")

    reads: list[Path] = []

    def reader(h: Path) -> str | None:
        reads.append(h)
        return refused_token(h)

    store = _store(sync_refusal=reader)
    assert store.load_initial(settings, {}).source == "saved"  # as after a restart
    assert store.verify(settings).state == tokens.OK
    assert sync_project(home, repo).result == "ok"
    assert store.verify_in_background(settings).state == tokens.OK  # a sync that got through reports nothing

    workspace.revoke_token(token)
    write_files(repo, {"b.txt": b"b"})
    commit_all(repo, home, "second")
    record = sync_project(home, repo)
    assert record.error_kind == Cause.TOKEN_REJECTED
    # The store's own re-check is minutes away: the REJECTED comes from the sync record.
    status = store.verify_in_background(settings)
    assert status.state == tokens.REJECTED and not status.usable
    assert "synced" in status.message and "paste it in the sidebar" in status.message
    assert token not in status.message

    # While the log does not change, a page run costs a stat, not a read.
    seen = len(reads)
    for _ in range(5):
        store.verify_in_background(settings)
    assert len(reads) == seen

    # A new token: a refusal of the old one (the hook still has it until configs are rewritten) is not about it.
    assert store.submit(settings, workspace.create_token()).state == tokens.OK
    write_files(repo, {"c.txt": b"c"})
    commit_all(repo, home, "third")
    assert sync_project(home, repo).error_kind == Cause.TOKEN_REJECTED
    assert store.verify_in_background(settings).state == tokens.OK
    assert len(reads) == seen + 1


def test_endpoint_names_are_listed_and_cached(workspace: FakeWorkspace) -> None:
    endpoints.clear_cache()
    token = workspace.create_token()
    workspace.clear_requests()
    names = endpoints.endpoint_names(workspace.url, token)
    assert names and "databricks-claude-opus-4-6" in names and names == sorted(names)
    assert endpoints.endpoint_names(workspace.url, token) == names
    listed = [r for r in workspace.requests if r.path == "/api/2.0/serving-endpoints"]
    assert len(listed) == 1
    assert endpoints.endpoint_names(None, token) is None
    assert endpoints.fetch_endpoint_names("http://127.0.0.1:9", token, timeout_s=1) is None
