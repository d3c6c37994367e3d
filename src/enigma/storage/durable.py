"""Crash-safe directories for the share store: creation, deletion and the sweep after a crash.

Files are replaced with `enigma.files.write_atomic`; what a crash can leave behind
(its `.tmp.` files, a half-deleted tree renamed to `.deleted.`) is removed by `sweep`
when a store opens. A directory is deleted by renaming it first, so a reader never sees
one half gone.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from enigma.files import TMP_PREFIX, fsync_dir

TRASH_PREFIX = ".deleted."


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
