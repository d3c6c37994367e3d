"""Names every role of the app needs: where a dataset lives in a store, and a home's key.

Node and owner both derive a dataset generation's store name (`store_name`) and load
their long-term identity the same way, so these sit below both.
"""

from __future__ import annotations

import re
from pathlib import Path

from enigma.net.identity import Identity

from .service import ServiceError

DATASET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,47}")
RESULTS = "results"
"""A node home's folder of results sealed to analysts (`job<id>.sealed`)."""
SEALED_SUFFIX = ".sealed"


def store_name(dataset: str, owner: bytes, gen: int) -> str:
    """Where a generation of an owner's dataset lives in a node's share store."""
    if not isinstance(dataset, str) or not DATASET_NAME.fullmatch(dataset):
        raise ServiceError("bad-request", f"dataset name {dataset!r} must be 1-48 letters, "
                                          "digits, '_' or '-', not starting with '-'")
    if not isinstance(gen, int) or not 0 <= gen < 10**6:
        raise ServiceError("bad-request", f"generation {gen!r} must be an integer 0..999999")
    return f"{dataset}.{owner.hex()}.g{gen}"


def load_or_create_identity(path: Path) -> Identity:
    """The node's key: made on first start, then always the same (KeyFileError if damaged)."""
    if path.exists():
        return Identity.load(path)
    identity = Identity.generate()
    identity.save(path)
    return identity
