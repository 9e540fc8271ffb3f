"""The user's projects: folders under ``~/projects``, each a git repository whose commits sync."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lib.settings import Settings, SettingsError, validate


class ProjectError(ValueError):
    """A project cannot be created; the text says why, for the page."""


def list_projects(settings: Settings) -> list[str]:
    """Folders directly under ``~/projects`` (hidden ones left out), sorted."""
    root = settings.projects_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def create_project(settings: Settings, name: str) -> Path:
    """Make ``~/projects/<name>`` and ``git init`` it, so its commits can sync."""
    try:
        clean = validate("default_project", name)
    except SettingsError as exc:
        raise ProjectError(str(exc)) from None
    if not clean:
        raise ProjectError("type a name for the new project folder")
    folder = settings.projects_dir / clean
    if folder.exists():
        raise ProjectError(f"a project named '{clean}' already exists: pick it from the list")
    folder.mkdir(parents=True)
    proc = subprocess.run(["git", "init", "-q", str(folder)], capture_output=True, text=True, timeout=30,
                          env={"HOME": str(settings.home), "PATH": "/usr/local/bin:/usr/bin:/bin"})
    if proc.returncode != 0:
        raise ProjectError(f"created {folder} but git init failed: {proc.stderr.strip()[:200]}")
    return folder
