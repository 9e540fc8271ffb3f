"""Where a project is mirrored: the Databricks workspace, or a local folder.

Both targets take paths relative to the project root and expose the same four
operations, so the engine (diffing, retries, manifest, logging) is written
once. ``make_target`` picks the workspace when the app has left a host, a
token and the owner on disk, and the local mirror otherwise, so sync works
(and can be tested) without any workspace.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Protocol

from lib.sync import paths
from lib.sync.credentials import Credentials, read_credentials
from lib.sync.options import SyncOptions


class Target(Protocol):
    kind: str  # "workspace" | "local"
    root: str  # absolute remote path, or local folder
    url: str  # what a user clicks to see the folder

    @property
    def identity(self) -> str: ...
    def mkdirs(self, rel_dir: str) -> None: ...
    def upload(self, rel_path: str, data: bytes) -> None: ...
    def delete(self, rel_path: str) -> None: ...
    def remove_empty_dir(self, rel_dir: str) -> None: ...


def _join(root: str, rel: str) -> str:
    return f"{root}/{rel}" if rel else root


class WorkspaceTarget:
    """``/Workspace/Users/<owner>/projects/<name>`` through databricks-sdk (no Go CLI needed).

    Uploads use ``ImportFormat.RAW`` by default: the workspace then stores a
    file with exactly the local bytes and name. ``AUTO`` would turn a ``.py``
    with a notebook header or an ``.ipynb`` into a notebook *and drop its
    extension*, so the remote path would no longer match the local one and a
    later delete or rename would miss it. If the workspace rejects RAW, the
    target falls back to AUTO for the rest of the run.
    """

    kind = "workspace"

    def __init__(self, host: str, token: str, owner: str, project: str, options: SyncOptions) -> None:
        from databricks.sdk.service.workspace import ImportFormat

        self.host = host.rstrip("/")
        self.root = "/Workspace/" + paths.remote_root(owner, project)
        self.url = f"{self.host}/#workspace{self.root}"
        self._token = token
        self._retry_timeout_s = options.retry_timeout_s
        self._client_obj = None
        self._format = ImportFormat(options.import_format.upper())
        self._auto = ImportFormat.AUTO
        self._lock = threading.Lock()

    @property
    def _client(self):  # noqa: ANN202 - WorkspaceClient, imported lazily
        # Built on first use: a sync with nothing to send needs no network at all.
        with self._lock:
            if self._client_obj is None:
                from lib.workspace.client import pat_client

                self._client_obj = pat_client(self.host, self._token, retry_timeout_s=self._retry_timeout_s)
            return self._client_obj

    @property
    def identity(self) -> str:
        return f"workspace:{self.host}{self.root}"

    def mkdirs(self, rel_dir: str) -> None:
        self._client.workspace.mkdirs(_join(self.root, rel_dir))

    def upload(self, rel_path: str, data: bytes) -> None:
        from databricks.sdk.errors import DatabricksError, NotFound

        path = _join(self.root, rel_path)
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
            self._client.workspace.delete(_join(self.root, rel_path))
        except NotFound:
            pass  # already gone is what we wanted

    def remove_empty_dir(self, rel_dir: str) -> None:
        # Not recursive: a folder that also holds something made in the workspace stays.
        self._client.workspace.delete(_join(self.root, rel_dir), recursive=False)


class LocalFolderTarget:
    """``~/.coda/workspace-mirror/Users/<owner or local>/projects/<name>``: the same layout, on disk."""

    kind = "local"

    def __init__(self, home: Path, owner: str | None, project: str) -> None:
        self.base = home / paths.MIRROR_DIR / paths.remote_root(owner, project)
        self.root = str(self.base)
        self.url = self.base.as_uri()

    @property
    def identity(self) -> str:
        return f"local:{self.root}"

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


def make_target(home: Path, project: str, options: SyncOptions, creds: Credentials | None = None) -> Target:
    """The workspace when host, token and owner are all known; the local mirror otherwise."""
    creds = creds or read_credentials(home)
    if creds.workspace_ready:
        assert creds.host and creds.token and creds.owner
        return WorkspaceTarget(creds.host, creds.token, creds.owner, project, options)
    return LocalFolderTarget(home, creds.owner, project)


def describe_target(home: Path, project: str, creds: Credentials | None = None) -> tuple[str, str, str]:
    """``(kind, root, url)`` the next sync would use, without building a client (for the status page)."""
    creds = creds or read_credentials(home)
    if creds.workspace_ready:
        root = "/Workspace/" + paths.remote_root(creds.owner, project)
        return "workspace", root, f"{creds.host}/#workspace{root}"
    base = home / paths.MIRROR_DIR / paths.remote_root(creds.owner, project)
    return "local", str(base), base.as_uri()

