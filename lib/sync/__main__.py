"""``python -m lib.sync``: the git hook's entry point, plus a manual CLI.

``hook --home H <repo>`` returns at once: it double-forks into a new session
(so an agent killing the committing process group cannot take the sync down),
points its standard streams away from git's pipes (so nobody waits on them)
and only then imports the engine and syncs. ``run`` does the same in the
foreground; ``now <project>`` syncs ``~/projects/<project>``; ``restore``
does what the boot step does (``lib.sync.restore``), printing its progress.

Only the standard library (and ``lib.environment``/``lib.homefiles``, which
are stdlib-only) is imported before the fork: importing databricks-sdk takes
seconds, and a commit must not wait for that.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from lib.environment import DATABRICKS, GIT, scrubbed
from lib.homefiles import sync_text_log_path


def _detach() -> bool:
    """Double fork + setsid. True in the detached grandchild; the caller's process just returns False."""
    pid = os.fork()
    if pid > 0:
        os.waitpid(pid, 0)  # the middle child exits as soon as the grandchild exists
        return False
    try:
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
    except OSError:
        os._exit(1)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, 1024)  # git's pipes, the terminal: nothing may keep them open
    return True


def _clean_environment() -> None:
    # Credentials come from the files the app keeps current, never from whatever
    # the committing shell happened to export; git's own variables would point
    # later git calls at the commit's index. In place: the SDK and git both
    # read os.environ.
    for key in os.environ.keys() - scrubbed(os.environ, GIT + DATABRICKS).keys():
        del os.environ[key]


def _sync(home: Path, repo: Path) -> int:
    _clean_environment()
    from lib.sync.records import log_line  # standard library only: logs before the slow import

    log_line(home, f"[{repo.name}] commit seen, sync starting")
    from lib.sync.engine import sync_project
    from lib.sync.records import SyncResult

    record = sync_project(home, repo)
    return 0 if record.result != SyncResult.ERROR else 1


def _log_crash(home: Path) -> None:
    import time
    import traceback

    last = traceback.format_exc().strip().splitlines()[-1:]
    try:
        with open(sync_text_log_path(home), "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} sync crashed: {' '.join(last)}\n")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.sync", description="Sync a project to the workspace.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("hook", "run"):
        p = sub.add_parser(name, help="sync the repository at REPO" + (" in the background" if name == "hook" else ""))
        p.add_argument("--home", type=Path, default=None)
        p.add_argument("repo", type=Path)
    now = sub.add_parser("now", help="sync ~/projects/PROJECT in the foreground")
    now.add_argument("--home", type=Path, default=None)
    now.add_argument("project")
    restore = sub.add_parser("restore", help="bring back the projects the workspace has and ~/projects lacks")
    restore.add_argument("--home", type=Path, default=None)
    args = parser.parse_args(argv)
    home = (args.home or Path.home()).absolute()
    if args.cmd == "restore":
        _clean_environment()
        from lib.sync.restore import restore_all

        report = restore_all(home, progress=lambda text: print(text, flush=True))
        print(report.summary())
        return 1 if report.failed else 0

    if args.cmd == "hook":
        repo = args.repo.absolute()
        if not _detach():
            return 0
        try:
            code = _sync(home, repo)
        except BaseException:  # noqa: BLE001 - nobody is listening but the log
            _log_crash(home)
            code = 1
        os._exit(code)
    if args.cmd == "run":
        return _sync(home, args.repo.absolute())
    _clean_environment()
    from lib.sync.engine import sync_now
    from lib.sync.records import SyncResult

    record = sync_now(home, args.project)
    print(record.error or f"{record.result}: {record.uploaded} uploaded, {record.deleted} deleted")
    return 0 if record.result == SyncResult.OK else 1


if __name__ == "__main__":
    sys.exit(main())
