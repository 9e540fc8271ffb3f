"""Sync never gives up on a transient error: the on-disk retry queue, its backoff, the
app's background driver, refused tokens, "Retry now", an app restart in the middle, and
repositories whose own ``core.hooksPath`` (husky) hides our hook.

The backoff is the real code path with its first step and cap scaled down through
``~/.coda/sync/options.json`` (``retry_first_s``/``retry_max_s``), as a deployment could.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib import homefiles
from lib.sync import retry
from lib.sync.daemon import SyncDaemon, retry_now, start_background, stop_background
from lib.sync.engine import sync_project
from lib.sync.errors import Cause, Retry, retry_policy
from lib.sync.options import SyncOptions
from lib.sync.records import SyncRecord, SyncResult
from lib.sync.retry import RetryKind
from tests.fakeworkspace import FakeWorkspace
from tests.gitrepos import (
    CONTENT,
    OWNER,
    commit_all,
    expected_tree,
    git,
    make_repo,
    records,
    remote_tree,
    wait_for,
    wait_record,
    write_credentials,
    write_files,
    write_options,
)

ROOT = Path(__file__).resolve().parents[2]
FAST_RETRY = {"retry_first_s": 1.0, "retry_max_s": 8.0, "watch_every_s": 0.2, "conversations_every_s": 3600}


@pytest.fixture
def daemon(home: Path) -> Iterator[SyncDaemon]:
    """The app's background driver, as the runtime starts it (stopped after the test)."""
    yield (d := SyncDaemon(home))
    d.stop()


def demo_runs(home: Path, **match: object) -> list[dict]:
    return [r for r in records(home) if r.get("project") == "demo" and all(r.get(k) == v for k, v in match.items())]


def history_head(fw: FakeWorkspace) -> str | None:
    try:
        state = json.loads(fw.read_file(f"/Users/{OWNER}/.coda/history/demo/history.json"))
    except FileNotFoundError:
        return None
    return state["refs"].get("refs/heads/main")


# -- the rules (pure) ------------------------------------------------------------------------------


def test_backoff_doubles_from_one_second_to_five_minutes() -> None:
    options = SyncOptions()
    waits = [retry.backoff_s(n, options.retry_first_s, options.retry_max_s) for n in range(1, 12)]
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert retry.backoff_s(10_000, 1, 300) == 300


def _record(result: SyncResult, kind: str | None = None, token_hash: str | None = None) -> SyncRecord:
    return SyncRecord(time="t", project="demo", repo="/r", result=result, error="it failed", error_kind=kind,
                      token_hash=token_hash)


def test_what_each_outcome_does_to_the_queue() -> None:
    options = SyncOptions()
    first = retry.after_run(None, _record(SyncResult.ERROR, Cause.UNREACHABLE), 1000.0, options)
    assert first is not None and (first.kind, first.attempts, first.next_at) == (RetryKind.BACKOFF, 1, 1001.0)
    second = retry.after_run(first, _record(SyncResult.ERROR, Cause.SERVER_ERROR), 1002.0, options)
    assert second is not None and (second.attempts, second.next_at, second.first_failed) == (2, 1004.0, 1000.0)
    assert retry.after_run(second, _record(SyncResult.SKIPPED), 1003.0, options) == second
    assert retry.after_run(second, _record(SyncResult.OK), 1005.0, options) is None
    refused = retry.after_run(second, _record(SyncResult.ERROR, Cause.TOKEN_REJECTED, "old"), 1006.0, options)
    assert refused is not None
    assert (refused.kind, refused.token_hash, refused.next_at) == (RetryKind.NEW_TOKEN, "old", 0)
    assert retry.after_run(second, _record(SyncResult.ERROR, Cause.REQUEST_REJECTED), 1007.0, options) is None
    assert retry.due(second, 1003.9, None) is False and retry.due(second, 1004.0, None) is True
    assert retry.due(refused, 10**10, "old") is False and retry.due(refused, 0, None) is False
    assert retry.due(refused, 0, "new") is True
    assert retry.RetryEntry.from_dict(json.loads(json.dumps(refused.to_dict()))) == refused
    assert retry.RetryEntry.from_dict({"project": "x"}) is None
    for cause in ("unreachable", "throttled", "server_error", "deadline", "busy"):
        assert retry_policy(cause) is Retry.BACKOFF
    assert retry_policy("token_rejected") is Retry.NEW_TOKEN and retry_policy(None) is Retry.NONE


