"""In-memory workspace file tree with the real Workspace API's rules.

Kept apart from the HTTP layer so both the routes and the test-facing
helpers (``fw.read_file``, ``fw.put_file`` ...) share one set of rules:

* paths are absolute; ``/Workspace/...`` and ``/...`` name the same object
  (the API accepts both); answers echo the form the caller used;
* importing needs the parent folder to exist (404 RESOURCE_DOES_NOT_EXIST),
  an existing object needs ``overwrite`` (400 RESOURCE_ALREADY_EXISTS);
* ``format=AUTO`` makes a NOTEBOOK (extension stripped) only from ``.ipynb``
  or from a ``.py/.sql/.scala/.r`` source starting with the
  "Databricks notebook source" header; anything else stays a FILE with
  its exact bytes. ``RAW`` is always a FILE; ``SOURCE``/``JUPYTER`` are
  notebooks (``SOURCE`` needs a language);
* deleting a non-empty folder without ``recursive`` is DIRECTORY_NOT_EMPTY.
"""

from __future__ import annotations

import itertools
import posixpath
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from .errors import ApiError, invalid_parameter, not_found

WORKSPACE_PREFIX = "/Workspace"

# extension -> (language, notebook header line)
NOTEBOOK_SOURCES: Dict[str, Tuple[str, bytes]] = {
    ".py": ("PYTHON", b"# Databricks notebook source"),
    ".sql": ("SQL", b"-- Databricks notebook source"),
    ".scala": ("SCALA", b"// Databricks notebook source"),
    ".r": ("R", b"# Databricks notebook source"),
}
LANGUAGE_FILE_TYPE = {"PYTHON": "py", "SQL": "sql", "SCALA": "scala", "R": "r"}
IMPORT_FORMATS = {"AUTO", "SOURCE", "RAW", "JUPYTER", "DBC", "HTML", "R_MARKDOWN"}


@dataclass
class Node:
    """One workspace object."""

    path: str  # canonical, without the /Workspace prefix
    object_type: str  # DIRECTORY, FILE or NOTEBOOK
    object_id: int
    created_at: int  # epoch ms
    modified_at: int  # epoch ms
    content: Optional[bytes] = None
    language: Optional[str] = None

    def info(self, display_path: str) -> Dict[str, object]:
        """The ObjectInfo JSON of get-status and list."""
        out: Dict[str, object] = {
            "object_type": self.object_type,
            "path": display_path,
            "object_id": self.object_id,
            "resource_id": str(self.object_id),
        }
        if self.object_type != "DIRECTORY":
            out["created_at"] = self.created_at
            out["modified_at"] = self.modified_at
            out["size"] = len(self.content or b"")
        if self.language:
            out["language"] = self.language
        return out


def canonical(path: object) -> Tuple[str, bool]:
    """Normalize an API path; returns (canonical path, caller used /Workspace)."""
    if not isinstance(path, str) or not path:
        raise invalid_parameter("Path is required")
    if not path.startswith("/"):
        raise invalid_parameter(f"Path ({path}) is not absolute")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise invalid_parameter(f"Path ({path}) is not a valid path")
    prefixed = bool(parts) and parts[0] == WORKSPACE_PREFIX[1:]
    if prefixed:
        parts = parts[1:]
    return "/" + "/".join(parts), prefixed


def display(canon: str, prefixed: bool) -> str:
    """Render a canonical path the way the caller spelled its request."""
    if not prefixed:
        return canon
    return WORKSPACE_PREFIX if canon == "/" else WORKSPACE_PREFIX + canon


