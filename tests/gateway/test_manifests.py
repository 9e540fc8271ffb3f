"""The deployment manifests: ``app.yaml`` (committed, used as is by an app created from the Git
URL), ``app.yaml.template``, the bundle's ``databricks.yml``, and ``python app.py``.

The manifests are checked against the fields the platform accepts (Databricks
Apps' ``app.yaml``: ``command`` and ``env`` entries of ``name`` plus exactly
one of ``value``/``valueFrom``; the bundle's app resource and its resource
types), and against each other: every ``valueFrom`` names a resource the
bundle declares, and every model the app uses is a serving endpoint the
bundle grants CAN_QUERY on.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from lib import settings as app_settings
from tests.appserver import REPO, start_app

APP_YAML_KEYS = {"command", "env"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUNDLE_KEYS = {"bundle", "variables", "resources", "targets", "include", "workspace", "permissions", "sync",
               "artifacts", "run_as", "presets", "experimental", "scripts"}
APP_KEYS = {"name", "description", "source_code_path", "config", "resources", "permissions", "user_api_scopes",
            "budget_policy_id", "compute_size", "git_source", "lifecycle"}
# App resource types and the permissions each accepts.
RESOURCE_TYPES = {
    "secret": {"READ", "WRITE", "MANAGE"},
    "serving_endpoint": {"CAN_QUERY", "CAN_MANAGE", "CAN_VIEW"},
    "sql_warehouse": {"CAN_USE", "CAN_MANAGE", "IS_OWNER"},
    "job": {"CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"},
    "uc_securable": {"READ_VOLUME", "WRITE_VOLUME", "EXECUTE"},
    "database": {"CAN_CONNECT_AND_CREATE"},
    "genie_space": {"CAN_VIEW", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"},
    "app": {"CAN_USE"},
}
RESOURCE_FIELDS = {"secret": {"scope", "key", "permission"}, "serving_endpoint": {"name", "permission"}}
MODEL_ENV = {"ANTHROPIC_MODEL": "anthropic_model", "CODEX_MODEL": "codex_model", "GEMINI_MODEL": "gemini_model",
             "OPENCODE_MODEL": "opencode_model"}


def _load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def _resolve(value: str, variables: dict) -> str:
    """``${var.x}`` with the variable's default, as ``databricks bundle`` does without overrides."""
    return re.sub(r"\$\{var\.([A-Za-z0-9_]+)\}", lambda m: str(variables[m.group(1)]["default"]), value)


def check_app_yaml(doc: dict) -> list[str]:
    """What the platform would reject in an ``app.yaml``; empty when it is fine."""
    problems = [f"unknown key {k!r}" for k in doc if k not in APP_YAML_KEYS]
    command = doc.get("command")
    if not (isinstance(command, list) and command and all(isinstance(c, str) and c for c in command)):
        problems.append("command must be a non-empty list of strings (it runs without a shell)")
    names = []
    for entry in doc.get("env") or []:
        if not isinstance(entry, dict) or set(entry) - {"name", "value", "valueFrom"}:
            problems.append(f"env entry {entry!r} has unknown fields")
            continue
        if not ENV_NAME.match(str(entry.get("name", ""))):
            problems.append(f"env name {entry.get('name')!r} is not a variable name")
        if ("value" in entry) == ("valueFrom" in entry):
            problems.append(f"env {entry.get('name')}: exactly one of value and valueFrom")
        if not isinstance(entry.get("value", entry.get("valueFrom")), str):
            problems.append(f"env {entry.get('name')}: the value must be a string (quote numbers)")
        names.append(entry.get("name"))
    if len(names) != len(set(names)):
        problems.append("an env name appears twice")
    return problems


