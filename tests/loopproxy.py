"""A loopback TCP proxy that misbehaves like the one in front of Databricks Apps.

Everything to ``127.0.0.1:<port>`` is forwarded to the app. Connections that
start with ``GET {base}/terminal/ws/`` are the terminal WebSockets; the test can
cut them all at once (``drop``), on a timer (``drop_every``), or freeze them
(``freeze``: bytes stop flowing both ways, the sockets stay open, as with a
dead network path). Streamlit's own connections pass untouched.
"""

from __future__ import annotations

import socket
import threading
import time


class LoopProxy:
    def __init__(self, target_port: int, marker: bytes = b"GET /terminal/ws/") -> None:
        self.target_port = target_port
        self.marker = marker
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._terminals: list[tuple[socket.socket, socket.socket]] = []
        self._frozen: set[int] = set()
        self.drops = 0
        self.terminal_connections = 0
        self._stop = threading.Event()
        self._dropper: threading.Thread | None = None
        self._stop_dropping = threading.Event()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        first = client.recv(65536)
        terminal = self.marker in first.split(b"\r\n", 1)[0]
        pair = (client, upstream)
        if terminal:
            with self._lock:
                self._terminals.append(pair)
                self.terminal_connections += 1
        upstream.sendall(first)
        threading.Thread(target=self._pump, args=(upstream, client, pair), daemon=True).start()
        self._pump(client, upstream, pair)

    def _pump(self, src: socket.socket, dst: socket.socket, pair: tuple) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while id(pair) in self._frozen:  # held, then lost when the pair is dropped
                    time.sleep(0.05)
                    if src.fileno() < 0:
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(pair)

    def _close(self, pair: tuple) -> None:
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self._lock:
            if pair in self._terminals:
                self._terminals.remove(pair)
        self._frozen.discard(id(pair))

    def drop(self) -> int:
        """Cut every terminal connection now, abruptly (bytes in flight are lost)."""
        with self._lock:
            pairs = list(self._terminals)
        for pair in pairs:
            for s in pair:  # RST rather than FIN: like a proxy that gives up
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                except OSError:
                    pass
            self._close(pair)
        if pairs:
            self.drops += 1
        return len(pairs)

    def freeze(self) -> int:
        """Stop the bytes of every terminal connection, both ways, keeping the sockets open."""
        with self._lock:
            pairs = list(self._terminals)
        for pair in pairs:
            self._frozen.add(id(pair))
        return len(pairs)

    def drop_every(self, seconds: float) -> None:
        stop = self._stop_dropping = threading.Event()

        def run() -> None:
            while not stop.wait(seconds):
                self.drop()

        self._dropper = threading.Thread(target=run, name="proxy-dropper", daemon=True)
        self._dropper.start()

    def stop_dropping(self) -> None:
        self._stop_dropping.set()
        if self._dropper is not None:
            self._dropper.join(5)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self.drop()
