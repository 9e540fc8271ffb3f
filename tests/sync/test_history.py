"""The git history in the workspace and the restore at boot, with real git, the real
databricks-sdk and the fake workspace: several commits and branches synced one by one,
HOME deleted, restore: every commit, ref, HEAD and the working tree come back; bundles
are incremental, compacted, split into parts; a local project is never overwritten.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lib.sync import historyplan, paths
from lib.sync.engine import sync_project
from lib.sync.restore import Outcome, restore_all
from tests.fakeworkspace import FakeWorkspace
from tests.gitrepos import (
    OWNER,
    commit_all,
    expected_tree,
    git,
    import_path,
    import_requests,
    make_repo,
    mirror_root,
    remote_tree,
    write_credentials,
    write_files,
    write_options,
)

HISTORY = f"/Users/{OWNER}/.coda/history"


def facts(repo: Path, home: Path) -> dict[str, Any]:
    """Everything a restore must give back, as git and the file system see it."""
    head = git(repo, home, "symbolic-ref", "-q", "HEAD", check=False).strip() or git(repo, home, "rev-parse", "HEAD")
    return {
        "log": git(repo, home, "log", "--all", "--format=%H"),
        "refs": git(repo, home, "for-each-ref", "--format=%(objectname) %(objecttype) %(refname) %(symref)"),
        "branches": git(repo, home, "branch", "--list", "-vv"),
        "head": head.strip(),
        "head_commit": git(repo, home, "rev-parse", "HEAD").strip(),
        "tree": expected_tree(repo, home),
        "status": git(repo, home, "status", "--porcelain", "--untracked-files=all"),
        "remotes": git(repo, home, "config", "--get-regexp", r"^(remote|branch)\.", check=False),
    }


def renew_home(home: Path, fw: FakeWorkspace | None, token: str | None) -> None:
    """Delete HOME entirely and start again as a new container would: credentials, nothing else."""
    shutil.rmtree(home)
    paths.projects_dir(home).mkdir(parents=True)
    git(home, home, "config", "--global", "user.name", "Sync Test")
    git(home, home, "config", "--global", "user.email", "sync-test@example.com")
    write_options(home)
    write_credentials(home, fw, token)


def synced(home: Path, repo: Path) -> None:
    record = sync_project(home, repo)
    assert record.result == "ok", record.error


def remote_history(fw: FakeWorkspace, project: str = "demo") -> dict[str, Any]:
    return json.loads(fw.read_file(f"{HISTORY}/{project}/history.json"))


def build_history(home: Path, repo: Path) -> None:
    """Commits, branches, a merge, tags, a rewrite, a remote with upstreams; synced after each step."""
    for i in range(4):
        write_files(repo, {f"src/module{i}.py": f"value = {i}\n".encode(), "README.md": f"v{i}\n".encode()})
        commit_all(repo, home, f"main {i}")
        synced(home, repo)
    git(repo, home, "checkout", "-q", "-b", "feature")
    for i in range(2):
        write_files(repo, {f"feature/{i}.txt": f"feature {i}\n".encode()})
        commit_all(repo, home, f"feature {i}")
        synced(home, repo)
    git(repo, home, "checkout", "-q", "main")
    write_files(repo, {"main-only.txt": b"main\n"})
    commit_all(repo, home, "main work")
    git(repo, home, "merge", "-q", "--no-edit", "feature")
    synced(home, repo)
    git(repo, home, "tag", "light")
    git(repo, home, "tag", "-a", "v1.0", "-m", "release 1.0")
    git(repo, home, "branch", "doomed")
    synced(home, repo)
    git(repo, home, "branch", "-D", "doomed")
    write_files(repo, {"amended.txt": b"first try\n"})
    commit_all(repo, home, "to be amended")
    synced(home, repo)
    write_files(repo, {"amended.txt": b"second try\n"})
    git(repo, home, "add", "-A")
    git(repo, home, "commit", "-q", "--amend", "-m", "amended")
    git(repo, home, "remote", "add", "origin", "https://someone:ghp_secret123@example.com/team/demo.git")
    git(repo, home, "update-ref", "refs/remotes/origin/main", "HEAD~1")
    git(repo, home, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    git(repo, home, "config", "branch.main.remote", "origin")
    git(repo, home, "config", "branch.main.merge", "refs/heads/main")
    git(repo, home, "checkout", "-q", "feature")
    synced(home, repo)


def test_history_round_trip_after_home_is_deleted(ws_home: Path, fw: FakeWorkspace) -> None:
    home = ws_home
    token = (home / ".databrickscfg").read_text().split("token = ")[1].strip()
    repo = make_repo(home)
    build_history(home, repo)
    # Uncommitted work the last sync uploaded: an edit, a new file, a deletion.
    write_files(repo, {"feature/0.txt": b"edited, not committed\n", "notes/untracked.md": b"draft\n"})
    (repo / "src" / "module0.py").unlink()
    synced(home, repo)
    before = facts(repo, home)
    assert "refs/remotes/origin/HEAD" in before["refs"] and "v1.0" in before["refs"]

    state = remote_history(fw)
    assert state["head"] == {"ref": "refs/heads/feature"}
    assert "ghp_secret123" not in json.dumps(state)  # never a credential from a remote URL
    assert state["worktree"]["changed"] == ["feature/0.txt", "notes/untracked.md"]
    assert state["worktree"]["deleted"] == ["src/module0.py"]
    # The history is next to the project folder, not in it.
    assert not [p for p in remote_tree(fw) if p.endswith(".bundle") or p == "history.json"]

    renew_home(home, fw, token)
    report = restore_all(home)

    assert [(p.project, p.outcome) for p in report.projects] == [("demo", Outcome.RESTORED)], report.summary()
    after = facts(repo, home)
    remotes = before.pop("remotes")
    assert after.pop("remotes") == remotes.replace("someone:ghp_secret123@", "")
    assert after == before
    assert not list(paths.projects_dir(home).glob(".restoring-*"))
    assert not git(repo, home, "for-each-ref", "refs/coda-restore")  # temporary refs are gone
    git(repo, home, "fsck", "--no-dangling")  # a sound repository

    # The sync carries on incrementally: one new file, one small bundle.
    fw.clear_requests()
    write_files(repo, {"after-restore.txt": b"new\n"})
    sha = commit_all(repo, home, "after the restore")
    record = sync_project(home, repo)
    assert record.result == "ok", record.error
    assert len(import_requests(fw, "projects/demo/")) == 1  # the manifest came back with the project
    assert record.history and record.history.startswith("bundle ")
    assert remote_history(fw)["refs"]["refs/heads/feature"] == sha


def test_incremental_bundles_parts_and_compaction(ws_home: Path, fw: FakeWorkspace) -> None:
    import os

    home = ws_home
    token = (home / ".databrickscfg").read_text().split("token = ")[1].strip()
    write_options(home, history_max_bundles=3, history_part_bytes=16 * 1024)
    repo = make_repo(home)
    write_files(repo, {"big.bin": os.urandom(40 * 1024)})  # incompressible: the bundle needs 3 parts
    commit_all(repo, home, "big")
    first = sync_project(home, repo)
    assert first.result == "ok" and first.history and "full bundle 1" in first.history and "in 3 parts" in first.history
    full_bytes = first.history_bytes
    assert sorted(fw.list_dir(f"{HISTORY}/demo/bundles")) == ["000001.bundle.000", "000001.bundle.001",
                                                              "000001.bundle.002"]
    sizes = []
    for i in range(2):
        write_files(repo, {f"small{i}.txt": f"small {i}\n".encode()})
        commit_all(repo, home, f"small {i}")
        record = sync_project(home, repo)
        assert record.history and record.history.startswith(f"bundle {i + 2} "), record.history
        sizes.append(record.history_bytes)
    assert max(sizes) < full_bytes / 20, (sizes, full_bytes)
    assert [b["seq"] for b in remote_history(fw)["bundles"]] == [1, 2, 3]

    # A fourth bundle would pass history_max_bundles: one full bundle replaces them all.
    write_files(repo, {"small9.txt": b"last\n"})
    commit_all(repo, home, "compact")
    record = sync_project(home, repo)
    assert record.history and "full bundle 4" in record.history and "old removed" in record.history
    state = remote_history(fw)
    assert [b["seq"] for b in state["bundles"]] == [4] and state["bundles"][0]["full"]
    assert sorted(fw.list_dir(f"{HISTORY}/demo/bundles")) == [p.rsplit("/", 1)[1] for p in state["bundles"][0]["parts"]]

    # A ref that moves to a commit already uploaded needs no bundle, only history.json.
    git(repo, home, "branch", "old-point", "HEAD~2")
    record = sync_project(home, repo)
    assert record.history == "2 refs updated (no new objects)"
    # Nothing changed at all: no request.
    fw.clear_requests()
    assert sync_project(home, repo).history == "unchanged" and fw.requests == []

    before = facts(repo, home)
    renew_home(home, fw, token)
    restore_all(home)
    assert facts(repo, home) == before


def test_sha256_repository_round_trip(ws_home: Path, fw: FakeWorkspace) -> None:
    home = ws_home
    token = (home / ".databrickscfg").read_text().split("token = ")[1].strip()
    repo = paths.projects_dir(home) / "demo"
    repo.mkdir()
    git(repo, home, "init", "-q", "--object-format=sha256", "-b", "main")
    write_files(repo, {"a.txt": b"a\n"})
    commit_all(repo, home, "sha256 one")
    synced(home, repo)
    write_files(repo, {"b.txt": b"b\n"})
    commit_all(repo, home, "sha256 two")
    synced(home, repo)
    before = facts(repo, home)
    assert len(before["head_commit"]) == 64
    renew_home(home, fw, token)
    restore_all(home)
    assert facts(repo, home) == before


def test_restore_never_overwrites_and_brings_back_the_rest(ws_home: Path, fw: FakeWorkspace) -> None:
    home = ws_home
    token = (home / ".databrickscfg").read_text().split("token = ")[1].strip()
    for name in ("alpha", "beta", "group/nested"):
        repo = make_repo(home, name)
        write_files(repo, {"name.txt": name.encode()})
        commit_all(repo, home, f"{name} one")
        synced(home, repo)
    # A project synced before histories were kept: files only.
    fw.put_file(f"/Workspace/Users/{OWNER}/projects/legacy/src/app.py", b"print('legacy')\n")
    fw.put_file(f"/Workspace/Users/{OWNER}/projects/legacy/README.md", b"# legacy\n")

    renew_home(home, fw, token)
    mine = make_repo(home, "beta")
    write_files(mine, {"local.txt": b"made here, must stay"})
    (paths.projects_dir(home) / "alpha").mkdir()  # an empty folder is not a project: restore into it

    report = restore_all(home)
    outcomes = {p.project: p.outcome for p in report.projects}
    assert outcomes == {"alpha": Outcome.RESTORED, "beta": Outcome.KEPT, "group/nested": Outcome.RESTORED,
                        "legacy": Outcome.FILES}, report.summary()
    assert (paths.projects_dir(home) / "alpha" / "name.txt").read_bytes() == b"alpha"
    assert (paths.projects_dir(home) / "group" / "nested" / "name.txt").read_bytes() == b"group/nested"
    assert sorted(p.name for p in mine.iterdir()) == [".git", "local.txt"]  # untouched
    legacy = paths.projects_dir(home) / "legacy"
    assert expected_tree(legacy, home) == {"src/app.py": b"print('legacy')\n", "README.md": b"# legacy\n"}
    assert git(legacy, home, "rev-parse", "--is-inside-work-tree").strip() == "true"
    assert "restored: alpha, group/nested" in report.summary() and "kept (exists locally): beta" in report.summary()

    # The legacy files are known to be in the workspace: the first commit uploads nothing again.
    commit_all(legacy, home, "legacy history starts")
    record = sync_project(home, legacy)
    assert record.result == "ok" and record.uploaded == 0 and record.history.startswith("full bundle 1")

    # Again: everything exists now, nothing changes.
    again = restore_all(home)
    assert {p.outcome for p in again.projects} == {Outcome.KEPT}
    # A project deleted here after it was synced stays deleted.
    shutil.rmtree(paths.projects_dir(home) / "alpha")
    third = restore_all(home)
    assert {p.project: p.outcome for p in third.projects}["alpha"] == Outcome.SKIPPED
    assert not (paths.projects_dir(home) / "alpha").exists()


def test_failed_restore_leaves_nothing_half_done(ws_home: Path, fw: FakeWorkspace) -> None:
    home = ws_home
    token = (home / ".databrickscfg").read_text().split("token = ")[1].strip()
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "one")
    synced(home, repo)
    renew_home(home, fw, token)

    fw.set_fault("5xx", paths=["/api/2.0/workspace/export"])
    report = restore_all(home)
    (failed,) = report.failed
    assert failed.project == "demo" and "server error" in failed.detail
    assert not (paths.projects_dir(home) / "demo").exists()
    assert not list(paths.projects_dir(home).glob(".restoring-*"))
    assert "failed: demo" in report.summary()

    fw.clear_faults()
    report = restore_all(home)
    assert [p.outcome for p in report.projects] == [Outcome.RESTORED]
    assert (paths.projects_dir(home) / "demo" / "a.txt").read_bytes() == b"a"


def test_damaged_bundle_is_refused(ws_home: Path, fw: FakeWorkspace) -> None:
    home = ws_home
    token = (home / ".databrickscfg").read_text().split("token = ")[1].strip()
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "one")
    synced(home, repo)
    fw.put_file(f"{HISTORY}/demo/bundles/000001.bundle", b"# v2 git bundle\nnot really\n")
    renew_home(home, fw, token)
    report = restore_all(home)
    assert "checksum" in report.failed[0].detail
    assert not (paths.projects_dir(home) / "demo").exists()


def test_without_a_workspace_history_goes_to_the_local_mirror(home: Path) -> None:
    write_credentials(home, None, None)
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "local")
    record = sync_project(home, repo)
    assert record.result == "ok" and record.history.startswith("full bundle 1")
    folder = mirror_root(home).parents[1] / ".coda" / "history" / "demo"
    state = json.loads((folder / "history.json").read_text())
    assert (folder / state["bundles"][0]["parts"][0]).is_file()
    assert restore_all(home).skipped_reason  # nothing to restore from without a workspace


@pytest.mark.parametrize("history_on", [False])
def test_history_can_be_turned_off(ws_home: Path, fw: FakeWorkspace, history_on: bool) -> None:
    write_options(ws_home, history=history_on)
    repo = make_repo(ws_home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, ws_home, "one")
    record = sync_project(ws_home, repo)
    assert record.result == "ok" and record.history is None
    assert not [r for r in fw.requests if ".coda/history" in import_path(r)]


def test_plan_is_pure_and_minimal() -> None:
    refs = {"refs/heads/main": "b"}
    first = historyplan.plan(None, refs, "sha1", set(), 32)
    assert (first.bundle, first.full, first.seq, first.positives) == (True, True, 1, ["refs/heads/main"])
    prev = {"refs": refs, "object_format": "sha1", "seq": 1, "bundles": [{"seq": 1, "parts": ["b/000001.bundle"]}]}
    assert historyplan.plan(prev, refs, "sha1", {"b"}, 32).bundle is False
    moved = {"refs/heads/main": "c"}
    step = historyplan.plan(prev, moved, "sha1", {"b"}, 32)
    assert (step.bundle, step.full, step.negatives, step.seq, step.keep) == (True, False, ["b"], 2, prev["bundles"])
    gone = historyplan.plan(prev, moved, "sha1", set(), 32)  # none of the uploaded tips is here: start over
    assert gone.full and gone.drop == prev["bundles"] and gone.keep == []
    back = historyplan.plan({**prev, "refs": {"refs/heads/main": "b", "refs/heads/x": "c"}}, moved, "sha1",
                           {"b", "c"}, 32)
    assert not back.bundle  # every tip is one already uploaded: history.json only
    assert historyplan.plan(prev, moved, "sha1", {"b"}, 1).full  # past the bundle limit
    assert historyplan.plan(prev, refs, "sha256", {"b"}, 32).full  # another object format: start over


def test_an_uploaded_tip_lost_to_gc_starts_over_with_a_full_bundle(ws_home: Path, fw: FakeWorkspace) -> None:
    home = ws_home
    token = (home / ".databrickscfg").read_text().split("token = ")[1].strip()
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "one")
    write_files(repo, {"b.txt": b"b"})
    commit_all(repo, home, "two")
    synced(home, repo)
    git(repo, home, "commit", "-q", "--amend", "-m", "two, reworded")
    git(repo, home, "reflog", "expire", "--expire=now", "--all")
    git(repo, home, "gc", "-q", "--prune=now")  # the uploaded tip is gone for good
    record = sync_project(home, repo)
    assert record.result == "ok", record.error
    assert record.history.startswith("full bundle 2") and "old removed" in record.history
    before = facts(repo, home)
    renew_home(home, fw, token)
    restore_all(home)
    assert facts(repo, home) == before


def test_restore_from_the_command_line(ws_home: Path, fw: FakeWorkspace) -> None:
    import os
    import subprocess
    import sys

    home = ws_home
    token = (home / ".databrickscfg").read_text().split("token = ")[1].strip()
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "one")
    synced(home, repo)
    before = facts(repo, home)
    renew_home(home, fw, token)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "GIT_"))}
    out = subprocess.run([sys.executable, "-m", "lib.sync", "restore", "--home", str(home)],
                         cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "demo (1/1): rebuilding the repository" in out.stdout and "restored: demo" in out.stdout
    assert facts(repo, home) == before
