"""Where a project is mirrored: the Databricks workspace, or a local folder.

Both targets take paths relative to the project root and expose the same four
operations, so the engine (diffing, retries, manifest, logging) is written
once. ``locate`` is the one place that decides where a project goes and
computes that place's kind, root and URL: ``make_target`` builds the target
for it, and the sync page shows it without building anything. It picks the
workspace when the app has left a host, a token and the owner on disk, and
the local mirror otherwise, so sync works (and can be tested) without any
workspace.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from lib import homefiles
from lib.sync import paths
from lib.sync.credentials import Credentials, read_credentials
from lib.sync.options import SyncOptions


class TargetKind(StrEnum):
    """Stored as ``SyncRecord.target``."""

    WORKSPACE = "workspace"
    LOCAL = "local"


@dataclass(frozen=True)
class Location:
    """Where a project's files go and how a person opens that folder."""

    kind: TargetKind
    root: str  # absolute workspace path, or local folder
    url: str  # what a user clicks to see the folder
    host: str | None = None  # the workspace, for error messages; None for the local mirror

    @classmethod
    def workspace(cls, host: str, owner: str, project: str) -> Location:
        """``/Workspace/Users/<owner>/projects/<name>`` on ``host``."""
        return cls.workspace_at(host, paths.remote_root(owner, project))

    @classmethod
    def local(cls, home: Path, owner: str | None, project: str) -> Location:
        """``~/.coda/workspace-mirror/Users/<owner or local>/projects/<name>``: the same layout, on disk."""
        return cls.local_at(home, paths.remote_root(owner, project))

    @classmethod
    def workspace_at(cls, host: str, rel: str) -> Location:
        """``/Workspace/<rel>`` on ``host`` (``rel`` from ``lib.sync.paths``)."""
        host = host.rstrip("/")
        root = "/Workspace/" + rel
        return cls(TargetKind.WORKSPACE, root, f"{host}/#workspace{root}", host)

    @classmethod
    def local_at(cls, home: Path, rel: str) -> Location:
        """``<rel>`` under the local mirror folder."""
        base = homefiles.workspace_mirror_dir(home) / rel
        return cls(TargetKind.LOCAL, str(base), base.as_uri())

    @property
    def identity(self) -> str:
        """What a manifest belongs to: moving to another place starts from an empty manifest."""
        return f"{self.kind}:{self.host or ''}{self.root}"


def locate(home: Path, project: str, creds: Credentials) -> Location:
    """Where the next sync of ``project`` goes: the workspace when host, token and owner are all known."""
    return _locate(home, creds, lambda owner: paths.remote_root(owner, project))


def locate_history(home: Path, project: str, creds: Credentials) -> Location:
    """Where ``project``'s git history goes: next to its folder's target, under ``.coda/history``."""
    return _locate(home, creds, lambda owner: paths.history_root(owner, project))


def locate_agents(home: Path, creds: Credentials) -> Location:
    """Where the agents' conversation stores are backed up."""
    return _locate(home, creds, paths.agents_root)


def _locate(home: Path, creds: Credentials, rel: Callable[[str | None], str]) -> Location:
    if creds.workspace_ready:
        assert creds.host and creds.owner
        return Location.workspace_at(creds.host, rel(creds.owner))
    return Location.local_at(home, rel(creds.owner))


@dataclass(frozen=True)
class RemoteEntry:
    """One object in a target folder."""

    name: str
    is_dir: bool
    size: int = 0


def walk(list_dir: Callable[[str], list[RemoteEntry] | None], rel: str, workers: int = 8) -> list[tuple[str, int]]:
    """Every file below folder ``rel`` as (path relative to ``rel``, size), listing one depth at a time
    in parallel (``list_dir`` is a target's, usually wrapped in retries)."""
    from concurrent.futures import ThreadPoolExecutor

    out: list[tuple[str, int]] = []
    folders = [""]
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sync-list") as pool:
        while folders:
            level, folders = folders, []
            listed = pool.map(lambda sub: (sub, list_dir(f"{rel}/{sub}" if rel and sub else (sub or rel))), level)
            for sub, entries in listed:
                for e in entries or []:
                    child = f"{sub}/{e.name}" if sub else e.name
                    if e.is_dir:
                        folders.append(child)
                    else:
                        out.append((child, e.size))
    return out


