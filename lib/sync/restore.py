"""Bring projects back from the workspace at boot: history, branches, HEAD and files.

A new container starts with an empty HOME. For every project the workspace
has (a history folder ``.coda/history/<name>``, or failing that a synced
folder ``projects/<name>``) and ``~/projects`` does not, ``restore_all``
brings it back: its history, branches, HEAD and the working tree as it was
synced (``restore_project.restore_history``), or its files in a fresh
repository (``restore_project.restore_files``).

A project is never overwritten: one that exists locally (a non-empty folder)
is kept as it is. One that this HOME synced before and no longer has was
deleted here on purpose and is not brought back (its sync state in
``~/.coda/sync`` says so). A project the workspace has only as files (synced
before histories were kept) comes back as those files in a fresh ``git init``.
Last, the agents' conversation stores come back (``conversations.restore``).

This module decides which projects to bring back and reports on all of them
(``RestoreReport``, one or two sentences for the Setup page);
``restore_project`` does one.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from lib.sync import conversations, paths
from lib.sync.credentials import Credentials, read_credentials
from lib.sync.errors import explain
from lib.sync.historyplan import STATE_FILE
from lib.sync.options import SyncOptions, load_options
from lib.sync.records import human_bytes, log_line
from lib.sync.restore_project import (
    HISTORY_DIR,
    PROJECTS_DIR,
    Outcome,
    Progress,
    ProjectRestore,
    Source,
    restore_files,
    restore_history,
)
from lib.sync.targets import Location, Target, target_at

MAX_DEPTH = 4  # nested projects (group/repo) in the history folder


@dataclass
class RestoreReport:
    projects: list[ProjectRestore] = field(default_factory=list)
    conversations: conversations.RestoreResult | None = None
    skipped_reason: str | None = None  # nothing was tried (no workspace)
    bytes: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[ProjectRestore]:
        return [p for p in self.projects if p.outcome is Outcome.FAILED]

    def summary(self) -> str:
        """One or two sentences for the Setup page."""
        if self.skipped_reason:
            return self.skipped_reason
        parts = []
        for outcome, words in ((Outcome.RESTORED, "restored"), (Outcome.FILES, "restored as files only"),
                               (Outcome.KEPT, "kept (exists locally)"), (Outcome.SKIPPED, "not restored"),
                               (Outcome.FAILED, "failed")):
            names = [p.project for p in self.projects if p.outcome is outcome]
            if names:
                parts.append(f"{words}: {', '.join(names)}")
        text = "; ".join(parts) if parts else "no projects in the workspace to restore"
        conv = self.conversations
        if conv and conv.files:
            text += f"; {conv.files} agent conversation file{'s' if conv.files != 1 else ''} restored"
        if self.bytes:
            text += f" ({human_bytes(self.bytes)} in {self.seconds:.1f} s)"
        for p in self.failed:
            text += f". {p.project}: {p.detail}"
        return text


def _user_target(home: Path, creds: Credentials, options: SyncOptions) -> Target:
    root = paths.user_root(creds.owner)
    if creds.workspace_ready:
        assert creds.host
        return target_at(Location.workspace_at(creds.host, root), creds, options)
    return target_at(Location.local_at(home, root), creds, options)


def _history_projects(src: Source) -> list[str]:
    """Project names with a ``history.json`` under ``.coda/history`` (nested names included)."""
    found: list[str] = []
    level = [""]
    for _depth in range(MAX_DEPTH):
        nxt: list[str] = []
        for sub in level:
            entries = src.list_dir(f"{HISTORY_DIR}/{sub}" if sub else HISTORY_DIR) or []
            names = {e.name for e in entries if not e.is_dir}
            if sub and STATE_FILE in names:
                found.append(sub)
                continue
            nxt += [f"{sub}/{e.name}" if sub else e.name for e in entries if e.is_dir]  # a group folder
        level = nxt
        if not level:
            break
    return sorted(found)


def _folder_projects(src: Source) -> list[str]:
    return sorted(e.name for e in src.list_dir(PROJECTS_DIR) or [] if e.is_dir and not e.name.startswith("."))


def _was_here(home: Path, project: str) -> bool:
    """This HOME synced the project before (so its absence is the user's doing)."""
    return paths.manifest_path(home, project).exists() or paths.history_state_path(home, project).exists()


def _occupied(folder: Path) -> bool:
    if folder.is_symlink() or folder.is_file():
        return True
    if not folder.is_dir():
        return False
    return any(folder.iterdir())


def restore_all(home: Path, *, owner: str | None = None, progress: Progress | None = None,
                options: SyncOptions | None = None) -> RestoreReport:
    """Restore every project (and the agents' conversations) the workspace has and HOME does not.

    ``owner`` overrides the owner on disk (the boot setup knows it before
    ``identity.json`` may exist). Never raises for workspace problems: each
    project's failure is in the report, in words.
    """
    began = time.monotonic()
    say = progress or (lambda _text: None)
    options = options or load_options(home)
    creds = read_credentials(home)
    if owner:
        creds = dataclasses.replace(creds, owner=owner)
    report = RestoreReport()
    if not creds.workspace_ready:
        missing = "owner" if creds.host and creds.token else "token"
        report.skipped_reason = f"no workspace {missing} yet: nothing to restore from"
        return report
    src = Source(_user_target(home, creds, options), options)
    say("looking for projects in the workspace")
    try:
        with_history = _history_projects(src)
        # A folder holding nested projects (group/repo) is not a project of its own.
        files_only = [n for n in _folder_projects(src)
                      if n not in with_history and not any(h.startswith(n + "/") for h in with_history)]
    except Exception as exc:  # noqa: BLE001 - said in words on the Setup page
        report.projects.append(ProjectRestore("(workspace)", Outcome.FAILED, explain(exc, host=creds.host)))
        return report
    names = sorted(set(with_history) | set(files_only))
    for i, name in enumerate(names, 1):
        prefix = f"{name} ({i}/{len(names)})"
        folder = paths.projects_dir(home) / name
        if _occupied(folder):
            report.projects.append(ProjectRestore(name, Outcome.KEPT, "a local project of that name exists"))
            continue
        if _was_here(home, name):
            report.projects.append(ProjectRestore(name, Outcome.SKIPPED, "deleted here after it was synced"))
            continue
        started, before = time.monotonic(), src.bytes
        try:
            if name in with_history:
                result = restore_history(home, name, src, creds, options, lambda t, p=prefix: say(f"{p}: {t}"))
            else:
                result = restore_files(home, name, src, creds, options, lambda t, p=prefix: say(f"{p}: {t}"))
        except Exception as exc:  # noqa: BLE001 - one project's failure must not stop the others
            result = ProjectRestore(name, Outcome.FAILED, explain(exc, host=creds.host))
        result.bytes = src.bytes - before
        result.seconds = round(time.monotonic() - started, 3)
        report.projects.append(result)
        log_line(home, f"[{name}] restore from the workspace: {result.outcome}"
                       f"{': ' + result.detail if result.detail else ''} ({human_bytes(result.bytes)}, "
                       f"{result.seconds:.1f} s)")
    say("restoring the agents' conversations")
    try:
        report.conversations = conversations.restore(home, creds, options)
        src.bytes += report.conversations.bytes
    except Exception as exc:  # noqa: BLE001 - said in words on the Setup page
        report.projects.append(ProjectRestore("(agent conversations)", Outcome.FAILED, explain(exc, host=creds.host)))
    report.bytes = src.bytes
    report.seconds = round(time.monotonic() - began, 3)
    return report
