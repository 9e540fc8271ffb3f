"""Benchmark: restore a 1,000-file, 200-commit project from the workspace; incremental history upload.

Runs the real engine, real git and the real databricks-sdk against the fake
workspace (tests/fakeworkspace) on 127.0.0.1:

1. builds a project of ``--files`` files and ``--commits`` commits (a few files
   changed per commit, on two branches), synced after every ``--sync-every``
   commits as the hook would, so the history in the workspace is the chain of
   incremental bundles a real project has (compacted past 32);
2. deletes HOME, then times ``restore_all`` (what the boot step runs) and
   checks the result: ``git log --all``, branches, HEAD and the working tree
   identical. Prints the time (goal < 30 s) and the bytes moved;
3. makes one more commit and syncs: the history upload's bytes next to the size
   of a full bundle of the same repository.

    .venv/bin/python bench/bench_restore.py [--files 1000] [--commits 200] [--sync-every 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OWNER = "bench.user@example.com"
GOAL_S = 30.0


def _git(repo: Path, home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DATABRICKS_"))}
    env["HOME"] = str(home)
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def _new_home(home: Path, url: str, token: str) -> None:
    (home / "projects").mkdir(parents=True)
    (home / ".coda").mkdir(exist_ok=True)
    (home / ".coda" / "identity.json").write_text(json.dumps({"owner": OWNER}))
    (home / ".databrickscfg").write_text(f"[DEFAULT]\nhost = {url}\ntoken = {token}\n")
    _git(home, home, "config", "--global", "user.name", "bench")
    _git(home, home, "config", "--global", "user.email", "bench@example.com")


def _facts(repo: Path, home: Path) -> dict[str, str]:
    return {
        "log": _git(repo, home, "log", "--all", "--format=%H"),
        "branches": _git(repo, home, "for-each-ref", "--format=%(objectname) %(refname)"),
        "head": _git(repo, home, "rev-parse", "--symbolic-full-name", "HEAD"),
        "tree": _git(repo, home, "ls-files", "-s"),
        "status": _git(repo, home, "status", "--porcelain"),
    }


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--sync-every", type=int, default=1, help="sync after every N commits (1 = like the hook)")
    args = parser.parse_args()

    import databricks.sdk  # noqa: F401 - pay the SDK import before timing

    from lib.sync.engine import sync_project
    from lib.sync.restore import restore_all
    from tests.fakeworkspace import FakeWorkspace

    fw = FakeWorkspace(owner_email=OWNER).start()
    token = fw.create_token(user=OWNER)
    tmp = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    home = tmp / "home"
    try:
        _new_home(home, fw.url, token)
        repo = home / "projects" / "bench"
        repo.mkdir()
        _git(repo, home, "init", "-q", "-b", "main")
        for i in range(args.files):
            path = repo / f"pkg{i % 25}" / f"sub{i % 5}" / f"file{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# file {i}\n" + "".join(f"value_{j} = {i * j}\n" for j in range(30)))
        built = time.perf_counter()
        syncs = 0
        sync_s = 0.0
        for c in range(args.commits):
            if c == args.commits // 2:
                _git(repo, home, "checkout", "-q", "-b", "feature")
            if c == args.commits * 3 // 4:
                _git(repo, home, "checkout", "-q", "main")
            on_feature = args.commits // 2 <= c < args.commits * 3 // 4
            for k in range(5 if c else 0):
                if on_feature:  # new files only: the merge at the end has no conflicts
                    path = repo / "feature" / f"change_{c}_{k}.py"
                    path.parent.mkdir(exist_ok=True)
                    path.write_text(f"change_{c}_{k} = {c * k}\n")
                    continue
                n = (c * 7 + k * 131) % args.files
                path = repo / f"pkg{n % 25}" / f"sub{n % 5}" / f"file{n}.py"
                with open(path, "a") as f:
                    f.write(f"change_{c}_{k} = {c * k}\n")
            _git(repo, home, "add", "-A")
            _git(repo, home, "commit", "-qm", f"commit {c}")
            if (c + 1) % args.sync_every == 0 or c == args.commits - 1:
                t0 = time.perf_counter()
                record = sync_project(home, repo)
                sync_s += time.perf_counter() - t0
                syncs += 1
                assert record.result == "ok", record.error
        _git(repo, home, "merge", "-q", "--no-edit", "feature")
        record = sync_project(home, repo)
        assert record.result == "ok", record.error
        state = json.loads(fw.read_file(f"/Users/{OWNER}/.coda/history/bench/history.json"))
        print(f"project: {args.files} files, {args.commits + 1} commits (2 branches + a merge), "
              f"{syncs + 1} syncs in {sync_s:.1f} s (built in {time.perf_counter() - built:.1f} s)")
        print(f"history in the workspace: {len(state['bundles'])} bundles, "
              f"{_kb(sum(b['bytes'] for b in state['bundles']))}")
        before = _facts(repo, home)

        shutil.rmtree(home)
        _new_home(home, fw.url, token)
        fw.clear_requests()
        t0 = time.perf_counter()
        report = restore_all(home)
        restore_s = time.perf_counter() - t0
        requests = len(fw.requests)
        assert [p.outcome for p in report.projects] == ["restored"], report.summary()
        after = _facts(repo, home)
        same = after == before
        print(f"restore:          {restore_s:8.2f} s  (goal < {GOAL_S:.0f} s) -> "
              f"{'OK' if restore_s < GOAL_S else 'MISSED'}; {_kb(report.bytes)} downloaded in {requests} requests; "
              f"git log --all, refs, HEAD, tree identical: {same}")

        # One more commit: the history upload is the size of that commit, not of the repository.
        path = repo / "pkg3" / "sub3" / "file503.py"
        path.write_text(path.read_text() + "one_more = 1\n")
        _git(repo, home, "commit", "-qam", "one more")
        fw.clear_requests()
        t0 = time.perf_counter()
        inc = sync_project(home, repo)
        inc_s = time.perf_counter() - t0
        assert inc.result == "ok" and inc.uploaded == 1, (inc.error, inc.uploaded)
        full = tmp / "full.bundle"
        _git(repo, home, "bundle", "create", "-q", str(full), "--all")
        full_bytes = full.stat().st_size
        print(f"one more commit:  {inc_s:8.3f} s; history upload {inc.history_bytes:,} B "
              f"({inc.history}) vs full bundle {full_bytes:,} B = {inc.history_bytes / full_bytes * 100:.2f} %; "
              f"{len(fw.requests)} requests, {inc.uploaded} file uploaded")
        return 0 if same and restore_s < GOAL_S else 1
    finally:
        fw.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
