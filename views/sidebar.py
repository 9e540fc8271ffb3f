"""The sidebar on every page: setup summary, workspace token, and settings.

Saving settings validates everything first (a bad value changes nothing and
says why), then rewrites every agent's config files at once: the next session
uses the new values, running sessions keep what they started with. The token
form never shows a token back; a token that stops working is reported here
with what to do.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from lib.agents import AGENTS, ConfigState
from lib.agents.setup import FAILED, OK, RUNNING, SKIPPED
from lib.runtime import runtime
from lib.settings import (
    BUDGET_FIELDS,
    MAX_DAILY_TOKENS,
    PERMISSION_WARNING,
    THEMES,
    PermissionMode,
    Settings,
    SettingsError,
    load_settings,
    reset_overrides,
    save_overrides,
)
from lib.workspace import endpoints, tokens
from views.plain import md

_KEY = "sb_"  # prefix of the settings widgets' keys, cleared after save/reset


def _setup_summary() -> None:
    setup = runtime().setup
    state = setup.state()
    steps = setup.steps()
    failed = [s for s in steps if s.state == FAILED]
    if state == OK:
        took = f" in {setup.total_s:.1f} s" if setup.total_s is not None else ""
        st.caption(f":material/check_circle: Setup done{took}")
    elif state == FAILED:
        st.error(f"Setup: {len(failed)} step(s) failed: {', '.join(s.label for s in failed)}", icon=":material/error:")
        st.page_link("views/setup.py", label="See errors and retry", icon=":material/build:")
    elif state == RUNNING:
        done = sum(1 for s in steps if s.state in (OK, SKIPPED, FAILED))
        st.progress(done / len(steps), text=f"Setting up… {done}/{len(steps)}")
    else:
        st.caption("Setup has not started yet.")


def _model_credentials() -> None:
    """Which credential the agents' model calls use through the app's gateway."""
    status = runtime().credentials.status()
    st.markdown("**Model calls**")
    if status.label:
        st.caption(f"Through the app's gateway, as {md(status.label)} ({status.state}).")
    if not status.message:
        return
    if status.state in ("refused", "failed"):
        st.error(md(status.message), icon=":material/key_off:")
    elif status.state == "none":  # nothing set up yet: shells and sync work, agents need one step
        st.info(md(status.message), icon=":material/key:")
    else:
        st.caption(md(status.message))


def _token_section(settings: Settings) -> None:
    store = runtime().tokens
    status = store.verify_in_background(settings)
    st.markdown("**Workspace token**")
    if status.state == tokens.OK:
        who = f" for {md(status.user)}" if status.user else ""
        st.caption(f":material/check_circle: Works{who} (from {md(status.source)}).")
    elif status.state == tokens.UNCHECKED:
        st.caption(f"Token from {md(status.source)}; checking it…")
    elif status.state == tokens.UNREACHABLE:
        st.warning(md(status.message), icon=":material/cloud_off:")
    elif status.state == tokens.REJECTED:
        st.error(md(status.message), icon=":material/key_off:")
    else:
        st.info(md(status.message), icon=":material/key:")
    needs = status.state in (tokens.MISSING, tokens.REJECTED)
    with st.expander("Paste a new token" if not needs else "Paste a token", expanded=needs):
        with st.form("sb_token_form", clear_on_submit=True, border=False):
            st.text_input("Personal access token", type="password", key="sb_token_input",
                          placeholder="dapi…", help="Checked with the workspace before it is used. "
                          "It is kept in memory and in the agents' config files only.")
            st.form_submit_button("Use this token", on_click=_submit_token, args=(settings,))
        result = st.session_state.pop("sidebar_token_result", None)
        if result is not None:
            ok, message = result
            (st.success if ok else st.error)(message)


def _submit_token(settings: Settings) -> None:
    """Form callback: check the pasted token, then wipe it from the session state.

    Running before the script means the token is gone from Streamlit's state
    by the time anything is drawn, so no rerun can echo it back.
    """
    raw = st.session_state.get("sb_token_input") or ""
    st.session_state["sb_token_input"] = ""
    outcome = runtime().tokens.submit(settings, raw)
    del raw
    if outcome.state == tokens.OK:
        runtime().setup.rewrite_configs(load_settings())
        endpoints.clear_cache()
        message = f"Token works for {outcome.user}. Agent config files updated; new sessions use it."
        st.session_state["sidebar_token_result"] = (True, message)
    else:
        st.session_state["sidebar_token_result"] = (False, outcome.message)


def _model_input(label: str, field: str, current: str, names: list[str] | None) -> Any:
    key = _KEY + field
    if names:
        options = names if current in names else [current, *names]
        return st.selectbox(label, options, index=options.index(current), key=key, accept_new_options=True,
                            help="Serving endpoints of your workspace; you can also type a name.")
    return st.text_input(label, value=current, key=key, help="The serving endpoint name (the workspace "
                         "could not be asked for its list).")


def _clear_widgets() -> None:
    for key in [k for k in st.session_state if str(k).startswith(_KEY) and k != "sb_token_input"]:
        del st.session_state[key]


def _settings_section(settings: Settings) -> None:
    names = endpoints.endpoint_names(settings.databricks_host, runtime().tokens.token())
    if flash := st.session_state.pop("sidebar_flash", None):
        st.success(md(flash))
    with st.expander("Settings", expanded=False):
        with st.form("sb_settings_form", border=False):
            values: dict[str, Any] = {}
            for agent in AGENTS:
                if agent.model_field:
                    values[agent.model_field] = _model_input(f"{agent.name} model", agent.model_field,
                                                             getattr(settings, agent.model_field), names)
            values["gateway_host"] = st.text_input(
                "AI gateway host", value=settings.gateway_host or "", key=_KEY + "gateway_host",
                help="Empty: agents use the workspace's serving endpoints.")
            values["default_project"] = st.text_input(
                "Default project folder", value=settings.default_project, key=_KEY + "default_project",
                help="A folder name under ~/projects.")
            values["session_cap"] = st.number_input("Session cap", min_value=1, max_value=50, step=1,
                                                    value=settings.session_cap, key=_KEY + "session_cap")
            values["font_size"] = st.number_input("Terminal font size", min_value=8, max_value=32, step=1,
                                                  value=settings.font_size, key=_KEY + "font_size")
            values["theme"] = st.selectbox("Terminal theme", THEMES, index=THEMES.index(settings.theme),
                                           key=_KEY + "theme")
            values["copy_on_select"] = st.toggle(
                "Copy on select", value=settings.copy_on_select, key=_KEY + "copy_on_select",
                help="Selecting text in a terminal copies it to the clipboard. Either way Ctrl+C copies a "
                     "selection (^C without one), Ctrl+Shift+C copies, Ctrl+V pastes and right click pastes.")
            _attention_settings(settings, values)
            _budget_settings(settings, values)
            modes = list(PermissionMode)
            values["permission_mode"] = st.radio(
                "Agents may", modes, index=modes.index(settings.permission_mode), key=_KEY + "permission_mode",
                format_func=lambda mode: mode.label,
                help="Applies to every agent, from its next session. " + PERMISSION_WARNING)
            if settings.permission_mode is PermissionMode.ALL:
                st.warning(PERMISSION_WARNING, icon=":material/warning:")
            values["resume_on_start"] = st.toggle(
                "Resume my sessions when the app starts", value=settings.resume_on_start,
                key=_KEY + "resume_on_start",
                help="After a restart (every deploy restarts the app), sessions that were running start again "
                     "by themselves: same agent, folder and conversation. Off: they wait on the Sessions page "
                     "for you to resume them.")
            saved = st.form_submit_button("Save", type="primary")
        if saved:
            changes = {k: v for k, v in values.items() if v != _current(settings, k)}
            if not changes:
                st.info("Nothing changed.")
            else:
                try:
                    new = save_overrides(changes)
                except SettingsError as exc:
                    st.error(f"Not saved: {md(exc)}. Nothing was changed.")
                else:
                    _after_change(new, "Saved", budget=bool(BUDGET_FIELDS & changes.keys()))
        if st.button("Reset to deployment defaults", key="sb_reset", icon=":material/restart_alt:"):
            new = reset_overrides()
            _after_change(new, "Reset to deployment defaults",
                          budget=any(getattr(new, f) != getattr(settings, f) for f in BUDGET_FIELDS))


def _attention_settings(settings: Settings, values: dict[str, Any]) -> None:
    """Needs attention (lib.attention): how a session waiting in the background calls you."""
    values["notify_desktop"] = st.toggle(
        "Desktop notifications", value=settings.notify_desktop, key=_KEY + "notify_desktop",
        help="When a session you are not looking at needs input or finishes, the browser shows a "
             "notification (click it to open that session). The browser asks for permission once, when you "
             "click \"Allow notifications\" above the terminal.")
    values["notify_sound"] = st.toggle(
        "Sound when a session needs input", value=settings.notify_sound, key=_KEY + "notify_sound",
        help="A short tone from this page when a session you are not looking at starts waiting for you.")


def _budget_settings(settings: Settings, values: dict[str, Any]) -> None:
    """The daily token budget per session (lib.gateway.usage.Budget): how much, and whether calls stop."""
    values["session_daily_tokens"] = st.number_input(
        "Daily token budget per session", min_value=0, max_value=MAX_DAILY_TOKENS, step=10_000,
        value=settings.session_daily_tokens, key=_KEY + "session_daily_tokens",
        help="Model tokens (prompt and output) one session may use per day through the app. 0: no budget. "
             "The Sessions page warns from 80 %. Applies at once, to running sessions too.")
    values["budget_refuse"] = st.toggle(
        "Refuse calls over budget", value=settings.budget_refuse, key=_KEY + "budget_refuse",
        help="On: once a session spent its budget, its model calls are refused until tomorrow (the agent "
             "shows why). Off: the Sessions page only warns.")


def _current(settings: Settings, field: str) -> Any:
    value = getattr(settings, field)
    return "" if value is None else value


def _after_change(new: Settings, what: str, *, budget: bool = False) -> None:
    results = runtime().setup.rewrite_configs(new)
    failed = [r for r in results if r.status is ConfigState.FAILED]
    note = "; ".join(f"{r.target}: {r.reason}" for r in failed)
    st.session_state["sidebar_flash"] = (
        f"{what}. Agent config files rewritten"
        + (f" (except {note})" if note else "")
        + ". Running sessions keep their old settings; new sessions use these."
        + (" The token budget applies at once, to running sessions too." if budget else "")
    )
    _clear_widgets()
    st.rerun()


def render_sidebar() -> None:
    """Draw the sidebar; ``ui.py`` calls this on every page after authorization."""
    settings = load_settings()
    with st.sidebar:
        _setup_summary()
        st.divider()
        _model_credentials()
        st.divider()
        _token_section(settings)
        st.divider()
        _settings_section(settings)
