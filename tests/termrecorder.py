"""Run inside a terminal session: record every byte the PTY delivers, in raw mode.

    python3 termrecorder.py OUT [--queries] [--stream N --interval S] [--bracketed]

Appends each read to OUT at once (unbuffered), so a test can read exactly
what reached the program. ``--queries`` first prints the terminal queries
programs send (device attributes, cursor position, colours, a mode report,
the terminal version): a live terminal answers them, a replay must not.
``--stream N`` prints ``line-1`` .. ``line-N`` while recording, then
``stream-done``. ``--bracketed`` turns bracketed paste on. Prints
``REC-READY`` once recording. Ends on EOF or when it reads Ctrl-] twice.
"""

from __future__ import annotations

import argparse
import os
import sys
import termios
import threading
import time
import tty

QUERIES = b"\x1b[c\x1b[>c\x1b[6n\x1b[5n\x1b]10;?\x07\x1b]11;?\x07\x1b[?2004$p\x1b[>q\x1b[18t"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--queries", action="store_true")
    parser.add_argument("--stream", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--bracketed", action="store_true")
    args = parser.parse_args()
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    lock = threading.Lock()

    def say(data: bytes) -> None:
        with lock:
            os.write(1, data)

    try:
        if args.bracketed:
            say(b"\x1b[?2004h")
        if args.queries:
            say(QUERIES)
        say(b"REC-READY\r\n")
        if args.stream:
            def stream() -> None:
                for i in range(1, args.stream + 1):
                    say(b"line-%d\r\n" % i)
                    time.sleep(args.interval)
                say(b"stream-done\r\n")

            threading.Thread(target=stream, daemon=True).start()
        with open(args.out, "ab", buffering=0) as out:
            tail = b""
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                out.write(data)
                tail = (tail + data)[-2:]
                if tail == b"\x1d\x1d":
                    break
    finally:
        if args.bracketed:
            say(b"\x1b[?2004l")
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    main()
