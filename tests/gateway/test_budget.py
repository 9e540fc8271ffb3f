"""The daily token budget per session, end to end in the real app.

The app (``streamlit run app.py``) runs with the fake workspace upstream and
a deployment budget in its environment; each test changes the budget the way
the sidebar does (``save_overrides`` into ``~/.coda/settings.json``) or by
editing that file, and makes model calls with a shell session's own key over
the app's loopback gateway, as its agents would. Nothing of ours is mocked:
the budget reaches the gateway through ``lib.runtime`` and the settings file.

Pinned here: past 80 % a session reads "warn" and its calls go on; with
"refuse" on, the call after the budget is spent gets a clear error in the
calling CLI's own format and never reaches the workspace; a change applies to
the next call without a restart; a bad value is refused with a sentence and
changes nothing (and a bad value in the file or the environment is ignored,
never a crash); the sidebar saves both settings; the Sessions page warns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from lib.gateway.routes import gateway_url
from lib.gateway.usage import Budget, budget_report
from lib.runtime import runtime
from lib.settings import MAX_DAILY_TOKENS, SettingsError, load_settings, overrides_path, reset_overrides, save_overrides
from tests.appserver import REPO, AppServer, start_app
from tests.browser import browser
from tests.fakeworkspace import FakeWorkspace

CLAUDE = "databricks-claude-opus-4-6"
GPT = "databricks-gpt-5-2"
GEMINI = "databricks-gemini-3-1-pro"
DEPLOYED_BUDGET = 1_000_000  # CODA_SESSION_DAILY_TOKENS in the app's environment, written "1,000,000"

# kind -> (api, path below it, body); streamed or not.
CALLS: dict[str, tuple[str, str, Any]] = {
    "anthropic": ("anthropic", "v1/messages",
                  lambda s: {"model": CLAUDE, "max_tokens": 64, "stream": s,
                             "messages": [{"role": "user", "content": "hi"}]}),
    "responses": ("openai", "responses", lambda s: {"model": GPT, "stream": s, "input": "hi"}),
    "chat": ("chat", "chat/completions",
             lambda s: {"model": CLAUDE, "stream": s, "messages": [{"role": "user", "content": "hi"}]}),
    "gemini": ("gemini", "", lambda s: {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
}


@pytest.fixture(scope="module")
def fw() -> Iterator[FakeWorkspace]:
    with FakeWorkspace() as workspace:
        workspace.model_reply = "PONG within budget"
        yield workspace


@pytest.fixture(scope="module")
def app(fw: FakeWorkspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("budget") / "home",
                       {"DATABRICKS_HOST": fw.url, "DATABRICKS_TOKEN": fw.create_token(),
                        "CODA_SESSION_DAILY_TOKENS": "1,000,000", "CODA_BUDGET_REFUSE": "false"})
    yield server
    server.stop()


@pytest.fixture
def budget_app(app: AppServer, fw: FakeWorkspace) -> Iterator[AppServer]:
    """The shared app with the deployment's budget (no overrides) and no sessions left afterwards."""
    reset_overrides(_env(app))
    fw.clear_requests()
    yield app
    reset_overrides(_env(app))
    _, sessions = app.request("GET", "/api/sessions")
    for s in sessions or []:
        app.request("DELETE", f"/api/sessions/{s['id']}")


def _env(app: AppServer) -> dict[str, str]:
    return {"HOME": str(app.home)}


def _set(app: AppServer, **changes: Any) -> None:
    """What the sidebar's Save does: validate, then write ``~/.coda/settings.json``."""
    save_overrides(changes, _env(app))


