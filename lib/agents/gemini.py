"""Gemini CLI: Google's CLI, on Gemini models served by the workspace.

Reads ``~/.gemini/.env`` (model, base URL, key, bearer auth, headers),
``~/.gemini/settings.json`` (API-key auth, approval mode, no usage
statistics), ``~/.gemini/trustedFolders.json`` (it skips ``.env`` in an
untrusted folder) and the user policies in ``~/.gemini/policies/``.
"""

from __future__ import annotations

from pathlib import Path

from lib.agents import files
from lib.agents.base import (
    CODING_AGENT_HEADER,
    CODING_AGENT_HEADER_VALUE,
    Agent,
    ConfigResult,
    ConfigState,
    model_base_url,
    unconfigured,
)
from lib.settings import PermissionMode, Settings

# settings.json ``general.defaultApprovalMode``. Gemini ignores "yolo" there
# (only its command-line flag turns it on), so "run everything" is a user
# policy that allows every tool, which is what the flag does.
APPROVAL_MODES = {PermissionMode.ASK: "default", PermissionMode.EDITS: "auto_edit", PermissionMode.ALL: "default"}
ALLOW_ALL_POLICY = (
    '# Written by Coda: "run everything without asking".\n'
    '[[rule]]\ntoolName = "*"\ndecision = "allow"\npriority = 100\n'
)
POLICY_FILE = Path(".gemini") / "policies" / "coda.toml"


def endpoint(settings: Settings) -> str | None:
    return model_base_url(settings, gateway="gemini", serving="serving-endpoints/google")


def _write_policy(home: Path, mode: PermissionMode) -> None:
    path = home / POLICY_FILE
    if mode is PermissionMode.ALL:
        files.write_text(path, ALLOW_ALL_POLICY)
    else:
        path.unlink(missing_ok=True)


def write_config(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.gemini/.env``, ``settings.json``, the trusted projects folder and the approval policy."""
    folder = home / ".gemini"
    settings_path = folder / "settings.json"
    ours = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"defaultApprovalMode": APPROVAL_MODES[settings.permission_mode]},
    }
    files.write_json(settings_path, files.deep_merge(files.read_json_object(settings_path), ours))
    _write_policy(home, settings.permission_mode)
    # Trusting the projects folder trusts every project below it.
    trusted_path = folder / "trustedFolders.json"
    files.write_json(trusted_path, {**files.read_json_object(trusted_path), str(settings.projects_dir): "TRUST_FOLDER"})
    written = (settings_path, trusted_path)
    base_url = endpoint(settings)
    missing = unconfigured("gemini", settings, token, base_url, written)
    if missing:
        return missing
    env_path = folder / ".env"
    text = files.update_env_file(
        env_path,
        {
            "GEMINI_MODEL": settings.gemini_model,
            "GOOGLE_GEMINI_BASE_URL": base_url,
            "GEMINI_API_KEY": token,
            "GEMINI_API_KEY_AUTH_MECHANISM": "bearer",
            "GEMINI_CLI_CUSTOM_HEADERS": f"{CODING_AGENT_HEADER}: {CODING_AGENT_HEADER_VALUE}",
        },
    )
    files.write_text(env_path, text)
    return ConfigResult("gemini", ConfigState.OK, "", (env_path, *written))


def trust(home: Path, folder: Path) -> None:
    """Gemini accepts a trusted parent, so only add the folder when no parent covers it."""
    path = home / ".gemini" / "trustedFolders.json"
    data = files.read_json_object(path)
    covered = any(
        level == "TRUST_FOLDER" and (folder == Path(p) or Path(p) in folder.parents) for p, level in data.items()
    )
    if not covered:
        files.write_json(path, {**data, str(folder): "TRUST_FOLDER"})


AGENT = Agent(
    id="gemini",
    name="Gemini CLI",
    description="Google's coding agent, on Gemini models served by your workspace.",
    command=("gemini",),
    resume_command=("gemini", "--resume", "latest"),
    npm_package="@google/gemini-cli",
    npm_version="0.61.0",
    model_field="gemini_model",
    config_files=(".gemini/.env", ".gemini/settings.json", ".gemini/trustedFolders.json"),
    write_config=write_config,
    trust=trust,
    endpoint=endpoint,
)
