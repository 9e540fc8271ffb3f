"""Turn Nagle's algorithm off on the app's own server sockets (at start, by the lifespan).

asyncio disables Nagle only on sockets whose ``proto`` is ``IPPROTO_TCP``;
Streamlit's server binds its listening socket with ``socket.socket(family)``
(``proto`` 0), so the connections it accepts keep Nagle on. An answer is then
written as headers, then body: the body waits for the client's delayed ACK,
about 40 ms on Linux: every request on a kept-alive connection took 44 ms
(a new connection, in TCP's quick-ACK start, 0.7 ms), and every streamed
chunk that follows a pause waited as long. Linux
copies ``TCP_NODELAY`` from a listening socket to the connections it accepts,
so setting it once on the listener, before the first connection, fixes them
all. Linux only (``/proc/self/fd``); elsewhere
this does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import stat

log = logging.getLogger(__name__)


def _sockets() -> list[int]:
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    fds = []
    for name in names:
        try:
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                fds.append(int(name))
        except (OSError, ValueError):
            continue
    return fds


def nodelay(port: int) -> int:
    """Set ``TCP_NODELAY`` on the TCP listeners of ``port``; returns how many sockets were changed."""
    changed = 0
    for fd in _sockets():
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
                continue
            wanted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) and sock.getsockname()[1] == port
            if wanted and not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                changed += 1
        except OSError:
            continue
        finally:
            sock.close()  # the duplicate only
    if changed:
        log.info("Turned Nagle's algorithm off on %d socket(s) of port %d.", changed, port)
    return changed