def check_bundle(doc: dict) -> list[str]:
    problems = [f"unknown top-level key {k!r}" for k in doc if k not in BUNDLE_KEYS]
    if not (doc.get("bundle") or {}).get("name"):
        problems.append("bundle.name is required")
    variables = doc.get("variables") or {}
    apps = (doc.get("resources") or {}).get("apps") or {}
    if not apps:
        problems.append("no app resource")
    for key, app in apps.items():
        problems += [f"apps.{key}: unknown field {k!r}" for k in app if k not in APP_KEYS]
        name = _resolve(str(app.get("name", "")), variables)
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,28}[a-z0-9]", name):
            problems.append(f"apps.{key}.name {name!r}: 2-30 lowercase letters, digits and dashes")
        if not app.get("source_code_path"):
            problems.append(f"apps.{key}.source_code_path is required")
        seen = set()
        for res in app.get("resources") or []:
            kinds = [k for k in res if k in RESOURCE_TYPES]
            if len(kinds) != 1 or set(res) - {"name", "description", *RESOURCE_TYPES}:
                problems.append(f"resource {res.get('name')!r}: exactly one resource type and name/description")
                continue
            kind = kinds[0]
            spec = res[kind]
            if kind in RESOURCE_FIELDS and set(spec) != RESOURCE_FIELDS[kind]:
                problems.append(f"resource {res.get('name')!r}: {kind} needs {sorted(RESOURCE_FIELDS[kind])}")
            if spec.get("permission") not in RESOURCE_TYPES[kind]:
                problems.append(f"resource {res.get('name')!r}: {kind} permission {spec.get('permission')!r}")
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(res.get("name", ""))) or res["name"] in seen:
                problems.append(f"resource name {res.get('name')!r} is not a unique key")
            seen.add(res.get("name"))
    return problems


def test_committed_app_yaml_and_template_are_valid_and_the_same() -> None:
    app, template = _load("app.yaml"), _load("app.yaml.template")
    assert check_app_yaml(app) == []
    assert app == template, "app.yaml.template must say what the committed app.yaml says"
    env = {e["name"]: e for e in app["env"]}
    assert env["HOME"]["value"] == "/app/python/source_code"
    for var, field in MODEL_ENV.items():  # the defaults the app would use anyway
        assert env[var]["value"] == getattr(app_settings.Settings(home=Path("/h")), field)
    assert app["command"][:2] == ["python", "app.py"]


def test_bundle_is_valid_and_backs_app_yaml() -> None:
    bundle, app = _load("databricks.yml"), _load("app.yaml")
    assert check_bundle(bundle) == []
    variables = bundle["variables"]
    (coda,) = bundle["resources"]["apps"].values()
    assert coda["source_code_path"] == "."
    resources = {r["name"]: r for r in coda["resources"]}
    for entry in app["env"]:
        if "valueFrom" in entry:
            assert entry["valueFrom"] in resources, f"{entry['name']} needs resource {entry['valueFrom']!r}"
    granted = {_resolve(r["serving_endpoint"]["name"], variables) for r in resources.values()
               if "serving_endpoint" in r and r["serving_endpoint"]["permission"] == "CAN_QUERY"}
    models = {e["value"] for e in app["env"] if e["name"] in MODEL_ENV}
    assert models <= granted, f"the service principal could not query {sorted(models - granted)}"


def test_the_checks_catch_what_the_platform_refuses() -> None:
    assert check_app_yaml({"command": "streamlit run app.py"})  # a string: there is no shell
    assert check_app_yaml({"env": [{"name": "X", "value": "1", "valueFrom": "k"}]})
    assert check_app_yaml({"command": ["x"], "env": [{"name": "N", "value": 5}]})
    bad = {"bundle": {"name": "b"}, "resources": {"apps": {"a": {
        "name": "Coda_App", "source_code_path": ".",
        "resources": [{"name": "e", "serving_endpoint": {"name": "m", "permission": "CAN_READ"}}]}}}}
    assert len(check_bundle(bad)) == 2


def test_python_app_py_starts_the_server(tmp_path: Path) -> None:
    """What the platform runs without an app.yaml; the platform's STREAMLIT_SERVER_* variables apply."""
    server = start_app(tmp_path / "home", {"STREAMLIT_SERVER_HEADLESS": "true"},
                       command=[sys.executable, "app.py"])
    try:
        status, body = server.request("GET", "/health")
        assert status == 200 and body["status"] == "ok"
        status, _ = server.request("GET", "/api/sessions")
        assert status == 200
    finally:
        server.stop()
