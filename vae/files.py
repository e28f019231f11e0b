"""Writes that never leave half a file: the one way every module of the project replaces a file on disk.

A reader (another session, another process, the same one after a crash) sees the old file or the whole new
one, never a part: the bytes go to a temporary name in the same folder (``.<name>.<random>.tmp``, so
``os.replace`` stays on one file system and a folder's owner can sweep leftovers with one glob), are flushed
and fsynced, and only then renamed over the target; the folder is fsynced after, so the rename itself
survives a power cut. On any failure, an exception inside the ``with`` block included, the temporary file is
removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# What a crashed writer may leave behind in a folder: a store sweeps these when it next saves there.
TEMPORARY_GLOB = ".*.tmp"


def fsync_folder(path: str | os.PathLike) -> None:
    """Make a rename inside ``path`` durable; best effort, since not every platform can open a folder."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """``with atomic_file(path) as f: f.write(...)``: ``path`` gets what was written, all at once, on success.

    The file is created with the usual umask permissions (``0o666 & ~umask``), as a plain ``open`` would.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the rename must never expose a file whose data is not on disk
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_folder(path.parent)


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    with atomic_file(path) as f:
        f.write(data)
