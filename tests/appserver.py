"""Start the real app (``streamlit run app.py``) as a subprocess for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: no Databricks or Streamlit settings leak in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "STREAMLIT_", "CODA_"))}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", CODA_SKIP_INSTALL="1")
    return env


@dataclass
class AppServer:
    home: Path
    port: int
    proc: subprocess.Popen
    log_path: Path
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: object = None, headers: Mapping[str, str] | None = None):
        """(status, parsed JSON or text) for one HTTP request."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        for k, v in {**self.headers, **(headers or {})}.items():
            req.add_header(k, v)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def wait_setup(self, timeout: float = 120, *, want: tuple[str, ...] = ("ok", "failed")) -> str:
        """Until the boot setup has finished (its state is one of ``want``); returns the state."""
        deadline = time.monotonic() + timeout
        while (state := self.request("GET", "/health")[1].get("setup")) not in want:
            assert time.monotonic() < deadline, f"setup never finished ({state}):\n{self.log()[-3000:]}"
            time.sleep(0.2)
        return state

    def stop(self, timeout: float = 15) -> float:
        """SIGTERM the app like the platform does; returns seconds it took to exit."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return time.monotonic() - start


def start_app(
    home: Path,
    env: Mapping[str, str] | None = None,
    *,
    port: int | None = None,
    command: list[str] | None = None,
    wait_path: str = "/health",
    timeout: float = 60,
) -> AppServer:
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    full_env = base_env(home)
    full_env.update(env or {})
    full_env.setdefault("STREAMLIT_SERVER_PORT", str(port))
    log_path = home.parent / f"app-{port}.log"
    cmd = command or [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=full_env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = AppServer(home=home, port=port, proc=proc, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + wait_path, timeout=2):
                return server
        except urllib.error.HTTPError:
            return server  # up, just refusing us
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"app did not start in {timeout} s:\n{server.log()}")
