"""Who is signed in, said once (issue 12, items 3 and 5).

Item 3: with two ``X-Forwarded-Email`` headers (stranger first, owner second)
the middleware used the last value (API 200, WebSocket 101) and the page gate
the first. A request naming more than one user, or whose identity headers
disagree, is now refused everywhere by the one decision function.

Item 5: while the owner is unknown, the 503 showed anyone the workspace host,
its id, the discovery URL and the service principal's client id. Everyone now
gets a generic reason; the details are in the log.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from streamlit.runtime.context import StreamlitHeaders

from lib.access.decision import decide, request_user
from lib.access.owner import OwnerState
from tests.appsim import OWNER, start_on_apps, wait_owner
from tests.fakeworkspace import FakeWorkspace
from tests.rawhttp import raw_request, ws_handshake

STRANGER = "mallory@example.com"


@pytest.fixture(scope="module")
def apps_app(tmp_path_factory):
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    server = start_on_apps(tmp_path_factory.mktemp("identity") / "home", fw)
    wait_owner(server, OWNER)
    yield server
    server.stop()
    fw.stop()


def _host(server) -> tuple[str, str]:
    return ("Host", f"127.0.0.1:{server.port}")


@pytest.mark.parametrize(
    "identity",
    [
        [("X-Forwarded-Email", STRANGER), ("X-Forwarded-Email", OWNER)],
        [("X-Forwarded-Email", OWNER), ("X-Forwarded-Email", STRANGER)],
        [("X-Forwarded-Email", OWNER), ("X-Forwarded-Email", OWNER)],
        [("X-Forwarded-Email", f"{OWNER}, {STRANGER}")],
        [("X-Forwarded-Email", OWNER), ("X-Forwarded-Preferred-Username", STRANGER)],
        [("X-Forwarded-Email", OWNER), ("X-Forwarded-User", STRANGER)],
        [("X-Forwarded-Preferred-Username", STRANGER), ("X-Forwarded-Preferred-Username", OWNER)],
    ],
    ids=["stranger-then-owner", "owner-then-stranger", "owner-twice", "comma-joined", "username-disagrees",
         "user-disagrees", "usernames-repeated"],
)
def test_ambiguous_identity_is_refused_on_every_path(apps_app, identity) -> None:
    server = apps_app
    headers = [_host(server), *identity]
    assert raw_request(server.port, "GET", "/api/sessions", headers)[0] == 400
    assert raw_request(server.port, "GET", "/", headers)[0] == 400
    assert raw_request(server.port, "POST", "/api/sessions", [*headers, ("Content-Type", "application/json")],
                       b'{"agent": "bash"}')[0] == 400
    _, made = server.request("POST", "/api/sessions", {"agent": "bash"}, headers={"X-Forwarded-Email": OWNER})
    try:
        assert ws_handshake(server.port, f"/terminal/ws/{made['id']}", headers) == 400
        assert ws_handshake(server.port, "/_stcore/stream", headers) == 400
    finally:
        server.request("DELETE", f"/api/sessions/{made['id']}", headers={"X-Forwarded-Email": OWNER})


def test_consistent_identity_headers_get_in(apps_app) -> None:
    server = apps_app
    for extra in ([], [("X-Forwarded-Preferred-Username", OWNER.upper())],
                  [("X-Forwarded-User", "4242424242@1234567890123456")],  # the platform's opaque user id
                  [("X-Forwarded-User", OWNER.lower()), ("X-Forwarded-Preferred-Username", OWNER)]):
        headers = [_host(server), ("X-Forwarded-Email", OWNER), *extra]
        assert raw_request(server.port, "GET", "/api/sessions", headers)[0] == 200, extra
        assert ws_handshake(server.port, "/_stcore/stream", headers) == 101, extra


# --- the rule, as the page gate (st.context.headers) and the middleware (Headers) see it ------

RESOLVED = OwnerState(on_apps=True, owner=OWNER, source="app creator", resolved_at=1.0)


def test_decide_sees_every_value_the_page_gate_gets() -> None:
    both = StreamlitHeaders([("X-Forwarded-Email", STRANGER), ("X-Forwarded-Email", OWNER)])
    assert decide(RESOLVED, both).status == 400
    assert decide(RESOLVED, StreamlitHeaders([("x-forwarded-email", OWNER)])).allowed
    assert decide(RESOLVED, {"X-Forwarded-Email": OWNER}).allowed
    assert decide(RESOLVED, {"X-Forwarded-Email": STRANGER}).status == 403
    assert decide(RESOLVED, {}).status == 403
    # Locally there is no identity, but an ambiguous one is still refused.
    assert decide(OwnerState(on_apps=False), both).status == 400
    assert decide(OwnerState(on_apps=False), {}).allowed
    assert request_user(both) is None and request_user({"x-forwarded-email": OWNER}) == OWNER


def test_the_tokens_user_is_told_whose_token_it_is() -> None:
    owner = OwnerState(on_apps=True, owner=OWNER, source="app creator", resolved_at=1.0, token_user="pat.user@example.com")
    refused = decide(owner, {"X-Forwarded-Email": "Pat.User@example.com"})
    assert refused.status == 403 and "DATABRICKS_TOKEN" in refused.message and "belongs to pat.user@example.com" in refused.message
    stranger = decide(owner, {"X-Forwarded-Email": STRANGER})
    assert stranger.status == 403 and "DATABRICKS_TOKEN" not in stranger.message


# --- item 5: the 503 before the owner is known ------------------------------------------------

def test_not_ready_page_tells_strangers_nothing_about_the_workspace(tmp_path) -> None:
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app", client_id="sp-client-id-7f3a")
    fw.start()
    fw.set_fault("down")
    server = start_on_apps(tmp_path / "home", fw)
    secrets = [fw.url, f"127.0.0.1:{fw.port}", str(fw.port), fw.workspace_id, "sp-client-id-7f3a",
               ".well-known", "oidc", "databricks-config"]
    try:
        deadline = time.monotonic() + 40
        while True:
            status, page = server.request("GET", "/", headers={"X-Forwarded-Email": STRANGER})
            assert status == 503 and "Owner not resolved yet" in page
            if "did not answer" in page or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "the workspace did not answer" in page
        for path in ("/", "/api/sessions", "/launch"):
            for who in ({"X-Forwarded-Email": STRANGER}, {"X-Forwarded-Email": OWNER}, {}):
                status, body = server.request("GET", path, headers=who)
                assert status == 503
                leaked = [s for s in secrets if s in str(body)]
                assert not leaked, (path, who, leaked, body)
        # The details are in the log, for whoever runs the app.
        log = server.log()
        assert f"127.0.0.1:{fw.port}" in log and "Owner not resolved yet" in log
        fw.clear_faults()
        wait_owner(server, OWNER, timeout=90)
    finally:
        server.stop()
        fw.stop()


def test_public_reasons_are_generic() -> None:
    from databricks.sdk.errors import PermissionDenied

    from lib.access.owner import NO_ANSWER, REFUSED, UNSETTLED, OwnerLookupError, public_reason

    def lookup_error(cause: BaseException) -> OwnerLookupError:
        try:
            raise OwnerLookupError("could not read app 'x' from the workspace (https://h.example ...)") from cause
        except OwnerLookupError as exc:
            return exc

    assert public_reason(lookup_error(ConnectionRefusedError("refused"))) == NO_ANSWER
    assert public_reason(lookup_error(PermissionDenied("client sp-1 denied"))) == REFUSED
    assert public_reason(lookup_error(ValueError("odd"))) == UNSETTLED
    state = OwnerState(on_apps=True, error="the workspace at https://h.example did not answer", public_error=NO_ANSWER)
    refused = decide(state, {"X-Forwarded-Email": OWNER})
    assert refused.status == 503 and "h.example" not in refused.message and NO_ANSWER in refused.message
    assert urlsplit("https://h.example").netloc not in decide(OwnerState(on_apps=True), {}).message