# -- end to end --------------------------------------------------------------------------------------


def test_workspace_down_20_s_during_a_commit_then_up(hooked_home: Path, fw: FakeWorkspace,
                                                     daemon: SyncDaemon) -> None:
    """The hook's sync fails (connection reset), the app keeps retrying; once the workspace is back the
    commit's exact files (and its history) are there, without a new commit."""
    home = hooked_home
    write_credentials(home, fw, fw.create_token(user=OWNER))
    write_options(home, **FAST_RETRY)
    repo = make_repo(home)
    write_files(repo, {"base.txt": b"before the outage\n"})
    base = commit_all(repo, home, "before the outage")
    wait_record(home, lambda r: r.get("commit") == base and r.get("result") == "ok", what="the first sync")
    daemon.start()

    fw.set_fault("down")  # every request: connection closed without an answer
    down_at = time.monotonic()
    write_files(repo, CONTENT)
    (repo / "base.txt").unlink()
    sha = commit_all(repo, home, "committed while the workspace is down")
    failed = wait_record(home, lambda r: r.get("commit") == sha and r.get("result") == "error", what="the failure")
    assert failed["trigger"] == "hook" and "Could not reach" in failed["error"]
    entry = wait_for(lambda: retry.load(home, "demo"), 10, "the retry entry")
    assert entry.kind == RetryKind.BACKOFF

    time.sleep(max(0.0, 20 - (time.monotonic() - down_at)))
    assert remote_tree(fw).get("base.txt") == b"before the outage\n"  # nothing got through
    fw.clear_faults()
    up_at = time.monotonic()

    wait_for(lambda: remote_tree(fw) == expected_tree(repo, home) and history_head(fw) == sha, 60,
             "the commit's files in the workspace")
    took = time.monotonic() - up_at
    print(f"\nworkspace back: commit synced {took:.1f} s after recovery")
    assert took < 60
    assert git(repo, home, "rev-parse", "HEAD").strip() == sha  # no new commit was needed
    assert git(repo, home, "rev-list", "--count", "HEAD").strip() == "2"
    wait_for(lambda: retry.load(home, "demo") is None, 10, "the retry entry to go")
    runs = demo_runs(home, commit=sha)
    assert [r["result"] for r in runs][-1] == "ok" and runs[-1]["trigger"] == "retry"
    assert all(r["result"] == "error" for r in runs[:-1]) and len(runs) >= 2


def test_the_queue_outlives_the_app(ws_home: Path, fw: FakeWorkspace) -> None:
    """A failure stays queued on disk: an app killed (-9) mid-retry and started again finishes the sync."""
    home = ws_home
    write_options(home, **FAST_RETRY)
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"queued\n"})
    sha = commit_all(repo, home, "queued")
    fw.set_fault("5xx")
    assert sync_project(home, repo).result == "error"
    assert retry.load(home, "demo") is not None

    script = ("import sys, time\nfrom pathlib import Path\nfrom lib.sync import start_background\n"
              "start_background(Path(sys.argv[1]))\ntime.sleep(300)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "GIT_"))}
    env["PYTHONPATH"] = str(ROOT)

    def app() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", script, str(home)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    first = app()
    try:
        wait_for(lambda: len(demo_runs(home, trigger="retry")) >= 1, 60, "the first app to retry")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    assert retry.load(home, "demo") is not None and not remote_tree(fw)
    fw.clear_faults()
    second = app()
    try:
        wait_for(lambda: demo_runs(home, commit=sha, result="ok"), 60, "the restarted app to finish the sync")
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait(10)
    assert remote_tree(fw) == {"a.txt": b"queued\n"}
    assert retry.load(home, "demo") is None


def test_refused_token_is_shown_once_and_retried_with_a_new_token(ws_home: Path, fw: FakeWorkspace,
                                                                 daemon: SyncDaemon) -> None:
    home = ws_home
    write_options(home, **FAST_RETRY)
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "one")
    fw.revoke_token(homefiles.read_databrickscfg(home).token)
    record = sync_project(home, repo)
    assert record.error_kind == Cause.TOKEN_REJECTED
    entry = retry.load(home, "demo")
    assert entry is not None and entry.kind == RetryKind.NEW_TOKEN and entry.wait_s(time.time()) is None

    daemon.start()
    time.sleep(3)  # many driver turns: no run, no new record (shown once)
    assert daemon.turns > 5 and len(demo_runs(home)) == 1

    write_credentials(home, fw, fw.create_token(user=OWNER))  # what the sidebar's Save does
    wait_for(lambda: demo_runs(home, result="ok", trigger="retry"), 20, "the retry with the new token")
    assert remote_tree(fw) == {"a.txt": b"a"} and retry.load(home, "demo") is None


