"""Memory admission: refuse a new session before the container runs out, and say why.

The default Databricks Apps compute has 6 GB, and each agent CLI is a Node
process of several hundred MB: five busy agents plus a build can exhaust it,
and the kernel's OOM killer then ends *some* process, perhaps the server or
an agent in the middle of an edit. So before a session starts, the memory
the container really has left is checked against a floor
(``Settings.memory_floor_mb``): below it the session is refused with what uses
the memory and what to close, which the user can act on.

"Really has left" means the cgroup's limit, not the host's free memory (a
container on a 256 GB host still dies at its 6 GB limit): cgroup v2
(``memory.max``, ``memory.current``, ``memory.stat``), else cgroup v1
(``memory.limit_in_bytes``...), else ``/proc/meminfo`` when no limit is set.
Page cache the kernel can drop on demand (``inactive_file``) is not counted as
used: it would be reclaimed before anything is killed.

Standard library only; every read is a few small files (cheap enough for each
session start and each Sessions page render).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lib.terminal import procs
from lib.terminal.errors import SessionError

MiB = 1024 * 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
_UNLIMITED = 1 << 60  # cgroup v1 says "no limit" with a number near 2**63


class NotEnoughMemory(SessionError):
    """A new session would leave the container below its memory floor."""

    status = 507  # Insufficient Storage: the server cannot hold another program now


@dataclass(frozen=True)
class Memory:
    """How much memory the app's container may use and uses now, in bytes."""

    limit: int
    used: int
    source: str  # where the numbers come from: "cgroup v2", "cgroup v1" or "/proc/meminfo"

    @property
    def available(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def fraction(self) -> float:
        return min(1.0, self.used / self.limit) if self.limit else 0.0


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) is None


def _stat_value(path: Path, *keys: str) -> int:
    """The first of ``keys`` found in a ``memory.stat`` file (0 when none)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    values = dict(line.split(maxsplit=1) for line in lines if " " in line)
    for key in keys:
        if key in values and values[key].strip().isdigit():
            return int(values[key])
    return 0


def _meminfo(proc: Path) -> Memory | None:
    try:
        lines = (proc / "meminfo").read_text().splitlines()
    except OSError:
        return None
    kib = {}
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            kib[name] = int(parts[0]) * 1024
    if "MemTotal" not in kib:
        return None
    available = kib.get("MemAvailable", kib.get("MemFree", 0))
    return Memory(limit=kib["MemTotal"], used=kib["MemTotal"] - available, source="/proc/meminfo")


def _v2_dir(root: Path, proc: Path) -> Path | None:
    """This process's cgroup v2 folder (``0::/path`` in /proc/self/cgroup), else the root, if it limits memory."""
    candidates = []
    try:
        for line in (proc / "self" / "cgroup").read_text().splitlines():
            if line.startswith("0::"):
                candidates.append(root / line[3:].strip().lstrip("/"))
    except OSError:
        pass
    candidates.append(root)
    for folder in candidates:
        if (folder / "memory.max").exists() and (folder / "memory.current").exists():
            return folder
    return None


def read_memory(root: Path = CGROUP_ROOT, proc: Path = PROC) -> Memory | None:
    """The container's memory limit and use; ``None`` when nothing can be read (not Linux)."""
    host = _meminfo(proc)
    folder = _v2_dir(root, proc)
    if folder is not None:
        limit, current = _read_int(folder / "memory.max"), _read_int(folder / "memory.current")
        if limit is not None and current is not None and (host is None or limit < host.limit):
            cache = _stat_value(folder / "memory.stat", "inactive_file")
            return Memory(limit=limit, used=max(0, current - cache), source="cgroup v2")
    v1 = root / "memory"
    limit, usage = _read_int(v1 / "memory.limit_in_bytes"), _read_int(v1 / "memory.usage_in_bytes")
    if limit is not None and usage is not None and limit < _UNLIMITED and (host is None or limit < host.limit):
        cache = _stat_value(v1 / "memory.stat", "total_inactive_file", "inactive_file")
        return Memory(limit=limit, used=max(0, usage - cache), source="cgroup v1")
    return host  # no limit of its own: the machine's memory is the limit


def rss_bytes(pid: int, proc: Path = PROC) -> int:
    """Resident memory of one process (0 when it is gone)."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def session_rss(pid: int) -> int:
    """Resident memory of every process of the terminal session led by ``pid`` (an agent and its tools)."""
    return sum(rss_bytes(member) for member in procs.session_members(pid))


def fmt(n: float) -> str:
    """Bytes for people: ``512 MiB``, ``5.6 GiB``."""
    return f"{n / (1024 * MiB):.1f} GiB" if n >= 1024 * MiB else f"{n / MiB:.0f} MiB"


def admit(floor_mb: int, sessions: Iterable[tuple[str, int]], memory: Memory | None = None) -> Memory | None:
    """Refuse a new session (``NotEnoughMemory``) when less than ``floor_mb`` would be left.

    ``sessions`` are (label, leader pid) of the running sessions, listed by
    their memory in the refusal so the user knows what to close. ``floor_mb``
    0 admits everything. Returns the memory it saw.
    """
    memory = read_memory() if memory is None else memory
    if floor_mb <= 0 or memory is None or memory.available >= floor_mb * MiB:
        return memory
    users = sorted(((session_rss(pid), label) for label, pid in sessions), reverse=True)
    server = rss_bytes(os.getpid())
    listed = "; ".join(f"“{label}” {fmt(rss)}" for rss, label in users[:5] if rss)
    raise NotEnoughMemory(
        f"not enough memory to start another session: {fmt(memory.available)} of {fmt(memory.limit)} is free "
        f"({memory.source}), and a new session needs at least {fmt(floor_mb * MiB)} left so that nothing is "
        f"killed when memory runs out. Using memory: {listed or 'no session'}; this app's server {fmt(server)}. "
        "Close a session you no longer need (or end the program using the most in it) and try again."
    )
