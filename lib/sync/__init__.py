"""Workspace sync: every commit in ``~/projects/<name>`` uploads that project to
``/Workspace/Users/<email>/projects/<name>`` (or to a local mirror folder when
no workspace is configured).

Modules, one job each:

- ``hook``: installs the global git hooks folder (``install_hook``)
- ``__main__``: the hook's entry point; detaches, then runs a sync
- ``engine``: ``sync_project`` / ``sync_now``: one run (lock, snapshot, files, history, record)
- ``plan``: what a run must delete, create and upload (pure: snapshot + manifest in, plan out)
- ``transfer``: carries a plan out against a target, in parallel, recording only what is confirmed
- ``backoff``: one target call retried with backoff while it fails transiently (``with_retries``)
- ``gitfiles``: which files a project has, and their hashes
- ``manifest``: what the target is known to hold
- ``githistory``: uploads the project's git history (incremental bundles + ``history.json``)
- ``historyplan``: the ``history.json`` format and which bundle to make next (pure)
- ``gitrepo``: git's side of the history: read a repository, bundle it, rebuild one from bundles
- ``targets``: ``locate`` (where a project goes), ``WorkspaceTarget`` (databricks-sdk), ``LocalFolderTarget``
- ``errors``: transient vs fatal, the cause (``Cause``), how it is retried, and messages a user can act on
- ``retry``: the on-disk retry queue (backoff 1 s doubling to 5 min; refused tokens wait for a new one)
- ``daemon``: the app's background driver: due retries, ``repowatch``, conversation backups
- ``repowatch``: commits in repositories whose own ``core.hooksPath`` hides our hook (husky)
- ``restore``: at boot, projects the workspace has and HOME does not (history, branches, HEAD, files)
- ``restore_project``: brings one of them back (bundles, rebuild, working tree, sync state) and moves it into place
- ``conversations``: the agents' conversation stores, backed up and restored (never a credential)
- ``lock``: one sync per project across processes
- ``records``: ``SyncRecord`` (the one record format), the JSONL history and ``~/.sync.log``
- ``status``: the read side for the page and the token store, derived from ``records`` and ``targets``
- ``watch``: a watchdog counter the page polls for changes
- ``credentials``, ``options``, ``paths``: small facts (the files shared with the app are in ``lib.homefiles``)

Code outside this package (the sync page, the token store) imports from here,
never from the modules. Names are exported lazily: the git hook runs
``python -m lib.sync`` on every commit, and must detach before paying for
importing databricks-sdk (seconds).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # running a sync
    "install_hook": "lib.sync.hook",
    "sync_project": "lib.sync.engine",
    "sync_now": "lib.sync.engine",
    "start_sync_now": "lib.sync.engine",
    "is_running": "lib.sync.engine",
    "SyncOptions": "lib.sync.options",
    "load_options": "lib.sync.options",
    "WorkspaceTarget": "lib.sync.targets",
    "LocalFolderTarget": "lib.sync.targets",
    "Location": "lib.sync.targets",
    "TargetKind": "lib.sync.targets",
    "locate": "lib.sync.targets",
    "make_target": "lib.sync.targets",
    # what runs left behind
    "SyncRecord": "lib.sync.records",
    "SyncResult": "lib.sync.records",
    "tail_text_log": "lib.sync.records",
    "Cause": "lib.sync.errors",
    "recent_records": "lib.sync.status",
    "history": "lib.sync.status",
    "project_status": "lib.sync.status",
    "ProjectStatus": "lib.sync.status",
    "destination": "lib.sync.status",
    "Destination": "lib.sync.status",
    "DestinationState": "lib.sync.status",
    "refused_token": "lib.sync.status",
    "log_watcher": "lib.sync.watch",
    # surviving restarts and new containers
    "restore_all": "lib.sync.restore",
    "RestoreReport": "lib.sync.restore",
    "start_background": "lib.sync.daemon",
    "stop_background": "lib.sync.daemon",
    "retry_now": "lib.sync.daemon",
    "RetryEntry": "lib.sync.retry",
    "RetryKind": "lib.sync.retry",
    "pending_retry": "lib.sync.retry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lib.sync' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
