"""Launch: a card per agent, a project to work in, one click to a running session.

A card never offers "Start" for a session that could only fail: an agent
that is not installed or not configured says why on its card and offers the
fix instead (install now, paste a token, set the host).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lib.agents import AGENTS, Agent
from lib.agents.readiness import Fix, Readiness, readiness
from lib.projects import ProjectError, create_project, list_projects
from lib.runtime import runtime
from lib.settings import PERMISSION_WARNING, PermissionMode, Settings, load_settings
from lib.terminal.errors import SessionError
from views.plain import md

NEW_PROJECT = "+ New project"


def _start(agent: Agent, cwd: Path, resume: bool = False) -> None:
    try:
        session = runtime().sessions.create(agent=agent.id, label=None, cwd=str(cwd), resume=resume)
    except SessionError as exc:
        st.error(md(exc))
        return
    st.session_state["open_session"] = session.id
    st.switch_page("views/sessions.py")


def _project_picker(settings: Settings) -> tuple[Path | None, str | None]:
    """The folder sessions start in, or (None, name) when a new project is wanted."""
    projects = list_projects(settings)
    options = [*projects, NEW_PROJECT]
    fallback = projects[0] if projects else NEW_PROJECT
    default = settings.default_project if settings.default_project in projects else fallback
    left, right = st.columns([2, 3])
    choice = left.selectbox("Project", options, index=options.index(default), key="launch_project",
                            help=f"Folders in {md(settings.projects_dir)}. Commits there sync to your workspace.")
    if choice == NEW_PROJECT:
        name = right.text_input("New project folder", key="launch_new_project", placeholder="my-project",
                                help="Created under ~/projects and set up with git init.")
        return None, name
    right.caption(f"Sessions start in {md(settings.projects_dir / choice)}")
    return settings.projects_dir / choice, None


def _render_card(agent: Agent, state: Readiness, settings: Settings, target: Path | None, new_name: str | None) -> None:
    with st.container(border=True):
        st.subheader(agent.name)
        st.caption(agent.description)
        if agent.npm_package:
            st.markdown(f"**Installed:** {md('yes, ' + (state.version or '')) if state.installed else 'no'}  \n"
                        f"**Model:** {md(state.model)}  \n"
                        f"**Endpoint:** {md(state.endpoint or 'none')}  \n"
                        f"**Permissions:** {settings.permission_mode.label}")
        else:
            st.markdown(f"**Command:** `{' '.join(agent.command)}`")
        if state.problem:
            st.warning(md(state.problem), icon=":material/warning:")
            if state.fix is Fix.INSTALL:
                if st.button("Install now", key=f"install-{agent.id}", icon=":material/download:"):
                    if runtime().setup.install_agent(agent.id, settings):
                        st.toast(f"Installing {agent.name}; this page updates when it is done.")
                    else:
                        st.toast("Setup is busy; try again in a moment.")
                    st.rerun()
            elif state.fix is Fix.TOKEN:
                st.caption("Paste a personal access token in the sidebar's **Workspace token** form.")
            elif state.fix is Fix.HOST:
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
                except ProjectError as exc:
                    st.error(md(exc))
                    return
            _start(agent, cwd, resume)


def render() -> None:
    """The page body (only when Streamlit runs this file as a page)."""
    settings = load_settings()
    token = runtime().model_access() or runtime().tokens.token()
    st.title("Launch an agent")
    if settings.permission_mode is PermissionMode.ALL:
        st.warning(f"{settings.permission_mode.label}: {PERMISSION_WARNING}", icon=":material/warning:")
    target, new_name = _project_picker(settings)
    states = {agent.id: readiness(agent, settings, token, runtime().setup) for agent in AGENTS}
    columns = st.columns(3)
    for index, agent in enumerate(AGENTS):
        with columns[index % 3]:
            _render_card(agent, states[agent.id], settings, target, new_name)
    if any(s.installing for s in states.values()):
        st.caption("Installing agent CLIs in the background; refresh to see progress, or open the Setup page.")


if __name__ == "__main__":
    render()
