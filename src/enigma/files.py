"""Crash-safe file replacement for every layer: a reader sees the old file or the new one.

Why this sequence (write temp, fsync file, rename, fsync directory): rename is atomic on
POSIX file systems, but without the first fsync the rename can reach the disk before the
data does, leaving a full-length file of zeros after a power cut; without the directory
fsync the rename itself can be lost. Temporary files start with `.tmp.` in the target's own
directory (rename does not cross file systems), so that a store can sweep what a crash left.
Keys, shares, preprocessing stock and build artifacts are all written this way; the module
sits below every layer and imports none of them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

TMP_PREFIX = ".tmp."


def fsync_dir(path: Path) -> None:
    """Make the directory entries in `path` (creations, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, parts: Iterable[bytes | memoryview]) -> None:
    """Replace `path` with the concatenation of `parts`, durably and atomically (mode 0600)."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