class Session:
    """A shell session of the app, with the key and gateway URL its programs get in their environment."""

    def __init__(self, app: AppServer) -> None:
        status, doc = app.request("POST", "/api/sessions", {"agent": "bash"})
        assert status == 201, doc
        self.app, self.id = app, doc["id"]
        environ = dict(v.split("=", 1) for v in Path(f"/proc/{doc['pid']}/environ").read_bytes().decode()
                       .split("\0") if "=" in v)
        self.key = environ["CODA_SESSION_KEY"]
        self.gateway = gateway_url(environ["CODA_APP_URL"])

    def call(self, kind: str = "anthropic", stream: bool = False) -> httpx.Response:
        api, rest, body = CALLS[kind]
        if kind == "gemini":
            rest = f"v1beta/models/{GEMINI}:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
        return httpx.post(f"{self.gateway}/{api}/{rest}", json=body(stream), timeout=30,
                          headers={"authorization": f"Bearer {self.key}"})

    def usage(self) -> dict[str, Any]:
        """This session's ``usage`` as ``GET /api/sessions`` shows it."""
        status, sessions = self.app.request("GET", "/api/sessions")
        assert status == 200, sessions
        return next(s for s in sessions if s["id"] == self.id)["usage"]


def _ok(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text
    assert "PONG" in r.text


# ---------------------------------------------------------------- warn only


def test_past_80_percent_warns_and_calls_go_through(budget_app: AppServer, fw: FakeWorkspace) -> None:
    s = Session(budget_app)
    _set(budget_app, session_daily_tokens=0)  # no budget while we learn what one call costs
    _ok(s.call())
    one = s.usage()["today_tokens"]
    assert one >= 4 and "budget" not in s.usage()

    _set(budget_app, session_daily_tokens=2 * one + 1, budget_refuse=False)
    assert s.usage()["budget"] == {"daily_tokens": 2 * one + 1, "refuse": False, "state": "ok"}
    _ok(s.call())  # 2 calls: 2/(2+1/one) >= 80 %
    usage = s.usage()
    assert usage["today_tokens"] == 2 * one
    assert usage["budget"]["state"] == "warn"
    report = budget_report(usage)
    assert report is not None and report.state == "warn" and "warn" in report.cell
    assert f"{2 * one:,} of {2 * one + 1:,} tokens today" in report.notice and "only warns" in report.notice

    for kind in ("anthropic", "gemini"):  # over, but refuse is off: still answered
        _ok(s.call(kind, stream=True))
    usage = s.usage()
    assert usage["budget"]["state"] == "over" and usage["today_tokens"] > 2 * one + 1
    report = budget_report(usage)
    assert report is not None and report.cell.endswith("over budget") and not report.refused
    assert len(fw.model_requests) == 4


# ---------------------------------------------------------------- refuse


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_spent_budget_refuses_in_the_callers_format_and_the_workspace_hears_nothing(
        budget_app: AppServer, fw: FakeWorkspace, kind: str) -> None:
    s = Session(budget_app)
    _set(budget_app, session_daily_tokens=1, budget_refuse=True)
    _ok(s.call(kind, stream=True))  # 0 of 1 spent: this one goes through, and spends it
    usage = s.usage()
    assert usage["budget"] == {"daily_tokens": 1, "refuse": True, "state": "over"}
    report = budget_report(usage)
    assert report is not None and report.refused and "over budget — calls refused" in report.cell

    fw.clear_requests()
    r = s.call(kind, stream=True)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    error = doc["error"]
    message = error["message"]
    assert "daily budget of 1 tokens" in message and f"({usage['today_tokens']:,} today)" in message
    assert "sidebar" in message
    if kind == "anthropic":
        assert doc["type"] == "error" and error["type"] == "permission_error"
    elif kind == "gemini":
        assert error["code"] == 403 and error["status"] == "PERMISSION_DENIED"
    else:  # Responses (Codex) and chat completions (OpenCode): the OpenAI shape
        assert error["type"] == "invalid_request_error" and error["code"] == "403"
    assert not fw.model_requests, "a refused call must not reach the workspace"
    assert s.usage()["today_tokens"] == usage["today_tokens"]

    other = Session(budget_app)  # the budget is per session
    _ok(other.call(kind))
    assert "Refused a model call of session" in budget_app.log()
    assert s.key not in budget_app.log() and other.key not in budget_app.log()


# ---------------------------------------------------------------- changes apply at once


def test_changes_apply_to_the_next_call_without_a_restart(budget_app: AppServer, fw: FakeWorkspace) -> None:
    pid = budget_app.proc.pid
    s = Session(budget_app)
    # The deployment's budget, from the environment ("1,000,000"): warn only.
    assert s.usage()["budget"] == {"daily_tokens": DEPLOYED_BUDGET, "refuse": False, "state": "ok"}

    _set(budget_app, session_daily_tokens=1, budget_refuse=True)
    _ok(s.call())
    assert s.call().status_code == 403

    _set(budget_app, budget_refuse=False)  # only warn now: the same session goes on
    _ok(s.call())
    assert s.usage()["budget"]["state"] == "over"

    _set(budget_app, budget_refuse=True)
    assert s.call("responses").status_code == 403

    _set(budget_app, session_daily_tokens=100_000)  # raised: room again
    _ok(s.call("responses"))
    assert s.usage()["budget"] == {"daily_tokens": 100_000, "refuse": True, "state": "ok"}

    # Edited by hand in the file: read at the next call too.
    path = overrides_path(budget_app.home)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "session_daily_tokens": 1}))
    assert s.call("chat").status_code == 403

    _set(budget_app, session_daily_tokens=0)  # 0: no budget at all
    _ok(s.call("chat"))
    assert "budget" not in s.usage()

    reset_overrides(_env(budget_app))  # back to the deployment's budget, which only warns
    _ok(s.call("gemini"))
    assert s.usage()["budget"] == {"daily_tokens": DEPLOYED_BUDGET, "refuse": False, "state": "ok"}
    assert budget_app.proc.pid == pid and budget_app.proc.poll() is None


