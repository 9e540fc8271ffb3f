"""The sync engine in-process, against the fake workspace (real databricks-sdk over HTTP)
and against the local mirror folder: content, incremental uploads, deletes and
renames, size cap, failures and recovery, locking and the read helpers.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from lib import homefiles
from lib.projects import list_projects
from lib.settings import Settings
from lib.sync import paths
from lib.sync.engine import sync_now, sync_project
from lib.sync.errors import Cause
from lib.sync.gitfiles import snapshot
from lib.sync.manifest import Manifest
from lib.sync.manifest import load as load_manifest
from lib.sync.options import MiB, SyncOptions, load_options
from lib.sync.plan import make_plan
from lib.sync.records import SyncResult
from lib.sync.status import ProjectStatus, project_status, recent_records, refused_token
from lib.sync.targets import LocalFolderTarget, Location, TargetKind, WorkspaceTarget
from tests.fakeworkspace import FakeWorkspace
from tests.gitrepos import (
    CONTENT,
    IGNORED,
    OWNER,
    commit_all,
    expected_tree,
    import_requests,
    make_repo,
    mirror_root,
    mirror_tree,
    records,
    remote_tree,
    write_credentials,
    write_files,
    write_options,
)


@pytest.fixture(params=["workspace", "local"])
def target_home(request, home: Path) -> tuple[str, Path, FakeWorkspace | None]:
    """The same tests for both targets: the fake workspace, or the local mirror (no token)."""
    if request.param == "workspace":
        server = FakeWorkspace(owner_email=OWNER).start()
        request.addfinalizer(server.stop)
        write_credentials(home, server, server.create_token(user=OWNER))
        return "workspace", home, server
    write_credentials(home, None, None)
    return "local", home, None


def status_rows(home: Path) -> list[ProjectStatus]:
    """``project_status`` as the page calls it: for the folders ``lib.projects`` lists."""
    return project_status(home, list_projects(Settings(home=home)))


def target_tree(kind: str, home: Path, server: FakeWorkspace | None) -> dict[str, bytes]:
    return remote_tree(server) if kind == "workspace" else mirror_tree(home)


# -- content ------------------------------------------------------------------------------------


def test_content_arrives_byte_for_byte(target_home) -> None:
    kind, home, server = target_home
    repo = make_repo(home)
    write_files(repo, CONTENT)
    commit_all(repo, home, "first")
    (repo / "untracked-but-not-ignored.txt").write_bytes(b"new file, not committed yet\n")

    record = sync_project(home, repo)

    assert record.result == "ok", record.error
    assert record.target == kind
    tree = target_tree(kind, home, server)
    assert tree == expected_tree(repo, home)
    for rel, data in CONTENT.items():
        if rel not in IGNORED:
            assert tree[rel] == data, rel
    assert tree["empty.txt"] == b""
    assert not IGNORED & tree.keys()
    assert not any(p == ".git" or p.startswith(".git/") for p in tree)
    assert record.uploaded == len(tree) and record.bytes == sum(map(len, tree.values()))
    if kind == "workspace":
        assert not any("/.git" in d for d in server.directories)
        # RAW import: a notebook-looking .py and an .ipynb stay files with their names.
        info = server.get_status(f"/Workspace/Users/{OWNER}/projects/demo/src/notebook_like.py")
        assert info["object_type"] == "FILE"
        assert record.url == f"{server.url}/#workspace/Workspace/Users/{OWNER}/projects/demo"


def test_deleted_and_renamed_files_are_reflected(target_home) -> None:
    kind, home, server = target_home
    repo = make_repo(home)
    write_files(repo, CONTENT)
    write_files(repo, {"old/dir/only.txt": b"folder goes away\n", "rename-me.txt": b"moving\n"})
    commit_all(repo, home, "first")
    assert sync_project(home, repo).result == "ok"

    git_mv = ["mv", "rename-me.txt", "src/renamed.txt"]
    from tests.gitrepos import git

    git(repo, home, *git_mv)
    git(repo, home, "rm", "-q", "-r", "old", "README.md")
    (repo / "data" / "all-bytes.bin").write_bytes(b"changed")
    commit_all(repo, home, "second")
    record = sync_project(home, repo)

    assert record.result == "ok", record.error
    assert (record.uploaded, record.deleted) == (2, 3)
    tree = target_tree(kind, home, server)
    assert tree == expected_tree(repo, home)
    assert "rename-me.txt" not in tree and tree["src/renamed.txt"] == b"moving\n"
    # The emptied folder is pruned too, so the remote looks like the local tree.
    if kind == "workspace":
        assert f"/Users/{OWNER}/projects/demo/old" not in server.directories
    else:
        assert not (mirror_root(home) / "old").exists()


def test_file_becomes_folder_and_back(target_home) -> None:
    kind, home, server = target_home
    repo = make_repo(home)
    write_files(repo, {"thing": b"a file\n", "keep.txt": b"k"})
    commit_all(repo, home, "file")
    assert sync_project(home, repo).result == "ok"
    (repo / "thing").unlink()
    write_files(repo, {"thing/inside.txt": b"now a folder\n"})
    commit_all(repo, home, "folder")
    assert sync_project(home, repo).result == "ok"
    assert target_tree(kind, home, server) == expected_tree(repo, home)
    (repo / "thing" / "inside.txt").unlink()
    (repo / "thing").rmdir()
    write_files(repo, {"thing": b"a file again\n"})
    commit_all(repo, home, "file again")
    record = sync_project(home, repo)
    assert record.result == "ok", record.error
    assert target_tree(kind, home, server) == expected_tree(repo, home)


def test_oversized_file_is_skipped_and_logged(target_home) -> None:
    kind, home, server = target_home
    write_options(home, max_file_bytes=1024)
    repo = make_repo(home)
    write_files(repo, {"small.txt": b"s" * 1024, "big.bin": b"b" * 1025})
    commit_all(repo, home, "first")

    record = sync_project(home, repo)

    assert record.result == "ok"
    assert record.skipped == 1 and record.skipped_files[0]["path"] == "big.bin"
    assert "limit" in record.skipped_files[0]["reason"]
    assert set(target_tree(kind, home, server)) == {"small.txt"}
    log = homefiles.sync_text_log_path(home).read_text()
    assert "skipped big.bin" in log and "1 skipped" in log
    # A file that grows past the cap is removed remotely: the mirror never shows stale content.
    (repo / "small.txt").write_bytes(b"s" * 2000)
    record = sync_project(home, repo)
    assert record.deleted == 1 and record.skipped == 2
    assert target_tree(kind, home, server) == {}


def test_default_cap_is_10_mib_and_configurable(home: Path) -> None:
    homefiles.sync_options_path(home).unlink()
    assert load_options(home).max_file_bytes == 10 * MiB
    write_options(home, max_file_bytes=5, workers=3, import_format="nonsense")
    opts = load_options(home)
    assert (opts.max_file_bytes, opts.workers, opts.import_format) == (5, 3, "RAW")
    repo = make_repo(home)
    write_files(repo, {"huge.bin": b"\0" * (10 * MiB + 1), "ok.bin": b"\0" * (10 * MiB)})
    snap = snapshot(repo, SyncOptions().max_file_bytes)
    assert set(snap.files) == {"ok.bin"} and [s.path for s in snap.skipped] == ["huge.bin"]


def test_symlinks_are_not_followed(home: Path) -> None:
    write_credentials(home, None, None)
    secret = home / "secret.txt"
    secret.write_text("dapi-secret\n")
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    (repo / "cfg").symlink_to(secret)
    commit_all(repo, home, "link")
    record = sync_project(home, repo)
    assert record.result == "ok"
    assert mirror_tree(home) == {"a.txt": b"a"}
    assert all(b"dapi-secret" not in p.read_bytes() for p in homefiles.workspace_mirror_dir(home).rglob("*") if p.is_file())
    assert {"path": "cfg", "reason": "symbolic link (not uploaded)"} in record.skipped_files


# -- incremental ----------------------------------------------------------------------------------


def test_incremental_sync_sends_only_the_changed_file(ws_home: Path, fw: FakeWorkspace) -> None:
    repo = make_repo(ws_home)
    write_files(repo, {f"pkg{i % 20}/file{i}.txt": f"content {i}\n".encode() for i in range(1000)})
    commit_all(repo, ws_home, "1000 files")
    first = sync_project(ws_home, repo)
    assert first.result == "ok" and first.uploaded == 1000
    fw.clear_requests()

    (repo / "pkg7" / "file7.txt").write_bytes(b"changed\n")
    commit_all(repo, ws_home, "one change")
    second = sync_project(ws_home, repo)

    assert second.result == "ok" and (second.uploaded, second.deleted) == (1, 0)
    imports = import_requests(fw, "projects/demo/")
    assert len(imports) == 1 and b"pkg7/file7.txt" in imports[0].body
    # Besides the file: one incremental bundle and history.json, nothing else (no mkdirs, deletes, listing).
    history = import_requests(fw, ".coda/history/demo/")
    assert len(history) == 2 and second.history and second.history.startswith("bundle 2 ")
    api_calls = [r for r in fw.requests if r.path.startswith("/api/")]
    assert api_calls == import_requests(fw)
    assert remote_tree(fw) == expected_tree(repo, ws_home)

    fw.clear_requests()
    assert sync_project(ws_home, repo).uploaded == 0
    assert fw.requests == []  # nothing changed: not even a connection


# -- failures and recovery ------------------------------------------------------------------------

FAULT_WORDS = {
    "down": "Could not reach",
    "429": "limiting how fast",
    "5xx": "server error",
}


@pytest.mark.parametrize("mode", ["down", "429", "5xx"])
def test_failure_is_recorded_and_next_sync_completes(ws_home: Path, fw: FakeWorkspace, mode: str) -> None:
    repo = make_repo(ws_home)
    write_files(repo, CONTENT)
    commit_all(repo, ws_home, "first")
    assert sync_project(ws_home, repo).result == "ok"
    before = load_manifest(ws_home, "demo", f"workspace:{fw.url}/Workspace/Users/{OWNER}/projects/demo").files

    from tests.gitrepos import git

    (repo / "docs").mkdir(exist_ok=True)
    git(repo, ws_home, "mv", "README.md", "docs/README.md")
    git(repo, ws_home, "rm", "-q", "empty.txt")
    write_files(repo, {"new/file.txt": b"new\n", "data/all-bytes.bin": b"changed bytes"})
    commit_all(repo, ws_home, "second")

    fw.set_fault(mode)
    started = time.monotonic()
    failed = sync_project(ws_home, repo)
    elapsed = time.monotonic() - started

    assert failed.result == "error"
    assert FAULT_WORDS[mode] in failed.error
    assert "Sync now" in failed.error  # says what to do
    assert failed.pending > 0
    assert elapsed < 30, f"a dead workspace must fail in bounded time, took {elapsed:.1f} s"
    stored = records(ws_home)[-1]
    assert stored["result"] == "error" and stored["error"] == failed.error
    assert "FAILED" in homefiles.sync_text_log_path(ws_home).read_text()
    # Nothing unconfirmed was recorded as uploaded.
    after = load_manifest(ws_home, "demo", f"workspace:{fw.url}/Workspace/Users/{OWNER}/projects/demo").files
    for rel, entry in after.items():
        assert before.get(rel) == entry or remote_tree(fw).get(rel) is not None

    fw.clear_faults()
    recovered = sync_project(ws_home, repo)

    assert recovered.result == "ok", recovered.error
    assert remote_tree(fw) == expected_tree(repo, ws_home)


def test_stopped_server_fails_fast_then_recovers(ws_home: Path, fw: FakeWorkspace) -> None:
    repo = make_repo(ws_home)
    write_files(repo, {"a.txt": b"a", "b/c.txt": b"c"})
    commit_all(repo, ws_home, "first")
    fw.stop()  # connection refused
    started = time.monotonic()
    failed = sync_project(ws_home, repo)
    assert failed.result == "error" and "Could not reach" in failed.error
    assert time.monotonic() - started < 30
    fw.start()  # same port
    assert sync_project(ws_home, repo).result == "ok"
    assert remote_tree(fw) == expected_tree(repo, ws_home)


@pytest.mark.parametrize("mode", ["429", "5xx"])
def test_short_outages_are_retried_within_one_sync(ws_home: Path, fw: FakeWorkspace, mode: str) -> None:
    repo = make_repo(ws_home)
    write_files(repo, {f"f{i}.txt": b"x" for i in range(5)})
    commit_all(repo, ws_home, "first")
    fw.set_fault(mode, count=3, paths=["/api/2.0/workspace/import"])
    record = sync_project(ws_home, repo)
    assert record.result == "ok", record.error
    assert len(fw.fault_hits) == 3
    assert remote_tree(fw) == expected_tree(repo, ws_home)


def test_refused_token_says_to_set_a_new_one(ws_home: Path, fw: FakeWorkspace) -> None:
    repo = make_repo(ws_home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, ws_home, "first")
    other = make_repo(ws_home, "other")
    write_files(other, {"o.txt": b"o"})
    commit_all(other, ws_home, "other")
    token = homefiles.read_databrickscfg(ws_home).token
    assert token and sync_project(ws_home, other).result == "ok"
    assert refused_token(ws_home) is None  # the latest sync got through with the token

    fw.revoke_token(token)
    record = sync_project(ws_home, repo)
    assert record.result == "error"
    assert "refused the token" in record.error and "sidebar" in record.error
    # Machine-readable for the app: the cause, and which token (by fingerprint only).
    assert record.error_kind == Cause.TOKEN_REJECTED
    assert record.token_hash == homefiles.token_fingerprint(token)
    assert refused_token(ws_home) == homefiles.token_fingerprint(token)
    assert "dapi" not in json.dumps(records(ws_home))  # never a token in the logs

    # A sync with nothing to send never presents the token: it cannot vouch for it.
    quiet = sync_project(ws_home, other)
    assert quiet.result == "ok" and quiet.token_hash is None
    assert refused_token(ws_home) == homefiles.token_fingerprint(token)

    # A new token that works: the refusal is history.
    write_credentials(ws_home, fw, fw.create_token(user=OWNER))
    assert sync_project(ws_home, repo).result == "ok"
    assert refused_token(ws_home) is None


class FlakyTarget(LocalFolderTarget):
    """A local target that refuses some paths, to see per-file failures."""

    def __init__(self, home: Path, refuse: set[str]) -> None:
        super().__init__(Location.local(home, OWNER, "demo"))
        self.refuse = refuse
        self.uploads: list[str] = []

    def upload(self, rel_path: str, data: bytes) -> None:
        if rel_path in self.refuse:
            from databricks.sdk.errors import BadRequest

            raise BadRequest(f"cannot store {rel_path}")
        self.uploads.append(rel_path)
        super().upload(rel_path, data)


def test_manifest_records_only_confirmed_uploads(home: Path) -> None:
    write_credentials(home, None, None)
    repo = make_repo(home)
    write_files(repo, {f"f{i}.txt": f"{i}".encode() for i in range(10)})
    commit_all(repo, home, "first")

    flaky = FlakyTarget(home, refuse={"f3.txt", "f7.txt"})
    record = sync_project(home, repo, target=flaky)

    assert record.result == "error" and record.uploaded == 8 and record.failed == 2
    assert "2 files could not be synced" in record.error
    manifest = load_manifest(home, "demo", flaky.location.identity)
    assert set(manifest.files) == {f"f{i}.txt" for i in range(10)} - {"f3.txt", "f7.txt"}

    healed = FlakyTarget(home, refuse=set())
    record = sync_project(home, repo, target=healed)
    assert record.result == "ok" and sorted(healed.uploads) == ["f3.txt", "f7.txt"]
    assert mirror_tree(home) == expected_tree(repo, home)


def test_concurrent_syncs_never_interleave_and_last_state_wins(ws_home: Path, fw: FakeWorkspace) -> None:
    repo = make_repo(ws_home)
    write_files(repo, {f"f{i}.txt": b"one" for i in range(200)})
    commit_all(repo, ws_home, "one")
    fw.set_fault("slow", delay_s=0.01)
    results = []
    first = threading.Thread(target=lambda: results.append(sync_project(ws_home, repo)))
    first.start()
    time.sleep(0.2)  # let the first take the lock and snapshot "one"
    write_files(repo, {f"f{i}.txt": b"two" for i in range(200)})
    (repo / "f0.txt").unlink()
    commit_all(repo, ws_home, "two")
    second = sync_project(ws_home, repo)
    first.join(60)
    fw.clear_faults()
    assert [r.result for r in results] == ["ok"] and second.result == "ok"
    assert remote_tree(fw) == expected_tree(repo, ws_home)
    # The runs were serialized: the second started after the first ended.
    lines = homefiles.sync_text_log_path(ws_home).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if "sync started" in line]
    ends = [i for i, line in enumerate(lines) if " synced:" in line]
    assert starts[0] < ends[0] < starts[1] < ends[1]


# -- which repositories count, and the read helpers ----------------------------------------------


def test_project_rules_resolve_symlinks(home: Path, tmp_path: Path) -> None:
    real = tmp_path / "real-projects"
    real.mkdir()
    (real / "demo").mkdir()
    paths.projects_dir(home).rmdir()
    paths.projects_dir(home).symlink_to(real)
    assert paths.project_for(home, real / "demo") == "demo"
    assert paths.project_for(home, paths.projects_dir(home) / "demo") == "demo"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (real / "sneaky").symlink_to(outside)
    assert paths.project_for(home, real / "sneaky") is None
    assert paths.project_for(home, outside) is None
    assert paths.project_for(home, paths.projects_dir(home)) is None
    (real / "group" / "repo").mkdir(parents=True)
    assert paths.project_for(home, real / "group" / "repo") == "group/repo"


def test_repo_outside_projects_is_skipped(home: Path) -> None:
    repo = make_repo(home, "elsewhere", parent=home / "other")
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "x")
    record = sync_project(home, repo)
    assert record.result == "skipped" and "not under" in record.error
    assert "skipped" in homefiles.sync_text_log_path(home).read_text()
    assert not homefiles.workspace_mirror_dir(home).exists()


def test_plan_creates_only_missing_leaf_folders() -> None:
    from lib.sync.gitfiles import LocalFile, Snapshot

    files = {p: LocalFile(p, 1, "h") for p in ["a/b/c.txt", "a/b/d.txt", "a/e.txt", "top.txt", "x/y/z/w.txt"]}
    plan = make_plan(Snapshot(files, []), Manifest("t"))
    assert plan.mkdirs == ["a/b", "x/y/z"]
    known = Manifest("t", {"a/b/c.txt": {"sha256": "h", "size": 1}, "gone/deep/f.txt": {"sha256": "h", "size": 1}})
    plan = make_plan(Snapshot(files, []), known)
    assert plan.mkdirs == ["x/y/z"]
    assert plan.deletes == ["gone/deep/f.txt"]
    assert plan.stale_dirs == ["gone/deep", "gone"]
    assert [f.path for f in plan.uploads] == ["a/b/d.txt", "a/e.txt", "top.txt", "x/y/z/w.txt"]
    assert make_plan(Snapshot({}, []), Manifest("t")).mkdirs == [""]  # an empty project still gets its folder


def test_status_helpers_and_sync_now(ws_home: Path, fw: FakeWorkspace) -> None:
    repo = make_repo(ws_home)
    write_files(repo, {"a.txt": b"a"})
    sha = commit_all(repo, ws_home, "the subject line")
    make_repo(ws_home, "never-synced")

    record = sync_now(ws_home, "demo")
    assert record.result == "ok" and record.trigger == "manual" and record.commit == sha
    assert sync_now(ws_home, "no-such-project").result == "error"

    rows = {row.project: row for row in status_rows(ws_home)}
    assert set(rows) == {"demo", "never-synced"}
    demo = rows["demo"]
    remote = f"/Workspace/Users/{OWNER}/projects/demo"
    assert demo.last is not None
    assert (demo.last.result, demo.last.commit, demo.last.commit_message, demo.last.uploaded) == (
        SyncResult.OK, sha, "the subject line", 1)
    assert demo.location.root == remote and demo.location.url == f"{fw.url}/#workspace{remote}"
    assert demo.last_ok_time == demo.last.time and demo.problem is None
    assert rows["never-synced"].last is None
    assert rows["never-synced"].location.url == f"{fw.url}/#workspace/Workspace/Users/{OWNER}/projects/never-synced"

    recent = recent_records(ws_home, 10)
    assert recent[0].result == SyncResult.ERROR and "no-such-project" in (recent[0].error or "")
    assert recent[1].commit == sha
    assert len(recent_records(ws_home, 1)) == 1


def test_local_target_without_owner_uses_local_user(home: Path) -> None:
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "x")
    record = sync_project(home, repo)
    assert record.target == "local"
    assert record.remote_path == str(home / ".coda/workspace-mirror/Users/local/projects/demo")
    assert mirror_tree(home, owner=None) == {"a.txt": b"a"}
    row = status_rows(home)[0]
    assert row.location.url.startswith("file://") and row.location.kind == TargetKind.LOCAL


def test_switching_target_starts_a_fresh_manifest(home: Path, fw: FakeWorkspace) -> None:
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "x")
    write_credentials(home, None, None)
    assert sync_project(home, repo).target == "local"
    write_credentials(home, fw, fw.create_token(user=OWNER))
    record = sync_project(home, repo)
    assert (record.target, record.uploaded) == ("workspace", 1)
    assert remote_tree(fw) == {"a.txt": b"a"}


def test_workspace_target_url_and_identity(fw: FakeWorkspace) -> None:
    target = WorkspaceTarget(Location.workspace(fw.url + "/", OWNER, "demo"), "dapi-x", SyncOptions())
    assert target.location.root == f"/Workspace/Users/{OWNER}/projects/demo"
    assert target.location.url == f"{fw.url}/#workspace/Workspace/Users/{OWNER}/projects/demo"
    assert target.location.host == fw.url
    assert target.location.identity == f"workspace:{fw.url}/Workspace/Users/{OWNER}/projects/demo"
    assert target.token_hash is None  # nothing presented yet
    assert fw.requests == []  # no client (and no request) until the first operation


@pytest.mark.parametrize("seed", [1, 2])
def test_random_edits_keep_the_target_equal(target_home, seed: int) -> None:
    """Many rounds of random adds, edits, deletes, renames and file<->folder swaps."""
    import random
    import shutil

    kind, home, server = target_home
    rng = random.Random(seed)
    repo = make_repo(home)
    write_files(repo, {f"d{i % 4}/s{i % 3}/f{i}.txt": f"{i}".encode() for i in range(40)})
    for round_no in range(6):
        files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
        for _ in range(8):
            op = rng.choice(["add", "edit", "delete", "rename", "rmdir", "swap"])
            if op == "add":
                write_files(repo, {f"d{rng.randrange(6)}/n{rng.randrange(3)}/r{round_no}-{rng.randrange(99)}.bin":
                                   rng.randbytes(rng.randrange(0, 300))})
            elif files and op == "edit":
                (repo / rng.choice(files)).write_bytes(rng.randbytes(50))
            elif files and op == "delete":
                (repo / rng.choice(files)).unlink(missing_ok=True)
            elif files and op == "rename":
                src = repo / rng.choice(files)
                if src.exists():
                    dest = repo / f"moved{rng.randrange(3)}" / src.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    src.rename(dest)
            elif op == "rmdir":
                victim = repo / f"d{rng.randrange(6)}"
                shutil.rmtree(victim, ignore_errors=True)
            elif files and op == "swap":
                path = repo / rng.choice(files)
                if path.exists():
                    path.unlink()
                    write_files(repo, {path.relative_to(repo).as_posix() + "/inner.txt": b"was a file"})
            files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")
                           if p.is_file() and ".git" not in p.parts)
        commit_all(repo, home, f"round {round_no}")
        record = sync_project(home, repo)
        assert record.result == "ok", record.error
        assert target_tree(kind, home, server) == expected_tree(repo, home), f"round {round_no}"
    if kind == "local":
        # No folder is left behind that the project does not have.
        local_dirs = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_dir() and ".git" not in p.parts}
        mirror_dirs = {p.relative_to(mirror_root(home)).as_posix() for p in mirror_root(home).rglob("*") if p.is_dir()}
        assert mirror_dirs <= local_dirs
