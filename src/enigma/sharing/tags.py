"""Tags that authenticate stored values: y = kappa x beside every value x, under the owner's
per-dataset key kappa (the check itself is `enigma.mpc.inputs.check_tags`).

Why tags live as columns of their own: storage shares them t-of-n like the data, with
independent randomness, so recovery, refresh and repair (all linear in the shares) keep
them consistent with the data without knowing they are tags, and the holders' ledger
commitments cover them. Independent randomness matters: if the tag were shared with kappa
times the value's own polynomial, a member scaling both of its shares by one factor would
pass the check.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from enigma.field import PRG, Field
from enigma.files import write_atomic

SUFFIX = ".tag"
_MAGIC = b"ENGTAGKEY1"


class TagKeyError(RuntimeError):
    """The owner's tag key is missing or damaged."""


def column(name: str) -> str:
    """The stored name of a column's tags."""
    return name + SUFFIX


def is_tag(name: str) -> bool:
    return name.endswith(SUFFIX)


def tag(field: Field, x: np.ndarray, key: np.ndarray) -> np.ndarray:
    """kappa x elementwise, for field elements x (n, 2) and a key of one element."""
    return field.mul(x, key.reshape(1, 2))


def new_key(field: Field, prg: PRG | None = None) -> np.ndarray:
    """A uniformly random nonzero key (a zero key would make every tag 0 and pass anything)."""
    while True:
        key = field.random(1, prg or PRG())
        if np.any(key != 0):
            return key


def save_key(path: Path, key: np.ndarray) -> None:
    """Write a key atomically with a checksum (mode 0600)."""
    body = np.ascontiguousarray(key, dtype="<u8").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, [_MAGIC, body, hashlib.sha256(_MAGIC + body).digest()])


def load_key(path: Path, field: Field) -> np.ndarray:
    """A key written by `save_key`, checked; TagKeyError names the file and the problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise TagKeyError(f"no tag key at {path}: without it the dataset's jobs cannot check "
                          "their inputs; restore it from a backup or share the data again "
                          "under a new name") from exc
    body = raw[len(_MAGIC):-32]
    if not raw.startswith(_MAGIC) or len(body) != 16 or \
            hashlib.sha256(_MAGIC + body).digest() != raw[-32:]:
        raise TagKeyError(f"the tag key {path} is damaged (checksum or length); restore it "
                          "from a backup")
    key = np.frombuffer(body, dtype="<u8").reshape(1, 2).astype(np.uint64)
    field.check(key)
    return key
