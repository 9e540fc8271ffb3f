import pytest

from tests.appserver import AppServer, start_app
from tests.appsim import deployed  # noqa: F401  (fixture: the app as Apps runs it, with the real CLIs)
from tests.clis import clis  # noqa: F401  (fixture: the pinned agent CLIs)


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


@pytest.fixture
def running_loop():
    """An asyncio loop running in a background thread: PTYs are read on an event loop."""
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
