"""Editing the files agent CLIs read: JSON, TOML, INI and ``.env``, keeping what others wrote.

Every writer here is atomic (a CLI starting mid-write never sees half a
file) and private (mode 0600: most of these files hold a credential). Keys
the user or the CLI itself added to the same file survive a rewrite.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from lib import statefile

PRIVATE_MODE = 0o600

def read_json_object(path: Path) -> dict[str, Any]:
    """An existing JSON object to merge into; anything unreadable starts empty."""
    data = statefile.read_json(path, default={})
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    statefile.atomic_write(path, (json.dumps(data, indent=2) + "\n").encode(), PRIVATE_MODE)


def write_json_key(path: Path, data: dict[str, Any], key: str, value: Any) -> None:
    """``data`` (read from ``path``) written back with ``key`` set to ``value``, or without ``key`` when
    ``value`` is empty; nothing is written when that changes nothing."""
    if value == data.get(key) or (not value and key not in data):
        return
    if value:
        data[key] = value
    else:
        data.pop(key, None)
    write_json(path, data)


def deep_merge(base: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``ours`` laid over it; nested objects merge key by key."""
    merged = dict(base)
    for key, value in ours.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def update_env_file(path: Path, values: dict[str, str]) -> str:
    """``KEY=value`` lines: ours replaced in place or appended, the rest kept."""
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, OSError, UnicodeDecodeError):
        lines = []
    pending = dict(values)
    out: list[str] = []
    for line in lines:
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match and match.group(1) in values:
            key = match.group(1)
            if key in pending:
                out.append(f"{key}={pending.pop(key)}")
            continue  # a duplicate of one of our keys: drop it
        out.append(line)
    out.extend(f"{key}={value}" for key, value in pending.items())
    return "\n".join(out) + "\n"


def update_ini_default(text: str, values: dict[str, str], drop: tuple[str, ...] = ()) -> str:
    """Set keys in the ``[DEFAULT]`` section of an INI text, keeping every other line.

    ``configparser`` would lose comments and reorder profiles the user wrote
    by hand, so this edits lines.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().upper() == "[DEFAULT]"), None)
    if start is None:
        head = ["[DEFAULT]", *(f"{k} = {v}" for k, v in values.items())]
        rest = lines if lines else []
        return "\n".join(head + ([""] + rest if rest else [])) + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("[")), len(lines))
    pending = dict(values)
    section: list[str] = []
    for line in lines[start + 1 : end]:
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*[=:]", line)
        key = match.group(1).lower() if match else None
        if key in values:
            if key in pending:
                section.append(f"{key} = {pending.pop(key)}")
            continue
        if key in drop:
            continue
        section.append(line)
    # New keys go right after the header, before any blank separator line.
    section = [f"{k} = {v}" for k, v in pending.items()] + section
    return "\n".join(lines[: start + 1] + section + lines[end:]) + "\n"




_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_emit(table: dict[str, Any], path: list[str], out: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
    arrays = [(k, v) for k, v in table.items() if _is_table_array(v)]
    if path and (scalars or not tables):
        out.extend(["", "[" + ".".join(_toml_key(p) for p in path) + "]"])
    out.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars)
    for key, value in tables:
        _toml_emit(value, path + [key], out)
    for key, items in arrays:
        for item in items:
            out.extend(["", "[[" + ".".join(_toml_key(p) for p in path + [key]) + "]]"])
            out.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items())


def toml_dumps(data: dict[str, Any]) -> str:
    """Serialize what ``tomllib.loads`` returns back to TOML text.

    Python reads TOML but cannot write it, and Codex keeps its own entries
    (trusted projects, notices) in the same ``config.toml``; to change our
    keys and keep those we parse, update and write the whole document.
    """
    out: list[str] = []
    _toml_emit(data, [], out)
    return "\n".join(out).lstrip("\n") + "\n"


def read_toml(path: Path) -> dict[str, Any] | None:
    """A TOML file as a dict: empty when missing, ``None`` when unreadable (leave it alone)."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def write_toml(path: Path, data: dict[str, Any]) -> None:
    statefile.atomic_write(path, toml_dumps(data).encode(), PRIVATE_MODE)


def write_text(path: Path, text: str) -> None:
    statefile.atomic_write(path, text.encode(), PRIVATE_MODE)
