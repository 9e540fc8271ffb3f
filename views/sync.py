"""Sync page: where each project was last uploaded, a "Sync now" button, and a live log.

UI only: everything it shows or does comes from ``lib.sync``. The page stays
current by itself: a watchdog observer (one per server, held by ``lib.sync``)
bumps a counter whenever a sync log changes, and a tiny fragment polls that
counter once a second and reruns the page only when it moved, so an idle page
reads no files and redraws nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import streamlit as st

from lib.sync import is_running, log_watcher, project_status, recent_records, start_sync_now
from lib.sync.credentials import read_credentials
from lib.sync.records import tail_text_log

HOME = Path.home()
_SEEN = "sync_page_log_version"
_RESULT_ICON = {"ok": ":material/check_circle:", "error": ":material/error:", "skipped": ":material/block:"}


@st.cache_resource(show_spinner=False)
def _watcher(home: str):  # noqa: ANN202 - a lib.sync.watch.LogWatcher
    # lib.sync keeps the observer at module level, so a "clear cache" from any
    # browser cannot stop it or start a second one; this only shares the handle.
    return log_watcher(Path(home))


def _ago(iso: str | None) -> str:
    if not iso:
        return "never"
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    seconds = int((datetime.now(timezone.utc) - when).total_seconds())
    if seconds < 60:
        ago = f"{max(seconds, 0)} s ago"
    elif seconds < 3600:
        ago = f"{seconds // 60} min ago"
    elif seconds < 86400:
        ago = f"{seconds // 3600} h ago"
    else:
        ago = f"{seconds // 86400} days ago"
    return f"{when.astimezone().strftime('%Y-%m-%d %H:%M:%S')} ({ago})"


@st.fragment(run_every=1)
def _live_watch() -> None:
    """Rerun the page when the logs changed since this session last drew it."""
    version = _watcher(str(HOME)).version
    if st.session_state.get(_SEEN) != version:
        st.rerun()


def _target_banner() -> None:
    creds = read_credentials(HOME)
    if creds.workspace_ready:
        st.caption(f"Commits upload to **{creds.host}** as **{creds.owner}**.")
    elif creds.owner:
        st.info(
            "No workspace token is set, so commits are mirrored to a local folder "
            "(`~/.coda/workspace-mirror`). Set a token in the sidebar to upload to the workspace.",
            icon=":material/info:",
        )
    else:
        st.info(
            "The workspace owner and token are not known yet, so commits are mirrored to a local folder "
            "(`~/.coda/workspace-mirror`). Finish setup and set a token in the sidebar to upload to the workspace.",
            icon=":material/info:",
        )


def _project_card(row) -> None:  # noqa: ANN001 - lib.sync.status.ProjectStatus
    with st.container(border=True):
        head, action = st.columns([3, 1], vertical_alignment="center")
        icon = _RESULT_ICON.get(row.result or "", ":material/schedule:")
        head.markdown(f"#### {icon} {row.project}")
        running = is_running(HOME, row.project)
        if action.button(
            "Syncing…" if running else "Sync now",
            key=f"sync-now-{row.project}",
            disabled=running,
            icon=":material/sync:",
            width="stretch",
        ):
            if start_sync_now(HOME, row.project):
                st.toast(f"Sync of {row.project} started")
        commit = (row.commit or "")[:8]
        details = [f"Last sync: {_ago(row.last_time)}"]
        if commit:
            details.append(f"commit `{commit}` {row.commit_message or ''}".rstrip())
        if row.result:
            details.append(
                f"{row.uploaded} uploaded · {row.deleted} deleted · {row.skipped} skipped"
                + (f" · {row.failed} failed" if row.failed else "")
                + f" · {row.duration_s:.1f} s"
            )
        st.markdown("  \n".join(details))
        if row.target == "workspace":
            st.markdown(f"Workspace folder: [{row.remote_path}]({row.url})")
        else:
            st.markdown(f"Local mirror folder: `{row.remote_path}`")
        if row.result == "error" and row.error:
            more = f" {row.pending} changes are still waiting to be uploaded." if row.pending else ""
            st.error(row.error + more, icon=":material/error:")
        elif row.result == "skipped" and row.error:
            st.warning(row.error, icon=":material/block:")
        if row.result == "ok" and row.skipped:
            what = "1 file was" if row.skipped == 1 else f"{row.skipped} files were"
            st.caption(f"{what} left out (too big, or a symbolic link); see the live log below.")


def _history(records: list[dict]) -> None:
    synced = [r for r in records if r.get("result") in ("ok", "error")][:30]
    if not synced:
        return
    st.subheader("Recent syncs")
    frame = pd.DataFrame(
        {
            "time": [r.get("time") for r in synced],
            "project": [r.get("project") for r in synced],
            "result": [r.get("result") for r in synced],
            "duration (s)": [float(r.get("duration_s") or 0) for r in synced],
            "files": [int(r.get("uploaded") or 0) + int(r.get("deleted") or 0) for r in synced],
            "commit": [(r.get("commit") or "")[:8] for r in synced],
            "error": [r.get("error") or "" for r in synced],
        }
    )
    # Oldest first, one bar per run (two runs in the same second must not merge).
    chart = frame.iloc[::-1].reset_index(drop=True)
    pairs = zip(chart["time"], chart["project"], strict=True)
    chart["run"] = [f"{i + 1:02d} {t[11:19]} {p}" for i, (t, p) in enumerate(pairs)]
    left, right = st.columns(2)
    left.caption("Duration (s)")
    left.bar_chart(chart, x="run", y="duration (s)", height=220)
    right.caption("Files uploaded + deleted")
    right.bar_chart(chart, x="run", y="files", height=220)
    st.dataframe(frame, hide_index=True, width="stretch")


def render() -> None:
    st.session_state[_SEEN] = _watcher(str(HOME)).version  # what this run shows
    st.title("Workspace sync")
    st.caption(
        "Every `git commit` in `~/projects/<name>` uploads that project to "
        "`/Workspace/Users/<you>/projects/<name>`. Only changed files are sent; "
        "files deleted or renamed locally are removed there too."
    )
    _target_banner()
    rows = project_status(HOME)
    if not rows:
        st.info("No projects yet: create or clone a repository under `~/projects/` and commit.")
    for row in rows:
        _project_card(row)
    _history(recent_records(HOME, 30))
    st.subheader("Live log")
    lines = tail_text_log(HOME, 60)
    st.code("\n".join(lines) if lines else "(no syncs yet)", language=None, wrap_lines=True)
    _live_watch()


render()
