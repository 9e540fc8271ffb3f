"""One call to a target, retried with backoff while it fails for a transient reason.

Every workspace call of the sync goes through ``with_retries``: the file
transfer, the history upload, the boot restore and the conversation backup.
Its own module because all of those use it and none of them should have to
import the engine for it; the on-disk queue of whole runs to retry later is
``retry``, a different thing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from random import random
from typing import Any

from lib.sync.errors import Kind, SyncAborted, SyncDeadline, classify
from lib.sync.options import SyncOptions


def with_retries(fn: Callable[[Any], Any], item: Any, options: SyncOptions, *,
                 abort: threading.Event | None = None, deadline: float | None = None) -> Any:
    """``fn(item)``, retried with backoff while it fails for a transient reason (``errors.classify``).

    Gives up after ``options.attempts`` tries, at ``deadline`` (monotonic), or
    when ``abort`` is set; a non-transient failure is raised at once.
    """
    tries = 0
    while True:
        if abort is not None and abort.is_set():
            raise SyncAborted()
        if deadline is not None and time.monotonic() >= deadline:
            raise SyncDeadline(f"{options.deadline_s:.0f} s")
        try:
            return fn(item)
        except Exception as exc:  # sorted by classify()
            if classify(exc) is not Kind.TRANSIENT:
                raise
            tries += 1
            if tries >= options.attempts:
                raise
            delay = min(options.backoff_max_s, options.backoff_s * 2 ** (tries - 1))
            retry_after = getattr(exc, "retry_after_secs", None)
            if retry_after:
                delay = max(delay, min(float(retry_after), options.backoff_max_s))
            delay *= 0.75 + random() / 2
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            if abort is not None:
                if abort.wait(delay):
                    raise SyncAborted() from exc
            else:
                time.sleep(delay)
