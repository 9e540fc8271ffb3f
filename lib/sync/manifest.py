"""What the target is known to hold for a project: path -> (sha256, size).

Only uploads and deletes the target confirmed are ever recorded, so a sync
that dies halfway leaves a manifest that is still true, and the next sync
redoes exactly what is missing. The manifest belongs to one target (kind and
root): switching from the local mirror to the workspace starts from empty.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from lib import statefile
from lib.sync import paths

VERSION = 1


@dataclass
class Manifest:
    target: str
    files: dict[str, dict[str, object]] = field(default_factory=dict)

    def matches(self, path: str, sha256: str, size: int) -> bool:
        entry = self.files.get(path)
        return bool(entry) and entry.get("sha256") == sha256 and entry.get("size") == size

    def record_upload(self, path: str, sha256: str, size: int) -> None:
        self.files[path] = {"sha256": sha256, "size": size}

    def record_delete(self, path: str) -> None:
        self.files.pop(path, None)


def load(home: Path, project: str, target: str) -> Manifest:
    """The manifest for ``project`` on ``target``; empty when missing, corrupt or for another target."""
    return load_at(paths.manifest_path(home, project), target)


def load_at(path: Path, target: str) -> Manifest:
    """``load`` for a manifest file named by path."""
    raw = statefile.read_json(path, default=None)
    if not isinstance(raw, dict) or raw.get("version") != VERSION or raw.get("target") != target:
        return Manifest(target=target)
    files = raw.get("files")
    if not isinstance(files, dict):
        return Manifest(target=target)
    clean = {
        k: {"sha256": v["sha256"], "size": v["size"]}
        for k, v in files.items()
        if isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("size"), int)
    }
    return Manifest(target=target, files=clean)


def save(home: Path, project: str, manifest: Manifest) -> None:
    """Atomic replace: a reader (or a crash) never sees half a manifest.

    Compact JSON: it is rewritten on every sync and holds one entry per file.
    """
    save_at(paths.manifest_path(home, project), manifest)


def save_at(path: Path, manifest: Manifest) -> None:
    """``save`` to a manifest file named by path."""
    data = {"version": VERSION, "target": manifest.target, "files": manifest.files}
    statefile.atomic_write(path, json.dumps(data, separators=(",", ":")).encode())


def digest(files: dict[str, dict[str, object]]) -> str:
    """One hash for a whole file set (path, sha256, size): equal digests, equal content."""
    h = hashlib.sha256()
    for path in sorted(files):
        entry = files[path]
        h.update(f"{path}\0{entry.get('sha256')}\0{entry.get('size')}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()
