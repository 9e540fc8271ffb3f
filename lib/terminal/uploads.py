"""Files dropped into the app land in ``~/uploads`` under a safe name."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import BinaryIO

from lib.terminal.errors import RequestError

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


class UploadError(RequestError):
    status = 400


class UploadTooLarge(UploadError):
    status = 413


def safe_name(name: str | None) -> str:
    """A plain file name: no folders, no hidden files, no control characters."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").split("/")[-1])
    base = _UNSAFE.sub("_", base).strip("._")[:120]
    return base or "upload"


def unique_path(folder: Path, name: str) -> Path:
    path = folder / name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    n = 1
    while path.exists():
        path = folder / (f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}")
        n += 1
    return path


def save_upload(home: Path, name: str | None, stream: BinaryIO, limit: int = MAX_UPLOAD_BYTES) -> Path:
    """Copy ``stream`` into ``~/uploads``; nothing is left behind if it is too big."""
    folder = home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = unique_path(folder, safe_name(name))
    written = 0
    try:
        with open(path, "xb") as out:
            while chunk := stream.read(1024 * 1024):
                written += len(chunk)
                if written > limit:
                    raise UploadTooLarge(f"the file is larger than the {limit / (1024 * 1024):g} MiB upload limit")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
