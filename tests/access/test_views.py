"""Text from commits, folders and labels shows as plain text (issue 12, item 9).

Before: a commit subject ``[sign in again](https://evil.example/login)``
rendered as a live link on the Sync page (merged commits can come from anyone),
and a session label could carry Markdown into the session picker.
"""

from __future__ import annotations

import pytest

from lib.sync.engine import sync_project
from tests.appserver import AppServer, start_app
from tests.browser import browser
from tests.gitrepos import commit_all, git, make_repo, write_files
from views.plain import md

SUBJECT = "[sign in again](https://evil.example/login) :red[urgent] see www.evil.example or help@evil.example"
PROJECT = "[go](https:evil.example)"
LABEL = "[relogin](https://evil.example/l) **bold** :material/lock:"


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> AppServer:
    home = tmp_path_factory.mktemp("views") / "home"
    (home / "projects").mkdir(parents=True)
    for key, value in (("user.name", "View Test"), ("user.email", "view-test@example.com"),
                       ("init.defaultBranch", "main")):
        git(home, home, "config", "--global", key, value)
    repo = make_repo(home, PROJECT)
    write_files(repo, {"a.txt": b"a\n"})
    commit_all(repo, home, SUBJECT)
    assert sync_project(home, repo).result == "ok"  # no workspace: the local mirror, and a record
    server = start_app(home)
    yield server
    server.stop()


def _visible(page) -> str:
    return page.inner_text("body").replace("\u2060", "")  # the joiners md() puts in show nothing


def _evil_links(page) -> list[str]:
    return page.eval_on_selector_all("a", "els => els.map(e => e.href).filter(h => h.includes('evil.example'))")


def test_commit_subjects_and_folder_names_are_not_markdown(app: AppServer) -> None:
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(app.url + "/sync")
        page.get_by_text("sign in again", exact=False).first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        text = _visible(page)
        assert SUBJECT in text, text[-2000:]
        assert PROJECT in text
        assert not _evil_links(page)
        assert page.locator("[data-testid='stMarkdownContainer'] strong:has-text('urgent')").count() == 0


def test_session_labels_are_not_markdown(app: AppServer) -> None:
    status, made = app.request("POST", "/api/sessions", {"agent": "bash", "label": LABEL})
    assert status == 201
    try:
        with browser() as b:
            page = b.new_page(viewport={"width": 1300, "height": 900})
            page.goto(app.url + f"/?session={made['id']}")
            page.get_by_text("relogin", exact=False).first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            assert LABEL in _visible(page)
            assert not _evil_links(page)
            assert page.locator("button strong:has-text('bold')").count() == 0
            assert page.locator("button [data-testid='stIconMaterial']:has-text('lock')").count() == 0
    finally:
        app.request("DELETE", f"/api/sessions/{made['id']}")


def test_md_escapes_what_starts_a_construct() -> None:
    j = "\u2060"  # the invisible word joiner that breaks what escaping cannot (autolinks, icons)
    assert md("[a](https://x.example)") == rf"\[a\](https:{j}//x.example)"
    assert md(":red[x] :material/home: :smile:") == rf":{j}red\[x\] :{j}material/home: :{j}smile:"
    assert md("not configured: no host; yes, 1.2.3") == "not configured: no host; yes, 1.2.3"
    assert md("a\u202eb\x9bc") == "abc"
    assert md("www.evil.example mail@evil.example $x$ `c` <b> **b**") == (
        rf"www{j}.evil.example mail@{j}evil.example \$x\$ \`c\` \<b\> \*\*b\*\*")
    assert md("/Workspace/Users/a@b.example/x_y", in_link=True) == r"/Workspace/Users/a@b.example/x\_y"