# ---------------------------------------------------------------- bad values


@pytest.mark.parametrize(("value", "words"), [
    (-5, "must be 0 (no budget) or a whole number of tokens up to 1,000,000,000, got -5"),
    ("lots", "must be a whole number, got 'lots'"),
    ("1.5", "must be a whole number, got '1.5'"),
    ("1e6", "must be a whole number, got '1e6'"),
    (MAX_DAILY_TOKENS + 1, "up to 1,000,000,000, got 1000000001"),
    ("9" * 5000, "must be a whole number"),
    (True, "must be a whole number"),
])
def test_bad_budget_is_refused_with_a_sentence_and_changes_nothing(tmp_path: Path, value: Any, words: str) -> None:
    env = {"HOME": str(tmp_path)}
    save_overrides({"session_daily_tokens": 5000, "budget_refuse": True}, env)
    before = overrides_path(tmp_path).read_bytes()
    with pytest.raises(SettingsError) as err:
        save_overrides({"budget_refuse": False, "session_daily_tokens": value}, env)
    assert str(err.value).startswith("daily token budget per session ") and words in str(err.value)
    assert len(str(err.value)) < 200
    assert overrides_path(tmp_path).read_bytes() == before, "all or nothing"
    assert load_settings(env).session_daily_tokens == 5000


