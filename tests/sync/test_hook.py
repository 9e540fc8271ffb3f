"""The git hook end to end: real ``git commit`` with the global ``core.hooksPath``,
a detached ``python -m lib.sync`` and the fake workspace over HTTP.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

from lib import homefiles
from lib.sync import paths
from lib.sync.hook import CHAINED_HOOKS, SYNC_HOOKS, hooks_dir, install_hook, installed_hooks_path
from tests.fakeworkspace import FakeWorkspace
from tests.gitrepos import (
    CONTENT,
    HOOK_TIMEOUT_S,
    OWNER,
    commit_all,
    expected_tree,
    git,
    git_env,
    import_requests,
    make_repo,
    records,
    remote_tree,
    settle,
    wait_for,
    wait_record,
    write_credentials,
    write_files,
)


@pytest.fixture
def ws(hooked_home: Path, fw: FakeWorkspace) -> tuple[Path, FakeWorkspace]:
    write_credentials(hooked_home, fw, fw.create_token(user=OWNER))
    return hooked_home, fw


def synced(home: Path, sha: str, timeout: float = HOOK_TIMEOUT_S) -> dict:
    record = wait_record(home, lambda r: r.get("commit") == sha, timeout, f"the sync of {sha[:8]}")
    assert record["result"] == "ok", record.get("error")
    return record


def test_install_hook_sets_global_hooks_path_idempotently(home: Path) -> None:
    install_hook(home)
    install_hook(home)
    folder = hooks_dir(home)
    assert installed_hooks_path(home) == str(folder)
    assert "hooksPath" in (home / ".gitconfig").read_text()
    for name in (*CHAINED_HOOKS, *SYNC_HOOKS):
        assert os.access(folder / name, os.X_OK), name
    assert not set(CHAINED_HOOKS) & set(SYNC_HOOKS)
    script = (folder / "post-commit").read_text()
    root = Path(__file__).resolve().parents[2]
    assert f"PYTHONPATH={root}" in script and "-m lib.sync hook" in script
    assert not list(folder.glob(".*tmp*"))
    # Hooks an older version installed are removed; anything else is left alone.
    from lib.sync.hook import MARKER, chain_script

    (folder / "reference-transaction").write_text(chain_script("reference-transaction"))
    (folder / "my-notes.txt").write_text("mine")
    install_hook(home)
    assert MARKER in chain_script("x")
    assert not (folder / "reference-transaction").exists() and (folder / "my-notes.txt").exists()
    assert not (folder / "push-to-checkout").exists()


def test_repository_hooks_are_chained(hooked_home: Path) -> None:
    home = hooked_home
    repo = make_repo(home, "chained", parent=home / "elsewhere")  # outside ~/projects: no upload needed
    own = repo / ".git" / "hooks"
    own.mkdir(exist_ok=True)
    (own / "pre-commit").write_text("#!/bin/sh\n[ ! -e block ] || { echo blocked >&2; exit 1; }\n")
    (own / "commit-msg").write_text('#!/bin/sh\necho "Signed-off-by: chain" >> "$1"\n')
    (own / "post-commit").write_text("#!/bin/sh\ntouch post-commit-ran\n")
    for hook in own.iterdir():
        hook.chmod(0o755)

    write_files(repo, {"a.txt": b"a", "block": b""})
    git(repo, home, "add", "-A")
    blocked = subprocess.run(
        ["git", "commit", "-qm", "x"], cwd=repo, env=git_env(home), capture_output=True, text=True, timeout=60
    )
    assert blocked.returncode != 0 and "blocked" in blocked.stderr  # the repo's pre-commit ran

    (repo / "block").unlink()
    sha = commit_all(repo, home, "allowed")
    assert "Signed-off-by: chain" in git(repo, home, "log", "-1", "--format=%B")
    assert (repo / "post-commit-ran").exists()
    record = wait_record(home, lambda r: r.get("repo") == str(repo), what="the skip record")
    assert record["result"] == "skipped" and "not under" in record["error"]
    assert sha  # committed despite our hook being in the way


def test_commit_uploads_project_to_workspace(ws) -> None:
    home, fw = ws
    repo = make_repo(home)
    write_files(repo, CONTENT)
    sha = commit_all(repo, home, "first commit")

    record = synced(home, sha)

    assert record["target"] == "workspace"
    assert record["remote_path"] == f"/Workspace/Users/{OWNER}/projects/demo"
    assert remote_tree(fw) == expected_tree(repo, home)
    assert fw.read_file(f"/Workspace/Users/{OWNER}/projects/demo/data/all-bytes.bin") == CONTENT["data/all-bytes.bin"]
    assert "synced" in homefiles.sync_text_log_path(home).read_text()


def test_one_change_in_1000_files_uploads_one_file(ws) -> None:
    home, fw = ws
    repo = make_repo(home)
    write_files(repo, {f"dir{i % 25}/file{i}.txt": f"line {i}\n".encode() * 3 for i in range(1000)})
    first = synced(home, commit_all(repo, home, "1000 files"), timeout=300)
    assert first["uploaded"] == 1000
    settle(home)
    fw.clear_requests()

    (repo / "dir3" / "file503.txt").write_bytes(b"edited\n")
    second = synced(home, commit_all(repo, home, "edit one"))

    assert (second["uploaded"], second["deleted"]) == (1, 0)
    imports = import_requests(fw, "projects/demo/")
    assert len(imports) == 1 and b"dir3/file503.txt" in imports[0].body
    assert remote_tree(fw) == expected_tree(repo, home)


def _read_until(proc: PtyProcess, marker: bytes, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    seen = b""
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} from the terminal; got {seen[-500:]!r}")
        ready, _, _ = select.select([proc.fd], [], [], min(left, 0.5))
        if ready:
            try:
                seen += os.read(proc.fd, 65536)
            except OSError:
                break
    return seen


def test_commit_from_a_terminal_shell(ws) -> None:
    """An interactive shell on a PTY, closed right after the commit, as a browser terminal would be."""
    home, fw = ws
    repo = make_repo(home)
    write_files(repo, {"typed.txt": b"from the terminal\n"})
    shell = PtyProcess.spawn(["bash", "--norc", "--noprofile", "-i"], cwd=str(repo), env=git_env(home))
    try:
        shell.write(b"git add -A && git commit -qm 'from a pty' && echo DONE-$((40+2))\n")
        _read_until(shell, b"DONE-42")
    finally:
        shell.terminate(force=True)  # SIGHUP, then SIGKILL: the terminal goes away
    sha = git(repo, home, "rev-parse", "HEAD").strip()

    synced(home, sha)
    assert remote_tree(fw) == {"typed.txt": b"from the terminal\n"}


def test_sync_survives_killing_the_committing_process_group(ws) -> None:
    home, fw = ws
    repo = make_repo(home)
    write_files(repo, {f"f{i}.txt": os.urandom(2048) for i in range(50)})
    git(repo, home, "add", "-A")
    proc = subprocess.Popen(
        ["bash", "-c", "git commit -qm 'then killed' && echo COMMITTED && exec sleep 600"],
        cwd=repo,
        env=git_env(home),
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"COMMITTED"
        os.killpg(proc.pid, signal.SIGKILL)  # what some agents do when a command ends
    finally:
        proc.wait(10)
    sha = git(repo, home, "rev-parse", "HEAD").strip()
    # The sync cannot have finished yet (it is still importing), and it finishes anyway.
    assert not any(r.get("commit") == sha for r in records(home))

    synced(home, sha)
    assert remote_tree(fw) == expected_tree(repo, home)


def test_repository_outside_projects_is_skipped_with_a_log_line(ws) -> None:
    home, fw = ws
    repo = make_repo(home, "scratch", parent=home / "tmp-work")
    write_files(repo, {"a.txt": b"a"})
    commit_all(repo, home, "outside")

    record = wait_record(home, lambda r: r.get("repo") == str(repo.resolve()), what="the skip record")

    assert record["result"] == "skipped"
    assert "only projects there are synced" in record["error"]
    assert "skipped" in homefiles.sync_text_log_path(home).read_text()
    assert not [p for p in fw.files if "/projects/" in p]
    assert import_requests(fw) == []


def test_symlink_into_projects_from_outside_is_skipped(ws, tmp_path: Path) -> None:
    home, fw = ws
    real = make_repo(home, "real", parent=tmp_path / "outside")
    (paths.projects_dir(home) / "linked").symlink_to(real)
    write_files(real, {"a.txt": b"a"})
    git(paths.projects_dir(home) / "linked", home, "add", "-A")
    git(paths.projects_dir(home) / "linked", home, "commit", "-qm", "via link")
    record = wait_record(home, lambda r: r.get("result") == "skipped", what="the skip record")
    assert str(real.resolve()) in record["repo"]
    assert import_requests(fw) == []


def test_quick_successive_commits_end_with_the_last(ws) -> None:
    """Commits in a burst: runs never interleave, none fails, and the workspace ends at the last commit.

    Runs that find another sync already queued stop at once ("skipped"): the
    queued one has not looked at the files yet, so it includes their commits.
    """
    home, fw = ws
    repo = make_repo(home)
    write_files(repo, {f"f{i}.txt": b"first\n" for i in range(100)})
    commit_all(repo, home, "one")
    write_files(repo, {f"f{i}.txt": b"second\n" for i in range(100)})
    (repo / "f0.txt").unlink()
    write_files(repo, {"added.txt": b"only in the second\n"})
    commit_all(repo, home, "two")
    for n in range(3):
        write_files(repo, {"burst.txt": f"burst {n}\n".encode()})
        last = commit_all(repo, home, f"burst {n}")

    wait_for(lambda: len([r for r in records(home) if r.get("project") == "demo"]) >= 5, HOOK_TIMEOUT_S,
             "every hook run to finish", interval=0.1)
    settle(home)

    runs = [r for r in records(home) if r.get("project") == "demo"]
    assert len(runs) == 5 and {r["result"] for r in runs} <= {"ok", "skipped"}
    done = [r for r in runs if r["result"] == "ok"]
    assert done[-1]["commit"] == last
    tree = remote_tree(fw)
    assert tree == expected_tree(repo, home)
    assert tree["f1.txt"] == b"second\n" and "f0.txt" not in tree and tree["burst.txt"] == b"burst 2\n"
    lines = homefiles.sync_text_log_path(home).read_text().splitlines()
    events = [("start" if "sync started" in line else "end") for line in lines
              if "sync started" in line or " synced:" in line]
    assert events == ["start", "end"] * (len(events) // 2)  # never two runs at once


def test_local_mirror_via_hook_without_a_workspace(hooked_home: Path) -> None:
    home = hooked_home
    write_credentials(home, None, None)
    repo = make_repo(home)
    write_files(repo, CONTENT)
    sha = commit_all(repo, home, "no workspace")
    record = synced(home, sha)
    assert record["target"] == "local"
    from tests.gitrepos import mirror_tree

    assert mirror_tree(home) == expected_tree(repo, home)


def test_merge_commit_syncs_too(ws) -> None:
    """``git merge`` makes a commit without post-commit; post-merge syncs it."""
    home, fw = ws
    repo = make_repo(home)
    write_files(repo, {"main.txt": b"main\n"})
    synced(home, commit_all(repo, home, "base"))
    git(repo, home, "checkout", "-q", "-b", "feature")
    write_files(repo, {"feature.txt": b"feature\n"})
    synced(home, commit_all(repo, home, "feature work"))
    git(repo, home, "checkout", "-q", "main")
    settle(home)
    write_files(repo, {"main2.txt": b"more main\n"})
    git(repo, home, "add", "-A")
    git(repo, home, "commit", "-qm", "main work")  # its own sync runs now; the merge's comes next
    git(repo, home, "merge", "-q", "--no-edit", "feature")
    merge = git(repo, home, "rev-parse", "HEAD").strip()
    wait_record(home, lambda r: r.get("commit") == merge and r.get("result") == "ok", what="the merge's sync")
    settle(home)
    assert remote_tree(fw) == expected_tree(repo, home)
    assert "feature.txt" in remote_tree(fw) and "main2.txt" in remote_tree(fw)
