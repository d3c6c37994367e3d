"""Commitments to stored shares, as the ledger records them.

A chunk commitment binds the dataset id, the chunk index and, for every column, its name,
dtype, shape and the SHA-256 of its bytes: a node that later serves a chunk can be checked
against the ledger without trusting its file system, and cannot answer with another chunk's
(valid) shares. The owner computes the same value from the arrays it sends (`describe`),
the node from its file headers, so the two agree without exchanging the data again.

A dataset commitment (one bytes32 per holder on the ledger) hashes the holder's chunk
commitments in chunk order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .container import payload_bytes

_CHUNK_DOMAIN = b"enigma.storage.chunk.v1\0"
_DATASET_DOMAIN = b"enigma.storage.dataset.v1\0"


class ColumnDigest(NamedTuple):
    """The facts about one stored column that a commitment covers."""

    dtype: np.dtype
    shape: tuple[int, ...]
    sha256: bytes


def describe(array: np.ndarray) -> ColumnDigest:
    """The digest of `array` exactly as `ShareStore.put` would store it."""
    return ColumnDigest(array.dtype, tuple(array.shape),
                        hashlib.sha256(payload_bytes(array)).digest())


def column_facts(columns: Mapping[str, ColumnDigest]) -> list[list[Any]]:
    """The columns' digests as the commitment hashes them, sorted by name and JSON-ready:
    [[name, dtype descr, shape, sha256 hex], ...]. A holder states them this way when it
    commits to what it stores in a job (anyone rebuilds the commitment from them)."""
    return [[name, np.lib.format.dtype_to_descr(d.dtype), list(d.shape), d.sha256.hex()]
            for name, d in sorted(columns.items())]


def read_column_facts(facts: Sequence[Sequence[Any]]) -> dict[str, ColumnDigest]:
    """`column_facts` back to digests; ValueError, TypeError or KeyError if malformed."""
    return {str(name): ColumnDigest(np.lib.format.descr_to_dtype(descr), tuple(shape),
                                    bytes.fromhex(sha)) for name, descr, shape, sha in facts}


def chunk_commitment(dataset: str, chunk: int, columns: Mapping[str, ColumnDigest]) -> bytes:
    """SHA-256 over the chunk's address and its columns, sorted by name (32 bytes)."""
    body = json.dumps([dataset, chunk, column_facts(columns)], separators=(",", ":")).encode()
    return hashlib.sha256(_CHUNK_DOMAIN + body).digest()


def dataset_commitment(chunk_commitments: Sequence[bytes]) -> bytes:
    """SHA-256 over a holder's chunk commitments in chunk order (32 bytes)."""
    for i, c in enumerate(chunk_commitments):
        if len(c) != 32:
            raise ValueError(f"chunk commitment {i} is {len(c)} bytes, expected 32")
    return hashlib.sha256(
        _DATASET_DOMAIN + len(chunk_commitments).to_bytes(8, "big") + b"".join(chunk_commitments)
    ).digest()