class Target(Protocol):
    """A place the engine can mirror a project to; every path is relative to ``location.root``.

    ``location`` says where (kind, root, URL, and the workspace ``host`` that
    error messages name). ``token_hash`` is ``homefiles.token_fingerprint`` of
    the token the target has presented so far, or None: the record keeps it so
    the app can tell which token a refusal was about.
    """

    location: Location

    @property
    def token_hash(self) -> str | None: ...

    def mkdirs(self, rel_dir: str) -> None: ...
    def upload(self, rel_path: str, data: bytes) -> None: ...
    def delete(self, rel_path: str) -> None: ...
    def remove_empty_dir(self, rel_dir: str) -> None: ...
    def download(self, rel_path: str) -> bytes | None:
        """The file's bytes; None when there is no such file."""
        ...
    def list_dir(self, rel_dir: str) -> list[RemoteEntry] | None:
        """The folder's children; None when there is no such folder."""
        ...
    def sibling(self, location: Location) -> Target:
        """A target of the same kind at ``location``, sharing this one's connection and credentials."""
        ...


def _join(root: str, rel: str) -> str:
    return f"{root}/{rel}" if rel else root


class WorkspaceTarget:
    """A workspace folder through databricks-sdk (no Go CLI needed).

    Uploads use ``ImportFormat.RAW`` by default: the workspace then stores a
    file with exactly the local bytes and name. ``AUTO`` would turn a ``.py``
    with a notebook header or an ``.ipynb`` into a notebook *and drop its
    extension*, so the remote path would no longer match the local one and a
    later delete or rename would miss it. If the workspace rejects RAW, the
    target falls back to AUTO for the rest of the run.
    """

    def __init__(self, location: Location, token: str, options: SyncOptions,
                 _shared: _SharedClient | None = None) -> None:
        from databricks.sdk.service.workspace import ImportFormat

        if location.kind is not TargetKind.WORKSPACE or not location.host:
            raise ValueError(f"not a workspace location: {location}")
        self.location = location
        self._host = location.host
        self._root = location.root
        self._token = token
        self._options = options
        self._shared = _shared or _SharedClient(location.host, token, options.retry_timeout_s)
        self._format = ImportFormat(options.import_format.upper())
        self._auto = ImportFormat.AUTO
        self._lock = threading.Lock()

    @property
    def token_hash(self) -> str | None:
        # Only a run that actually sent the token says anything about it: a sync
        # with nothing to send must not hide an earlier refusal from the app.
        return homefiles.token_fingerprint(self._token) if self._shared.used else None

    @property
    def _client(self):  # noqa: ANN202 - WorkspaceClient, imported lazily
        return self._shared.client()

    def sibling(self, location: Location) -> WorkspaceTarget:
        return WorkspaceTarget(location, self._token, self._options, _shared=self._shared)

    def download(self, rel_path: str) -> bytes | None:
        from databricks.sdk.errors import NotFound
        from databricks.sdk.service.workspace import ExportFormat

        try:
            return self._client.workspace.download(_join(self._root, rel_path), format=ExportFormat.AUTO).read()
        except NotFound:
            return None

    def list_dir(self, rel_dir: str) -> list[RemoteEntry] | None:
        from databricks.sdk.errors import NotFound
        from databricks.sdk.service.workspace import ObjectType

        try:
            objects = list(self._client.workspace.list(_join(self._root, rel_dir)))
        except NotFound:
            return None
        return [
            RemoteEntry((o.path or "").rstrip("/").rsplit("/", 1)[-1], o.object_type == ObjectType.DIRECTORY,
                        int(o.size or 0))
            for o in objects
            if o.path and o.object_type in (ObjectType.DIRECTORY, ObjectType.FILE)
        ]

    def mkdirs(self, rel_dir: str) -> None:
        self._client.workspace.mkdirs(_join(self._root, rel_dir))

    def upload(self, rel_path: str, data: bytes) -> None:
        from databricks.sdk.errors import DatabricksError, NotFound

        path = _join(self._root, rel_path)
        try:
            self._import(path, data)
        except NotFound:
            # The folder vanished behind our back (deleted in the UI): recreate and retry once.
            parent = rel_path.rsplit("/", 1)[0] if "/" in rel_path else ""
            self.mkdirs(parent)
            self._import(path, data)
        except DatabricksError as exc:
            # The SDK re-raises INVALID_PARAMETER_VALUE from import as a plain DatabricksError.
            if self._format is self._auto or exc.error_code != "INVALID_PARAMETER_VALUE":
                raise
            with self._lock:
                self._format = self._auto
            self._import(path, data)

    def _import(self, path: str, data: bytes) -> None:
        self._client.workspace.upload(path, data, format=self._format, overwrite=True)

    def delete(self, rel_path: str) -> None:
        from databricks.sdk.errors import NotFound

        try:
            self._client.workspace.delete(_join(self._root, rel_path))
        except NotFound:
            pass  # already gone is what we wanted

    def remove_empty_dir(self, rel_dir: str) -> None:
        # Not recursive: a folder that also holds something made in the workspace stays.
        self._client.workspace.delete(_join(self._root, rel_dir), recursive=False)


