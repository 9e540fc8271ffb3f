"""Sync page: where each project was last uploaded, a "Sync now" button, and a live log.

UI only: everything it shows or does comes from ``lib.sync`` (through the
package's exports), and which runs count or what to warn about is decided
there. The page stays current by itself: a watchdog observer (one per server,
held by ``lib.sync``) bumps a counter whenever a sync log changes, and a tiny
fragment polls that counter once a second and reruns the page only when it
moved, so an idle page reads no files and redraws nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from lib.projects import list_projects
from lib.settings import load_settings
from lib.sync import (
    Destination,
    DestinationState,
    ProjectStatus,
    RetryEntry,
    RetryKind,
    SyncRecord,
    SyncResult,
    TargetKind,
    destination,
    history,
    is_running,
    log_watcher,
    pending_retry,
    project_status,
    retry_now,
    start_sync_now,
    tail_text_log,
)
from lib.timefmt import when_and_ago
from views.plain import md, url

_SEEN = "sync_page_log_version"
_RESULT_ICON = {
    SyncResult.OK: ":material/check_circle:",
    SyncResult.ERROR: ":material/error:",
    SyncResult.SKIPPED: ":material/block:",
}
_NEVER_ICON = ":material/schedule:"


@st.cache_resource(show_spinner=False)
def _watcher(home: str):  # noqa: ANN202 - a lib.sync.watch.LogWatcher
    # lib.sync keeps the observer at module level, so a "clear cache" from any
    # browser cannot stop it or start a second one; this only shares the handle.
    return log_watcher(Path(home))


@st.fragment(run_every=1)
def _live_watch(home: str) -> None:
    """Rerun the page when the logs changed since this session last drew it."""
    if st.session_state.get(_SEEN) != _watcher(home).version:
        st.rerun()


def _target_banner(where: Destination) -> None:
    if where.state == DestinationState.WORKSPACE:
        st.caption(f"Commits upload to **{md(where.host)}** as **{md(where.owner)}**.")
    elif where.state == DestinationState.NO_TOKEN:
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


def _project_card(home: Path, row: ProjectStatus) -> None:
    last = row.last
    with st.container(border=True):
        head, action = st.columns([3, 1], vertical_alignment="center")
        icon = _RESULT_ICON.get(last.result, _NEVER_ICON) if last else _NEVER_ICON
        head.markdown(f"#### {icon} {md(row.project)}")
        running = is_running(home, row.project)
        if action.button(
            "Syncing…" if running else "Sync now",
            key=f"sync-now-{row.project}",
            disabled=running,
            icon=":material/sync:",
            width="stretch",
        ):
            if start_sync_now(home, row.project):
                st.toast(f"Sync of {md(row.project)} started")
        details = [f"Last sync: {when_and_ago(last.time if last else None)}"]
        if last and last.commit:
            details.append(f"commit `{md(last.commit[:8])}` {md(last.commit_message or '')}".rstrip())
        if last:
            details.append(
                f"{last.uploaded} uploaded · {last.deleted} deleted · {last.skipped} skipped"
                + (f" · {last.failed} failed" if last.failed else "")
                + f" · {last.duration_s:.1f} s"
            )
        st.markdown("  \n".join(details))
        if row.location.kind == TargetKind.WORKSPACE:
            st.markdown(f"Workspace folder: [{md(row.location.root, in_link=True)}]({url(row.location.url)})")
        else:
            st.markdown(f"Local mirror folder: {md(row.location.root)}")
        if row.retry is not None:
            _retry_banner(str(home), row.project)
        elif row.problem:
            st.error(md(row.problem), icon=":material/error:")
        if last and last.result == SyncResult.OK and last.skipped:
            what = "1 file was" if last.skipped == 1 else f"{last.skipped} files were"
            st.caption(f"{what} left out (too big, or a symbolic link); see the live log below.")


def _retry_text(entry: RetryEntry) -> str:
    if entry.kind == RetryKind.NEW_TOKEN and not entry.forced:
        if "by itself" in entry.error:
            return entry.error
        return f"{entry.error} It will be retried by itself once the token changes."
    wait = entry.wait_s(time.time()) or 0.0
    when = "now" if wait < 1 else f"in {wait:.0f} s"
    tries = f"{entry.attempts} attempt{'s' if entry.attempts != 1 else ''} failed"
    return f"Waiting to retry, next attempt {when} ({tries}). {entry.error}"


@st.fragment(run_every=1)
def _retry_banner(home: str, project: str) -> None:
    """The project's retry state, counting down live; the page reruns when the entry goes away."""
    entry = pending_retry(Path(home), project)
    if entry is None:
        st.rerun()  # the retry got through (or the queue changed): redraw the whole card
        return
    box, action = st.columns([4, 1], vertical_alignment="center")
    if entry.kind == RetryKind.NEW_TOKEN and not entry.forced:
        box.error(md(_retry_text(entry)), icon=":material/key_off:")
    else:
        box.warning(md(_retry_text(entry)), icon=":material/schedule:")
    running = is_running(Path(home), project)
    if action.button("Retrying…" if running else "Retry now", key=f"retry-now-{project}", disabled=running,
                     icon=":material/refresh:", width="stretch"):
        retry_now(Path(home), project)
        st.toast(f"Retrying the sync of {md(project)}")


def _history(runs: list[SyncRecord]) -> None:
    if not runs:
        return
    st.subheader("Recent syncs")
    frame = pd.DataFrame(
        {
            "time": [r.time for r in runs],
            "project": [r.project for r in runs],
            "result": [str(r.result) for r in runs],
            "duration (s)": [r.duration_s for r in runs],
            "files": [r.files_changed for r in runs],
            "commit": [(r.commit or "")[:8] for r in runs],
            "error": [r.error or "" for r in runs],
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
    settings = load_settings()
    home = settings.home
    st.session_state[_SEEN] = _watcher(str(home)).version  # what this run shows
    st.title("Workspace sync")
    st.caption(
        "Every `git commit` in `~/projects/<name>` uploads that project to "
        "`/Workspace/Users/<you>/projects/<name>`, and its git history to "
        "`/Workspace/Users/<you>/.coda/history/<name>`. Only changes are sent; files deleted or renamed "
        "locally are removed there too. A sync that fails retries by itself until it gets through."
    )
    _target_banner(destination(home))
    rows = project_status(home, list_projects(settings))
    if not rows:
        st.info("No projects yet: create or clone a repository under `~/projects/` and commit.")
    for row in rows:
        _project_card(home, row)
    _history(history(home, 30))
    st.subheader("Live log")
    lines = tail_text_log(home, 60)
    st.code("\n".join(lines) if lines else "(no syncs yet)", language=None, wrap_lines=True)
    _live_watch(str(home))


if __name__ == "__main__":
    render()
