"""Atomic file replacement: a crash at any moment leaves the old file or the new one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMPORARY_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file beside ``path``, fsync it, then ``os.replace``.

    The temporary file lives in the same directory (a rename is only atomic within one
    file system) and is named ``.NAME.<random>.tmp``, so leftovers of a killed process
    are easy to recognise and remove. OSError (a full disk, say) propagates with the old
    file untouched.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
    try:
        # "x": never follow or reuse an existing name; mode 0o666 minus the umask, like
        # any other file the user creates (mkstemp would make it private, 0o600).
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