class WorkspaceTree:
    """Thread-safe tree of directories, files and notebooks."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1_000_000_000_000)
        now = self._now()
        self._nodes: Dict[str, Node] = {"/": Node("/", "DIRECTORY", next(self._ids), now, now)}

    @staticmethod
    def _now() -> int:
        return int(time.time() * 1000)

    # queries ---------------------------------------------------------------
    def get(self, path: str) -> Node:
        """The object at ``path`` or 404 RESOURCE_DOES_NOT_EXIST."""
        canon, _ = canonical(path)
        with self._lock:
            node = self._nodes.get(canon)
        if node is None:
            raise not_found(f"Path ({path}) doesn't exist.")
        return node

    def exists(self, path: str) -> bool:
        canon, _ = canonical(path)
        with self._lock:
            return canon in self._nodes

    def children(self, canon: str) -> List[Node]:
        """Direct children of a canonical directory path, sorted by path."""
        prefix = canon.rstrip("/") + "/"
        with self._lock:
            return sorted(
                (
                    n
                    for p, n in self._nodes.items()
                    if p != "/" and p.startswith(prefix) and "/" not in p[len(prefix) :]
                ),
                key=lambda n: n.path,
            )

    def list(self, path: str) -> List[Node]:
        """Workspace list: a folder's children, or the object itself if not a folder."""
        node = self.get(path)
        if node.object_type != "DIRECTORY":
            return [node]
        return self.children(node.path)

    def files(self) -> Dict[str, bytes]:
        """Snapshot {canonical path: bytes} of every file and notebook."""
        with self._lock:
            return {p: n.content or b"" for p, n in self._nodes.items() if n.object_type != "DIRECTORY"}

    def directories(self) -> Set[str]:
        """Snapshot of every canonical directory path."""
        with self._lock:
            return {p for p, n in self._nodes.items() if n.object_type == "DIRECTORY"}

    # mutations -------------------------------------------------------------
    def mkdirs(self, path: str) -> Node:
        """Create a folder and its missing parents (no error if it exists)."""
        canon, _ = canonical(path)
        with self._lock:
            current = ""
            node = self._nodes["/"]
            for part in [p for p in canon.split("/") if p]:
                current = f"{current}/{part}"
                found = self._nodes.get(current)
                if found is None:
                    now = self._now()
                    found = Node(current, "DIRECTORY", next(self._ids), now, now)
                    self._nodes[current] = found
                node = found
                if node.object_type != "DIRECTORY":
                    raise ApiError(
                        400,
                        "RESOURCE_ALREADY_EXISTS",
                        f"Cannot create directory {path}: a {node.object_type.lower()} named {current} exists.",
                    )
            return node

    def import_(
        self,
        path: str,
        content: bytes,
        *,
        format: Optional[str] = None,
        language: Optional[str] = None,
        overwrite: bool = False,
    ) -> Node:
        """Workspace import; returns the created object (its path may lose an extension)."""
        canon, _ = canonical(path)
        fmt = (format or "SOURCE").upper()
        if fmt not in IMPORT_FORMATS:
            raise invalid_parameter(f"Invalid format: {format}")
        if fmt in ("DBC", "HTML", "R_MARKDOWN"):
            raise invalid_parameter(f"The fake workspace does not import {fmt}")
        lang = language.upper() if language else None
        object_type, target = "FILE", canon
        if fmt == "AUTO":
            stem, ext = posixpath.splitext(canon)
            if ext.lower() == ".ipynb":
                object_type, lang, target = "NOTEBOOK", "PYTHON", stem
            elif ext.lower() in NOTEBOOK_SOURCES:
                nb_lang, header = NOTEBOOK_SOURCES[ext.lower()]
                if content.lstrip(b"\xef\xbb\xbf").startswith(header):
                    object_type, lang, target = "NOTEBOOK", nb_lang, stem
            if object_type == "FILE":
                lang = None
        elif fmt == "SOURCE":
            if not lang:
                raise invalid_parameter("The language must be specified when importing in SOURCE format.")
            object_type = "NOTEBOOK"
        elif fmt == "JUPYTER":
            object_type, lang = "NOTEBOOK", lang or "PYTHON"
        else:  # RAW
            lang = None
        if target == "/":
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
        parent = posixpath.dirname(target)
        with self._lock:
            parent_node = self._nodes.get(parent)
            if parent_node is None or parent_node.object_type != "DIRECTORY":
                raise not_found(f"The parent folder ({parent}) does not exist.")
            existing = self._nodes.get(target)
            now = self._now()
            if existing is not None:
                if existing.object_type == "DIRECTORY" or not overwrite:
                    raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
                existing.object_type = object_type
                existing.content = bytes(content)
                existing.language = lang
                existing.modified_at = now
                return existing
            node = Node(target, object_type, next(self._ids), now, now, bytes(content), lang)
            self._nodes[target] = node
            return node

    def delete(self, path: str, *, recursive: bool = False) -> None:
        """Delete an object; a non-empty folder needs ``recursive``."""
        canon, _ = canonical(path)
        if canon == "/":
            raise invalid_parameter("Cannot delete the root folder.")
        with self._lock:
            node = self._nodes.get(canon)
            if node is None:
                raise not_found(f"Path ({path}) doesn't exist.")
            prefix = canon + "/"
            below = [p for p in self._nodes if p.startswith(prefix)]
            if below and not recursive:
                raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty")
            for p in below:
                del self._nodes[p]
            del self._nodes[canon]

    def export(self, path: str, format: Optional[str] = None) -> Tuple[bytes, str]:
        """Workspace export: (bytes, file_type). Content comes back byte for byte."""
        node = self.get(path)
        fmt = (format or "SOURCE").upper()
        if node.object_type == "DIRECTORY":
            raise invalid_parameter(f"Exporting a directory in {fmt} format is not supported by the fake workspace.")
        if node.object_type == "NOTEBOOK":
            if fmt == "JUPYTER":
                return node.content or b"", "ipynb"
            return node.content or b"", LANGUAGE_FILE_TYPE.get(node.language or "", "py")
        ext = posixpath.splitext(node.path)[1].lstrip(".")
        return node.content or b"", ext