class _SharedClient:
    """One lazily built ``WorkspaceClient`` for a target and its siblings (project folder, history)."""

    def __init__(self, host: str, token: str, retry_timeout_s: int) -> None:
        self._host, self._token, self._retry_timeout_s = host, token, retry_timeout_s
        self._lock = threading.Lock()
        self._client = None

    @property
    def used(self) -> bool:
        return self._client is not None

    def client(self):  # noqa: ANN202 - WorkspaceClient, imported lazily
        # Built on first use: a sync with nothing to send needs no network at all.
        with self._lock:
            if self._client is None:
                from lib.workspace.client import pat_client

                self._client = pat_client(self._host, self._token, retry_timeout_s=self._retry_timeout_s)
            return self._client


_PARTIAL = re.compile(r"^\..*\.sync-\d+-\d+$")  # an upload in progress (see LocalFolderTarget.upload)


class LocalFolderTarget:
    """A folder on this machine with the workspace's layout (see ``Location.local``)."""

    token_hash = None  # no credentials involved

    def __init__(self, location: Location) -> None:
        if location.kind is not TargetKind.LOCAL:
            raise ValueError(f"not a local location: {location}")
        self.location = location
        self.base = Path(location.root)

    def _path(self, rel: str) -> Path:
        full = (self.base / rel) if rel else self.base
        if rel and ".." in Path(rel).parts:
            raise ValueError(f"refusing path outside the mirror: {rel}")
        return full

    def mkdirs(self, rel_dir: str) -> None:
        self._path(rel_dir).mkdir(parents=True, exist_ok=True)

    def upload(self, rel_path: str, data: bytes) -> None:
        dest = self._path(rel_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)  # a folder became a file
        tmp = dest.with_name(f".{dest.name}.sync-{os.getpid()}-{threading.get_ident()}")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)

    def delete(self, rel_path: str) -> None:
        try:
            self._path(rel_path).unlink()
        except FileNotFoundError:
            pass

    def remove_empty_dir(self, rel_dir: str) -> None:
        self._path(rel_dir).rmdir()

    def download(self, rel_path: str) -> bytes | None:
        try:
            return self._path(rel_path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def list_dir(self, rel_dir: str) -> list[RemoteEntry] | None:
        try:
            with os.scandir(self._path(rel_dir)) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False), e)
                           for e in it]
        except (FileNotFoundError, NotADirectoryError):
            return None
        return [RemoteEntry(name, is_dir, 0 if is_dir else e.stat(follow_symlinks=False).st_size)
                for name, is_dir, is_file, e in entries if (is_dir or is_file) and not _PARTIAL.match(name)]

    def sibling(self, location: Location) -> LocalFolderTarget:
        return LocalFolderTarget(location)


def make_target(home: Path, project: str, options: SyncOptions, creds: Credentials | None = None) -> Target:
    """The target ``locate`` picks, ready to use (no request is made until its first operation)."""
    creds = creds or read_credentials(home)
    return target_at(locate(home, project, creds), creds, options)


def target_at(location: Location, creds: Credentials, options: SyncOptions) -> Target:
    """The target for a place ``locate``/``locate_history``/``locate_agents`` picked with ``creds``."""
    if location.kind is TargetKind.WORKSPACE:
        assert creds.token is not None  # the workspace is only picked with a token
        return WorkspaceTarget(location, creds.token, options)
    return LocalFolderTarget(location)
