"""Benchmark: full vs one-file incremental sync of a 1,000-file project.

Runs the real engine and the real databricks-sdk against the fake workspace
(tests/fakeworkspace) on 127.0.0.1 and prints both times and their ratio
(target: incremental < 5 % of full). With ``--hook`` it also times a real
``git commit`` until its detached hook sync is recorded, which adds starting
Python and importing databricks-sdk.

    /work/venv/bin/python bench/bench_sync.py [--files 1000] [--hook]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OWNER = "bench.user@example.com"


def _git(repo: Path, home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DATABRICKS_"))}
    env["HOME"] = str(home)
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--hook", action="store_true", help="also time commit -> hook sync recorded")
    args = parser.parse_args()

    import databricks.sdk  # noqa: F401

    from lib import homefiles
    from lib.sync import install_hook, paths
    from lib.sync.engine import sync_project
    from lib.sync.targets import WorkspaceTarget  # noqa: F401 - pay the SDK import before timing
    from tests.fakeworkspace import FakeWorkspace

    fw = FakeWorkspace(owner_email=OWNER).start()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        home = Path(tmp)
        repo = paths.projects_dir(home) / "bench"
        repo.mkdir(parents=True)
        (home / ".coda").mkdir(exist_ok=True)
        (home / ".coda" / "identity.json").write_text(json.dumps({"owner": OWNER}))
        (home / ".databrickscfg").write_text(f"[DEFAULT]\nhost = {fw.url}\ntoken = {fw.create_token(user=OWNER)}\n")
        _git(home, home, "config", "--global", "user.name", "bench")
        _git(home, home, "config", "--global", "user.email", "bench@example.com")
        _git(repo, home, "init", "-q")
        for i in range(args.files):
            path = repo / f"pkg{i % 25}" / f"sub{i % 5}" / f"file{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((f"line {i}\n" * 40).encode())
        _git(repo, home, "add", "-A")
        _git(repo, home, "commit", "-qm", "files")

        def imports() -> int:
            return sum(1 for r in fw.requests if r.path == "/api/2.0/workspace/import")

        fw.clear_requests()
        t0 = time.perf_counter()
        full = sync_project(home, repo)
        full_s = time.perf_counter() - t0
        full_imports = imports()
        assert full.result == "ok", full.error

        (repo / "pkg3" / "sub3" / "file503.txt").write_bytes(b"changed\n")
        _git(repo, home, "commit", "-qam", "one file")
        fw.clear_requests()
        t0 = time.perf_counter()
        inc = sync_project(home, repo)
        inc_s = time.perf_counter() - t0
        inc_imports = imports()
        assert inc.result == "ok" and inc.uploaded == 1, inc.error

        ratio = inc_s / full_s
        print(f"files: {args.files}")
        print(f"full sync:        {full_s:8.3f} s  ({full.uploaded} uploaded, {full_imports} import requests, "
              f"{full.bytes / 1024:.0f} KB)")
        print(f"incremental sync: {inc_s:8.3f} s  ({inc.uploaded} uploaded, {inc_imports} import requests)")
        print(f"ratio:            {ratio * 100:8.2f} %  (target < 5 %) -> {'OK' if ratio < 0.05 else 'MISSED'}")

        if args.hook:
            install_hook(home)
            (repo / "pkg4" / "sub4" / "file4.txt").write_bytes(b"changed by a commit\n")
            t0 = time.perf_counter()
            _git(repo, home, "commit", "-qam", "through the hook")
            commit_s = time.perf_counter() - t0
            sha = _git(repo, home, "rev-parse", "HEAD").strip()
            log = homefiles.sync_records_path(home)
            while True:
                lines = log.read_text().splitlines() if log.exists() else []
                if any(json.loads(line).get("commit") == sha for line in lines):
                    break
                if time.perf_counter() - t0 > 120:
                    print("hook sync did not finish within 120 s")
                    return 1
                time.sleep(0.02)
            print(f"git commit (hook returns): {commit_s:6.3f} s; commit -> synced via hook: "
                  f"{time.perf_counter() - t0:6.3f} s (includes starting Python + importing databricks-sdk)")
    fw.stop()
    return 0 if ratio < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
