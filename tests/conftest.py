import pytest

from tests.appserver import AppServer, start_app


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> AppServer:
    """The real app, started once per test module in a throwaway HOME."""
    server = start_app(tmp_path_factory.mktemp("app") / "home")
    yield server
    server.stop()


@pytest.fixture
def clean_app(app: AppServer) -> AppServer:
    """The shared app with no sessions left over from the previous test."""
    yield app
    _, sessions = app.request("GET", "/api/sessions")
    for s in sessions or []:
        app.request("DELETE", f"/api/sessions/{s['id']}")
