"""Our attention hooks in a CLI's JSON settings file (Claude Code's and Gemini CLI's share the layout).

Each agent module says which events it hooks and what one hook entry looks
like in its CLI; writing them next to the user's own hooks, or removing ours
when the app cannot be reached over loopback, is the same for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lib.agents import files
from lib.agents.base import Loopback, ModelAccess
from lib.attention import install as attention


def write_json_hooks(home: Path, path: Path, access: ModelAccess, events: Iterable[str],
                     group: Callable[[str], dict[str, Any]]) -> None:
    """``group(event)`` for each event under ``hooks`` in ``path``, the user's own hooks kept;
    ours removed when ``access`` is not a ``Loopback`` (nobody to report to)."""
    data = files.read_json_object(path)
    ours: dict[str, list[dict[str, Any]]] = {}
    if isinstance(access, Loopback):
        attention.install_script(home)
        ours = {event: [group(event)] for event in events}
    files.write_json_key(path, data, "hooks", attention.merge_hooks(data.get("hooks"), ours))
