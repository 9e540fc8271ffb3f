"""What every agent module needs to install its hooks: the script, the command, merging, Codex's trust.

Each agent module in ``lib.agents`` writes its own hook settings (which
events, in its CLI's format) from its ``write_config``; the parts they share
live here. Hooks are installed only when the app can be reached over
loopback (the configs point at its gateway): without the app's address
there is nobody to report to, so the writers then remove ours.

Every hook runs ``bash "$HOME/.coda/hooks/attention.sh" <agent> <event>``: a
command without a machine-specific path (the CLIs run hooks through a
shell, which expands ``$HOME``), so the config files and Codex's trust
hashes are the same on every machine. The user's own hooks in the same
files are kept; ours are recognised by the script's path and replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lib import homefiles, statefile

SCRIPT_NAME = "attention.sh"
SCRIPT_SOURCE = Path(__file__).parent / "hooks" / SCRIPT_NAME
PLUGIN_SOURCE = Path(__file__).parent / "hooks" / "opencode-plugin.js"
MARKER = f".coda/hooks/{SCRIPT_NAME}"  # in every command of ours, and in no one else's
# The CLIs' own limit for one run of our hook, a backstop: the script itself is done in well under a
# second. Codex counts whole seconds (at least 1); Claude seconds; Gemini milliseconds.
TIMEOUT_S = 1


def script_path(home: Path) -> Path:
    return homefiles.coda_dir(home) / "hooks" / SCRIPT_NAME


def install_script(home: Path) -> Path:
    """Put the hook script at ``~/.coda/hooks/attention.sh`` (rewritten only when it differs)."""
    path = script_path(home)
    text = SCRIPT_SOURCE.read_bytes()
    try:
        current = path.read_bytes()
    except OSError:
        current = None
    if current != text:
        statefile.atomic_write(path, text, 0o600)  # run as `bash <path>`: no exec bit needed
    return path


def command(agent: str, event: str) -> str:
    """The hook command a CLI runs through its shell."""
    return f'bash "$HOME/{MARKER}" {agent} {event}'


def argv(home: Path, agent: str, event: str) -> list[str]:
    """The same as an argument list, for CLIs that run a program without a shell (Codex's ``notify``)."""
    return ["bash", str(script_path(home)), agent, event]


def is_ours(value: Any) -> bool:
    """True for a command (string or argument list) that runs our script."""
    if isinstance(value, list):
        return any(isinstance(v, str) and MARKER in v for v in value)
    return isinstance(value, str) and MARKER in value


def _without_ours(groups: Any) -> list[Any]:
    kept: list[Any] = []
    for group in groups if isinstance(groups, list) else []:
        hooks = group.get("hooks") if isinstance(group, dict) else None
        if not isinstance(hooks, list):
            kept.append(group)
            continue
        theirs = [h for h in hooks if not (isinstance(h, dict) and is_ours(h.get("command")))]
        if len(theirs) == len(hooks):
            kept.append(group)
        elif theirs:
            kept.append({**group, "hooks": theirs})
    return kept


def merge_hooks(existing: Any, ours: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A CLI's ``hooks`` object with the user's groups kept (first) and ours (after them) replaced."""
    merged: dict[str, Any] = {}
    for event, groups in (existing.items() if isinstance(existing, dict) else ()):
        if not isinstance(groups, list):
            merged[event] = groups  # not ours to judge
            continue
        kept = _without_ours(groups)
        if kept or not groups:  # an event left empty by removing ours goes; one the user left empty stays
            merged[event] = kept
    for event, groups in ours.items():
        merged[event] = [*merged.get(event, []), *groups]
    return merged


def positions(hooks: Any) -> list[tuple[str, int, int]]:
    """Where our commands sit in a ``hooks`` object: (event, group index, handler index)."""
    found = []
    for event, groups in (hooks.items() if isinstance(hooks, dict) else ()):
        for g, group in enumerate(groups if isinstance(groups, list) else []):
            for h, handler in enumerate(group.get("hooks", []) if isinstance(group, dict) else []):
                if isinstance(handler, dict) and is_ours(handler.get("command")):
                    found.append((event, g, h))
    return found


def codex_trust_hash(event_label: str, group: Mapping[str, Any], handler: Mapping[str, Any]) -> str:
    """The hash Codex records when the user trusts a command hook (``[hooks.state."<key>"].trusted_hash``).

    Codex 0.171 hashes the normalised hook: ``{"event_name": <snake_case
    event>, "matcher"?: ..., "hooks": [{"type": "command", "command",
    "timeout" (default 600), "async", "statusMessage"?}]}`` as JSON with
    sorted keys, no spaces, UTF-8, with SHA-256. Checked against the hashes
    Codex itself wrote on "Trust all and continue" (``tests/attention/test_reports.py``).
    """
    normalized: dict[str, Any] = {
        "type": "command",
        "command": handler["command"],
        "timeout": max(1, int(handler.get("timeout") or 600)),
        "async": bool(handler.get("async", False)),
    }
    if handler.get("statusMessage") is not None:
        normalized["statusMessage"] = handler["statusMessage"]
    identity: dict[str, Any] = {"event_name": event_label, "hooks": [normalized]}
    if group.get("matcher") is not None:
        identity["matcher"] = group["matcher"]
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def snake_case(event: str) -> str:
    """``PermissionRequest`` -> ``permission_request`` (Codex's event labels in hook keys)."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(event))


def plugin_text() -> bytes:
    return PLUGIN_SOURCE.read_bytes()
