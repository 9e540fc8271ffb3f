"""Files dropped into the app land in ``~/uploads`` under a safe name."""

from __future__ import annotations

import errno
import re
import unicodedata
from pathlib import Path
from typing import BinaryIO

from lib.terminal.errors import RequestError

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
# File systems cap a name at 255 bytes (not characters: 86 CJK or emoji characters
# are already more). Leave room for the "-N" unique_path may add.
MAX_NAME_BYTES = 200
MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


class UploadError(RequestError):
    status = 400


class UploadTooLarge(UploadError):
    status = 413


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8 and ``MAX_NAME_CHARS`` characters, never inside a character."""
    return text[:MAX_NAME_CHARS].encode("utf-8")[:limit].decode("utf-8", "ignore")


def safe_name(name: str | None) -> str:
    """A plain file name: no folders, no hidden files, no control characters; short enough for any disk
    (``MAX_NAME_CHARS`` characters, ``MAX_NAME_BYTES`` bytes), keeping a short extension."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").split("/")[-1])
    base = _UNSAFE.sub("_", base).strip("._")
    if len(base) > MAX_NAME_CHARS or len(base.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = base.rpartition(".")
        if dot and stem and len(ext) <= 16:
            ext_bytes = len(ext.encode("utf-8")) + 1
            base = _cut(stem[: MAX_NAME_CHARS - len(ext) - 1], MAX_NAME_BYTES - ext_bytes).rstrip("._") + "." + ext
        else:
            base = _cut(base, MAX_NAME_BYTES)
        base = base.strip("._")
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
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = unique_path(folder, safe_name(name))
    except OSError as exc:
        raise _os_error(exc) from None
    written = 0
    out = _create(path)  # exclusive: a file that is there already is never touched
    try:
        with out:
            while chunk := stream.read(1024 * 1024):
                written += len(chunk)
                if written > limit:
                    raise UploadTooLarge(f"the file is larger than the {limit / (1024 * 1024):g} MiB upload limit")
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _os_error(exc) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _create(path: Path) -> BinaryIO:
    try:
        return open(path, "xb")
    except OSError as exc:
        raise _os_error(exc) from None


def _os_error(exc: OSError) -> UploadError:
    """A file-system refusal as an answer the uploader can act on (never a 500)."""
    if exc.errno == errno.ENAMETOOLONG:
        return UploadError("the file name is too long; rename the file and upload it again")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UploadError("there is no room left on the app's disk for this file", status=507)
    return UploadError(f"the file could not be saved ({exc.strerror or exc})", status=500)
