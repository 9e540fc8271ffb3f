"""Bounded terminal history, kept as bytes.

A deque of chunks rather than one bytearray: trimming the front of a 4 MiB
bytearray on every 4 KiB read would copy megabytes per read, while dropping
whole chunks from a deque costs nothing.
"""

from __future__ import annotations

from collections import deque


class Scrollback:
    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("scrollback limit must be positive")
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        if not data:
            return
        if len(data) >= self.limit:
            self._chunks.clear()
            data = data[-self.limit :]
            self._size = 0
        self._chunks.append(data)
        self._size += len(data)
        while self._size > self.limit:
            excess = self._size - self.limit
            first = self._chunks[0]
            if len(first) <= excess:
                self._chunks.popleft()
                self._size -= len(first)
            else:
                self._chunks[0] = first[excess:]
                self._size -= excess

    def snapshot(self) -> bytes:
        """Everything kept, starting at a UTF-8 character boundary.

        After trimming, the oldest byte may sit inside a multibyte character;
        skipping its continuation bytes keeps a replay free of U+FFFD.
        """
        data = b"".join(self._chunks)
        if len(self._chunks) > 1:
            self._chunks.clear()
            self._chunks.append(data)
        start = 0
        while start < min(len(data), 3) and 0x80 <= data[start] <= 0xBF:
            start += 1
        return data[start:]