def test_retry_now_skips_the_wait(ws_home: Path, fw: FakeWorkspace) -> None:
    home = ws_home
    write_options(home, **{**FAST_RETRY, "retry_first_s": 300.0, "retry_max_s": 300.0})
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "one")
    fw.set_fault("429", retry_after=1)
    assert sync_project(home, repo).error_kind == Cause.THROTTLED
    entry = retry.load(home, "demo")
    assert entry is not None and 290 < entry.wait_s(time.time()) <= 300
    fw.clear_faults()
    start_background(home)
    try:
        time.sleep(1)
        assert demo_runs(home, trigger="retry") == []  # not due for five minutes
        assert retry_now(home, "demo")
        wait_for(lambda: demo_runs(home, result="ok", trigger="retry"), 20, "the retry now")
    finally:
        stop_background(home, final_backup_s=0)
    assert retry.load(home, "demo") is None
    # Without a driver in this process (the sync page alone), "Retry now" runs the sync itself.
    write_files(repo, {"b.txt": b"b"})
    commit_all(repo, home, "two")
    fw.set_fault("5xx")
    assert sync_project(home, repo).result == "error"
    fw.clear_faults()
    assert retry_now(home, "demo")
    wait_for(lambda: retry.load(home, "demo") is None, 20, "the manual retry")
    assert remote_tree(fw) == {"a.txt": b"a", "b.txt": b"b"}


def test_husky_style_repository_syncs(hooked_home: Path, fw: FakeWorkspace, daemon: SyncDaemon) -> None:
    """``core.hooksPath=.husky`` replaces our global hook; the app notices the commits itself, and
    neither the repository's files nor its own hooks are touched."""
    home = hooked_home
    write_credentials(home, fw, fw.create_token(user=OWNER))
    write_options(home, **FAST_RETRY)
    repo = make_repo(home)
    husky = repo / ".husky"
    husky.mkdir()
    (husky / "pre-commit").write_text("#!/bin/sh\n[ ! -e block ] || exit 1\n")
    (husky / "post-commit").write_text('#!/bin/sh\necho ran >> "$(git rev-parse --git-dir)/husky-ran"\n')
    for hook in husky.iterdir():
        hook.chmod(0o755)
    git(repo, home, "config", "core.hooksPath", ".husky")
    write_files(repo, {"package.json": b'{"scripts": {"prepare": "husky"}}\n', "index.js": b"1\n"})
    daemon.start()
    first = commit_all(repo, home, "with husky")

    record = wait_record(home, lambda r: r.get("commit") == first and r.get("result") == "ok", 30, "the husky sync")
    assert record["trigger"] == "watch"  # our hook never ran here; the app saw the commit
    assert (repo / ".git" / "husky-ran").read_text() == "ran\n"  # the repository's own hook did run
    assert remote_tree(fw) == expected_tree(repo, home)
    assert git(repo, home, "status", "--porcelain") == ""  # nothing of ours in the repository
    assert sorted(p.name for p in husky.iterdir()) == ["post-commit", "pre-commit"]

    write_files(repo, {"index.js": b"2\n"})
    second = commit_all(repo, home, "second with husky")
    wait_record(home, lambda r: r.get("commit") == second and r.get("result") == "ok", 30, "the second husky sync")
    assert remote_tree(fw)["index.js"] == b"2\n"
    assert history_head(fw) == second
    assert all(r.get("trigger") != "hook" for r in demo_runs(home))