def test_bad_refuse_value_and_forgiving_number_forms(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    with pytest.raises(SettingsError, match="refuse calls over budget must be true or false, got 'maybe'"):
        save_overrides({"budget_refuse": "maybe"}, env)
    assert save_overrides({"session_daily_tokens": "2,000,000", "budget_refuse": "yes"}, env).session_daily_tokens \
        == 2_000_000
    assert load_settings(env).budget_refuse is True
    assert save_overrides({"session_daily_tokens": " 50 000 "}, env).session_daily_tokens == 50_000
    with pytest.raises(SettingsError):
        save_overrides({"session_daily_tokens": "1,0000"}, env)  # not a thousands separator


def test_bad_values_in_the_environment_or_the_file_are_ignored(tmp_path: Path) -> None:
    """A deployment typo or a hand-edited file never stops the app: the value is ignored, no budget."""
    for bad in ("-1", "many", "1e9", str(10 ** 12)):
        settings = load_settings({"HOME": str(tmp_path), "CODA_SESSION_DAILY_TOKENS": bad,
                                  "CODA_BUDGET_REFUSE": "perhaps"})
        assert (settings.session_daily_tokens, settings.budget_refuse) == (0, False), bad
    good = load_settings({"HOME": str(tmp_path), "CODA_SESSION_DAILY_TOKENS": "20000", "CODA_BUDGET_REFUSE": "1"})
    assert (good.session_daily_tokens, good.budget_refuse) == (20_000, True)
    path = overrides_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"session_daily_tokens": -3, "budget_refuse": "sure"}))
    settings = load_settings({"HOME": str(tmp_path), "CODA_SESSION_DAILY_TOKENS": "20000"})
    assert (settings.session_daily_tokens, settings.budget_refuse) == (20_000, False)


def test_bad_value_in_the_file_leaves_the_running_app_serving(budget_app: AppServer) -> None:
    s = Session(budget_app)
    path = overrides_path(budget_app.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"session_daily_tokens": "a lot", "budget_refuse": 7}))
    _ok(s.call())
    assert s.usage()["budget"] == {"daily_tokens": DEPLOYED_BUDGET, "refuse": False, "state": "ok"}
    status, _ = budget_app.request("GET", "/health")
    assert status == 200


# ---------------------------------------------------------------- the sidebar and the page


def _sidebar_script() -> None:
    from views.sidebar import render_sidebar

    render_sidebar()


def test_sidebar_saves_the_budget_and_the_runtime_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_GATEWAY_HOST", "DATABRICKS_APP_NAME",
                "DATABRICKS_APP_PORT", "CODA_SESSION_DAILY_TOKENS", "CODA_BUDGET_REFUSE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(REPO)
    assert runtime().budget() is None
    at = AppTest.from_function(_sidebar_script, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.number_input(key="sb_session_daily_tokens").value == 0
    at.number_input(key="sb_session_daily_tokens").set_value(250_000)
    at.toggle(key="sb_budget_refuse").set_value(True)
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    assert any("token budget applies at once" in str(e.value) for e in at.success)
    assert json.loads(overrides_path(tmp_path).read_text())["session_daily_tokens"] == 250_000
    # The app's gateway asks the runtime at every call: the new budget, no restart.
    assert runtime().budget() == Budget(250_000, refuse=True)
    assert runtime().gateway.budget() == Budget(250_000, refuse=True)
    assert at.number_input(key="sb_session_daily_tokens").value == 250_000


def test_sessions_page_shows_the_warning(budget_app: AppServer, tmp_path: Path) -> None:
    s = Session(budget_app)
    _ok(s.call())
    one = s.usage()["today_tokens"]
    _set(budget_app, session_daily_tokens=one + 1)  # one call is > 80 % of it
    assert s.usage()["budget"]["state"] == "warn"
    percent = one * 100 // (one + 1)
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{budget_app.url}/?session={s.id}")
        alert = page.get_by_text(f"This session used {percent} % of its daily token budget")
        alert.wait_for(timeout=30_000)
        assert "Past it, calls still go through" in alert.inner_text()
        page.get_by_text(f"{percent} % of budget").first.wait_for(timeout=10_000)  # the tab's badge
        page.screenshot(path=str(tmp_path / "budget-warning.png"))

        _set(budget_app, budget_refuse=True, session_daily_tokens=1)
        page.reload()
        page.get_by_text("This session is over budget — calls refused").wait_for(timeout=30_000)
        page.get_by_role("button", name="All sessions (1)").click()
        page.get_by_text("Budget per session: 1 tokens a day (calls refused past it).").wait_for(timeout=10_000)
