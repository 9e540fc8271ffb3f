"""Requests with exactly the bytes a test wants: repeated or missing headers, HTTP/1.0, a bare
WebSocket handshake. HTTP clients normalise these, attackers do not.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket


def raw_request(port: int, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"",
                http10: bool = False) -> tuple[int, bytes]:
    """One request with exactly these headers (repeated ones too, no Host added)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if http10:
        conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    if body or method in ("POST", "PATCH"):
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body or None)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def ws_handshake(port: int, path: str, headers: list[tuple[str, str]]) -> int:
    """The status the server answers a WebSocket handshake with (101 = accepted)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers]
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])
