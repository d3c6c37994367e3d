"""Crash-safe file replacement: a reader sees the old file or the new one, never a mix.

Why this sequence (write temp, fsync file, rename, fsync directory): rename is atomic on
POSIX file systems, but without the first fsync the rename can reach the disk before the
data does, leaving a full-length file of zeros after a power cut; without the directory
fsync the rename itself can be lost. Temporary files start with `.tmp.` in the target's own
directory (rename does not cross file systems) and are removed by `sweep` when a store opens.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

TMP_PREFIX = ".tmp."
TRASH_PREFIX = ".deleted."


def fsync_dir(path: Path) -> None:
    """Make the directory entries in `path` (creations, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path, stop: Path) -> None:
    """Create `path` and any missing parents below `stop`, making each new entry durable."""
    missing = []
    probe = path
    while not probe.exists() and probe != stop:
        missing.append(probe)
        probe = probe.parent
    for new in reversed(missing):
        try:
            new.mkdir(mode=0o700)
        except FileExistsError:
            continue
        fsync_dir(new.parent)


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


def remove_tree(path: Path) -> None:
    """Delete a directory so that a crash never leaves it half-visible.

    1. rename it to a `.deleted.` name in the same parent (atomic) and fsync the parent;
    2. remove the renamed tree; a crash here leaves only trash that `sweep` removes.
    """
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}.{secrets.token_hex(6)}")
    os.replace(path, trash)
    fsync_dir(path.parent)
    shutil.rmtree(trash)


def sweep(root: Path) -> int:
    """Remove temporary files and trash left by a crash under `root`; return how many."""
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in filenames:
            if name.startswith(TMP_PREFIX):
                (here / name).unlink(missing_ok=True)
                removed += 1
        for name in list(dirnames):
            if name.startswith(TRASH_PREFIX):
                shutil.rmtree(here / name, ignore_errors=True)
                dirnames.remove(name)
                removed += 1
    return removed
