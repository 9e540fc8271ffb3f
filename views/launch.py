"""Launch: a card per agent, a project to work in, one click to a running session.

A card never offers "Start" for a session that could only fail: an agent
that is not installed or not configured says why on its card and offers the
fix instead (install now, paste a token, set the host).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from lib.agents import config as agent_config
from lib.agents import installer
from lib.agents import AGENTS, Agent, find_executable
from lib.settings import Settings, SettingsError, load_settings, validate
from lib.agents.setup import FAILED, PENDING, RUNNING
from lib.runtime import runtime
from lib.terminal.session import SessionError

NEW_PROJECT = "+ New project"


# ---------------------------------------------------------------- projects


def list_projects(settings: Settings) -> list[str]:
    """Folders directly under ``~/projects`` (hidden ones left out), sorted."""
    root = settings.projects_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def create_project(settings: Settings, name: str) -> Path:
    """Make ``~/projects/<name>`` and ``git init`` it, so its commits can sync.

    Raises ``ValueError`` with a readable message for a bad or taken name.
    """
    try:
        clean = validate("default_project", name)
    except SettingsError as exc:
        raise ValueError(str(exc)) from None
    if not clean:
        raise ValueError("type a name for the new project folder")
    folder = settings.projects_dir / clean
    if folder.exists():
        raise ValueError(f"a project named '{clean}' already exists: pick it from the list")
    folder.mkdir(parents=True)
    proc = subprocess.run(["git", "init", "-q", str(folder)], capture_output=True, text=True, timeout=30,
                          env={"HOME": str(settings.home), "PATH": "/usr/local/bin:/usr/bin:/bin"})
    if proc.returncode != 0:
        raise ValueError(f"created {folder} but git init failed: {proc.stderr.strip()[:200]}")
    return folder


# ---------------------------------------------------------------- cards


@dataclass(frozen=True)
class CardState:
    """What one card shows: can it start, and if not, why and what fixes it."""

    installed: bool
    version: str | None
    model: str | None
    endpoint: str | None
    problem: str | None  # None = ready to start
    fix: str | None  # "install" | "token" | "host" | None


def card_state(agent: Agent, settings: Settings, token: str | None) -> CardState:
    """Decide a card's state from the install on disk, the settings and the token."""
    version = installer.installed_version(agent, settings.home)
    path = find_executable(agent, settings.home)
    installed = path is not None and (not agent.npm_package or installer.is_installed(agent, settings.home))
    model = agent_config.model_for(agent, settings)
    endpoint = agent_config.endpoint_for(agent.id, settings)
    if not installed:
        setup = runtime().setup
        step = setup.step(f"install:{agent.id}")
        if step is not None and (step.state == RUNNING or (step.state == PENDING and setup.state() == RUNNING)):
            why = "being installed by the boot setup…"
        elif step is not None and step.state == FAILED:
            why = f"install failed: {step.error}"
        else:
            why = f"not installed ({agent.npm_spec or agent.executable} is missing)"
        return CardState(False, version, model, endpoint, why, "install" if agent.npm_package else None)
    reason = agent_config.config_status(agent.id, settings, token)
    if reason == agent_config.NO_HOST:
        return CardState(True, version, model, endpoint, reason, "host")
    if reason is not None:
        return CardState(True, version, model, endpoint, reason, "token")
    return CardState(True, version, model, endpoint, None, None)


def _start(agent: Agent, cwd: Path, resume: bool = False) -> None:
    try:
        session = runtime().sessions.create(agent=agent.id, label=None, cwd=str(cwd), resume=resume)
    except SessionError as exc:
        st.error(str(exc))
        return
    st.session_state["open_session"] = session.id
    st.switch_page("views/sessions.py")


def _project_picker(settings: Settings) -> tuple[Path | None, str | None]:
    """The folder sessions start in, or (None, name) when a new project is wanted."""
    projects = list_projects(settings)
    options = [*projects, NEW_PROJECT]
    default = settings.default_project if settings.default_project in projects else (projects[0] if projects else NEW_PROJECT)
    left, right = st.columns([2, 3])
    choice = left.selectbox("Project", options, index=options.index(default), key="launch_project",
                            help=f"Folders in {settings.projects_dir}. Commits there sync to your workspace.")
    if choice == NEW_PROJECT:
        name = right.text_input("New project folder", key="launch_new_project", placeholder="my-project",
                                help="Created under ~/projects and set up with git init.")
        return None, name
    right.caption(f"Sessions start in `{settings.projects_dir / choice}`")
    return settings.projects_dir / choice, None


def _render_card(agent: Agent, state: CardState, settings: Settings, target: Path | None, new_name: str | None) -> None:
    with st.container(border=True):
        st.subheader(agent.name)
        st.caption(agent.description)
        if agent.npm_package:
            st.markdown(f"**Installed:** {'yes, ' + (state.version or '') if state.installed else 'no'}  \n"
                        f"**Model:** `{state.model}`  \n"
                        f"**Endpoint:** `{state.endpoint or 'none'}`")
        else:
            st.markdown(f"**Command:** `{' '.join(agent.command)}`")
        if state.problem:
            st.warning(state.problem, icon=":material/warning:")
            if state.fix == "install":
                if st.button("Install now", key=f"install-{agent.id}", icon=":material/download:"):
                    if runtime().setup.install_agent(agent.id, settings):
                        st.toast(f"Installing {agent.name}; this page updates when it is done.")
                    else:
                        st.toast("Setup is busy; try again in a moment.")
                    st.rerun()
            elif state.fix == "token":
                st.caption("Paste a personal access token in the sidebar's **Workspace token** form.")
            elif state.fix == "host":
                st.caption("Set `DATABRICKS_HOST` in app.yaml (or the environment) and restart, "
                           "or set a gateway host in the sidebar.")
            return
        resume = bool(agent.resume_command) and target is not None and st.checkbox(
            "Continue the last conversation in this folder", key=f"resume-{agent.id}"
        )
        if st.button(f"Start {agent.name}", key=f"start-{agent.id}", type="primary", icon=":material/play_arrow:",
                     width="stretch"):
            cwd = target
            if cwd is None:
                try:
                    cwd = create_project(settings, new_name or "")
                except ValueError as exc:
                    st.error(str(exc))
                    return
            _start(agent, cwd, resume)


def render() -> None:
    """The page body (only when Streamlit runs this file as a page)."""
    settings = load_settings()
    token = runtime().tokens.token()
    st.title("Launch an agent")
    target, new_name = _project_picker(settings)
    states = {agent.id: card_state(agent, settings, token) for agent in AGENTS}
    columns = st.columns(3)
    for index, agent in enumerate(AGENTS):
        with columns[index % 3]:
            _render_card(agent, states[agent.id], settings, target, new_name)
    if any(s.problem and s.problem.startswith("being installed") for s in states.values()):
        st.caption("Installing agent CLIs in the background; refresh to see progress, or open the Setup page.")


if __name__ == "__main__":
    render()
