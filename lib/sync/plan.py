"""The plan of one sync: what to delete, prune, create and upload so a target equals a snapshot.

Pure: a snapshot of the worktree (``gitfiles.snapshot``) and the manifest of
what the target is known to hold (``manifest``) in, a ``Plan`` out. Separate
from carrying it out (``transfer``) so it can be read and tested without a
target, threads or the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib.sync import manifest as manifest_mod
from lib.sync.gitfiles import LocalFile, Snapshot


@dataclass
class Plan:
    uploads: list[LocalFile]
    deletes: list[str]
    mkdirs: list[str]  # deepest missing folders; mkdirs creates their parents
    stale_dirs: list[str]  # folders nothing lives in any more, deepest first

    @property
    def size(self) -> int:
        return len(self.uploads) + len(self.deletes)


def _ancestors(path: str) -> list[str]:
    """``a/b/c.txt`` -> ``["a/b", "a", ""]`` (``""`` is the project root)."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def make_plan(snap: Snapshot, manifest: manifest_mod.Manifest) -> Plan:
    """What to do so the target equals ``snap``, given what the manifest says it holds."""
    uploads = [f for p, f in sorted(snap.files.items()) if not manifest.matches(p, f.sha256, f.size)]
    deletes = sorted(p for p in manifest.files if p not in snap.files)
    known: set[str] = {d for p in manifest.files for d in _ancestors(p)}
    wanted: set[str] = {d for f in uploads for d in _ancestors(f.path)} | {""}
    missing = wanted - known
    inner = {d for m in missing if m for d in _ancestors(m)}  # proper ancestors of a folder
    mkdirs = sorted(missing - inner)
    live = {d for p in snap.files for d in _ancestors(p)}
    stale = sorted((known - live) - {""}, key=lambda d: (-d.count("/"), d))
    return Plan(uploads, deletes, mkdirs, stale)
