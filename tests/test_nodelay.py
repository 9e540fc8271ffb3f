"""Nagle's algorithm is off on the app's listener from the start (``lib.nodelay``).

With it on, the second write of an answer (headers, then body) waits for the
client's delayed ACK: every request on a kept-alive connection took 44 ms,
the browser's API calls and Streamlit's own messages included.
"""

from __future__ import annotations

import socket
import time

import httpx

from lib.nodelay import nodelay


def test_nodelay_sets_the_option_on_a_listener_bound_like_streamlits() -> None:
    listener = socket.socket(socket.AF_INET)  # proto 0, as Streamlit binds it: asyncio leaves Nagle on
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        assert not listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert nodelay(port) == 1
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert nodelay(port) == 0  # already off: nothing to change
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # Linux copies it to connections
        client.close()
        accepted.close()
    finally:
        listener.close()


def test_kept_alive_requests_do_not_wait_for_delayed_acks(app) -> None:
    assert f"Turned Nagle's algorithm off on 1 socket(s) of port {app.port}." in app.log()
    with httpx.Client() as client:
        client.get(f"{app.url}/health")
        took = []
        for _ in range(10):
            started = time.perf_counter()
            assert client.get(f"{app.url}/health").status_code == 200
            took.append(time.perf_counter() - started)
    # A delayed ACK costs every such request at least 40 ms; the fastest of ten shows it plainly.
    assert min(took) < 0.030, took
