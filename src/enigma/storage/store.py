"""A node's durable share store: share columns addressed by (dataset, chunk, column).

Layout under the store root (one directory per dataset, one per chunk):

    root/.lock                              held (flock) while a ShareStore is open
    root/<dataset>/manifest.json            schema hash, expiry, chunk count, commitments
    root/<dataset>/<chunk:08d>/<column>.share

Why one file per column of a chunk and not one file per chunk or a database: a column is
the unit the owner sends and the MPC engine reads (one numpy array), so a file per column
is written with one rename and read with one mmap, with no index to keep consistent.
SQLite or LMDB would add a second copy of 16 MB values through their page caches.

Every write is atomic and durable (`durable.write_atomic`); every read checks the header
and payload checksums (`container`) and raises CorruptShareError naming the file, dataset,
chunk and column. Opening a store removes temporary files left by a crash. One process owns
a store at a time (an exclusive flock), so that cleanup never races a live writer.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enigma.files import write_atomic

from .commitment import ColumnDigest, chunk_commitment
from .container import (
    PREFIX_SIZE,
    ColumnHeader,
    CorruptShareError,
    decode_header,
    encode_header,
    header_span,
    payload_bytes,
)
from .durable import make_dirs, remove_tree, sweep

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_SUFFIX = ".share"
_MANIFEST = "manifest.json"
_MANIFEST_FORMAT = "enigma-share-manifest v1"


class StoreError(Exception):
    """A share store request that cannot be served as asked."""


class StoreBusyError(StoreError):
    """Another ShareStore (in this or another process) has the same root open."""


class MissingShareError(StoreError, KeyError):
    """The requested dataset, chunk or column is not in this store."""

    def __str__(self) -> str:
        return str(self.args[0])


class CorruptManifestError(StoreError):
    """A manifest file failed its checksum or does not parse."""


@dataclass(frozen=True)
class Manifest:
    """What a node holds of one dataset, and until when it is paid to hold it."""

    dataset: str
    schema_hash: bytes
    expires_at: float
    chunk_count: int
    commitments: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "schema_hash": self.schema_hash.hex(),
            "expires_at": self.expires_at, "chunk_count": self.chunk_count,
            "commitments": [c.hex() for c in self.commitments],
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Manifest:
        return cls(
            dataset=body["dataset"], schema_hash=bytes.fromhex(body["schema_hash"]),
            expires_at=float(body["expires_at"]), chunk_count=int(body["chunk_count"]),
            commitments=tuple(bytes.fromhex(c) for c in body["commitments"]),
        )


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{kind} name {name!r} is not allowed: use 1-128 characters from letters, digits, "
            "'_', '.', '-', not starting with '.' or '-'"
        )
    return name


def _check_chunk(chunk: int) -> int:
    if (isinstance(chunk, bool) or not isinstance(chunk, int | np.integer)
            or not 0 <= int(chunk) < 10**8):
        raise ValueError(f"chunk index {chunk!r} must be an integer in 0..99999999")
    return int(chunk)


class ShareStore:
    """The share columns this node holds, on local disk under `root`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StoreBusyError(
                f"share store {self.root} is already open in another ShareStore or process; "
                "stop that node first, or give this one its own directory"
            ) from None
        self.swept = sweep(self.root)

    def close(self) -> None:
        """Release the store so another process may open it."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> ShareStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ShareStore({str(self.root)!r})"

    # -- addresses ---------------------------------------------------------------------------

    def _dataset_dir(self, dataset: str) -> Path:
        return self.root / _check_name("dataset", dataset)

    def _chunk_dir(self, dataset: str, chunk: int) -> Path:
        return self._dataset_dir(dataset) / f"{_check_chunk(chunk):08d}"

    def path(self, dataset: str, chunk: int, column: str) -> Path:
        """The file that holds this column (it may not exist)."""
        return self._chunk_dir(dataset, chunk) / (_check_name("column", column) + _SUFFIX)

    # -- columns ----------------------------------------------------------------------------

    def put(
        self, dataset: str, chunk: int, column: str, array: np.ndarray,
        meta: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Store `array` (any fixed-size dtype and shape) durably; return its payload SHA-256.

        `meta` is small JSON kept in the file header (e.g. the sharing scheme and threshold).
        An existing column at the same address is replaced atomically.
        """
        path = self.path(dataset, chunk, column)
        meta = dict(meta or {})
        try:
            json.dumps(meta)
        except TypeError as exc:
            raise TypeError(f"meta for {dataset}/{chunk}/{column} is not JSON: {exc}") from exc
        payload = payload_bytes(array)
        digest = hashlib.sha256(payload).digest()
        header = encode_header(dataset, int(chunk), column, array, digest, meta)
        make_dirs(path.parent, self.root.parent)  # the root too, if it was deleted
        write_atomic(path, [header, payload])
        return digest

    def header(self, dataset: str, chunk: int, column: str) -> ColumnHeader:
        """The checked header of a stored column (its payload is not read)."""
        path = self.path(dataset, chunk, column)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                head = f.read(PREFIX_SIZE)
                head += f.read(max(0, header_span(head) - len(head)))
        except FileNotFoundError:
            raise self._missing(dataset, chunk, column) from None
        return decode_header(head, size, path, dataset, int(chunk), column)

    def get(self, dataset: str, chunk: int, column: str) -> np.ndarray:
        """The stored array, read-only and memory-mapped, after its checksum passed."""
        path = self.path(dataset, chunk, column)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    raise CorruptShareError(path, dataset, int(chunk), column, "empty file",
                                            "truncated")
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise self._missing(dataset, chunk, column) from None
        view = memoryview(mm)
        try:
            head = decode_header(view, len(view), path, dataset, int(chunk), column)
            if hashlib.sha256(view[head.payload_offset:]).digest() != head.sha256:
                raise CorruptShareError(path, dataset, int(chunk), column,
                                        "payload checksum mismatch (bit rot or tampering)")
        finally:
            view.release()
        if head.nbytes == 0:
            return np.empty(head.shape, head.dtype)
        array = np.frombuffer(mm, dtype=head.dtype, count=int(np.prod(head.shape)),
                              offset=head.payload_offset)
        return array.reshape(head.shape)

    def has(self, dataset: str, chunk: int, column: str) -> bool:
        return self.path(dataset, chunk, column).is_file()

    def _missing(self, dataset: str, chunk: int, column: str) -> MissingShareError:
        return MissingShareError(
            f"this store ({self.root}) holds no column {column!r} of chunk {chunk} of dataset "
            f"{dataset!r}; it has columns {self.columns(dataset, chunk)} there"
        )

    # -- listings ---------------------------------------------------------------------------

    def datasets(self) -> list[str]:
        if not self.root.is_dir():  # deleted under a running node: it holds nothing
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and _NAME.fullmatch(p.name))

    def chunks(self, dataset: str) -> list[int]:
        d = self._dataset_dir(dataset)
        if not d.is_dir():
            return []
        return sorted(int(p.name) for p in d.iterdir()
                      if p.is_dir() and len(p.name) == 8 and p.name.isdigit())

    def columns(self, dataset: str, chunk: int) -> list[str]:
        d = self._chunk_dir(dataset, chunk)
        if not d.is_dir():
            return []
        return sorted(p.name[: -len(_SUFFIX)] for p in d.iterdir()
                      if p.name.endswith(_SUFFIX) and _NAME.fullmatch(p.name))

    def delete_dataset(self, dataset: str) -> bool:
        """Remove a dataset with all its chunks; False if it was not here."""
        d = self._dataset_dir(dataset)
        if not d.is_dir():
            return False
        remove_tree(d)
        return True

    # -- commitments and manifests ----------------------------------------------------------

    def digests(self, dataset: str, chunk: int) -> dict[str, ColumnDigest]:
        """Every stored column's digest of a chunk, from the headers (no payload read)."""
        columns = self.columns(dataset, chunk)
        if not columns:
            raise MissingShareError(
                f"this store ({self.root}) holds no columns of chunk {chunk} of dataset "
                f"{dataset!r}, so there is nothing to commit to"
            )
        digests = {}
        for name in columns:
            h = self.header(dataset, chunk, name)
            digests[name] = ColumnDigest(h.dtype, h.shape, h.sha256)
        return digests

    def commitment(self, dataset: str, chunk: int) -> bytes:
        """The chunk commitment (see `commitment.chunk_commitment`) from the stored headers."""
        return chunk_commitment(dataset, int(chunk), self.digests(dataset, chunk))

    def write_manifest(
        self, dataset: str, schema_hash: bytes, expires_at: float, chunk_count: int
    ) -> Manifest:
        """Seal a dataset once all its chunks are stored: commit to each and record expiry.

        Raises MissingShareError listing the chunks in 0..chunk_count-1 that are absent.
        """
        absent = sorted(set(range(chunk_count)) - set(self.chunks(dataset)))
        if absent:
            raise MissingShareError(
                f"cannot write the manifest of dataset {dataset!r} with {chunk_count} chunks: "
                f"chunks {absent[:10]}{'...' if len(absent) > 10 else ''} are not stored yet"
            )
        manifest = Manifest(
            dataset=dataset, schema_hash=bytes(schema_hash), expires_at=float(expires_at),
            chunk_count=chunk_count,
            commitments=tuple(self.commitment(dataset, i) for i in range(chunk_count)),
        )
        body = manifest.to_json()
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        envelope = {"format": _MANIFEST_FORMAT, "body": body,
                    "sha256": hashlib.sha256(text.encode()).hexdigest()}
        write_atomic(self._dataset_dir(dataset) / _MANIFEST,
                     [json.dumps(envelope, indent=1).encode()])
        return manifest

    def manifest(self, dataset: str) -> Manifest | None:
        """The sealed manifest of `dataset`, checked; None while the dataset is not sealed."""
        path = self._dataset_dir(dataset) / _MANIFEST
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            envelope = json.loads(raw)
            body = envelope["body"]
            text = json.dumps(body, sort_keys=True, separators=(",", ":"))
            ok = (envelope["format"] == _MANIFEST_FORMAT
                  and hashlib.sha256(text.encode()).hexdigest() == envelope["sha256"])
            manifest = Manifest.from_json(body) if ok else None
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptManifestError(
                f"manifest {path} of dataset {dataset!r} does not parse ({exc}); "
                "re-seal it with write_manifest after checking the chunks"
            ) from exc
        if manifest is None or manifest.dataset != dataset:
            raise CorruptManifestError(
                f"manifest {path} of dataset {dataset!r} fails its checksum or names another "
                "dataset; re-seal it with write_manifest after checking the chunks"
            )
        return manifest

    def purge_expired(self, now: float | None = None) -> list[str]:
        """Delete every sealed dataset whose expiry is before `now` (default: the clock).

        Unsealed datasets (upload in progress or abandoned) are kept: without a manifest
        there is no expiry to go by.
        """
        now = time.time() if now is None else now
        purged = []
        for dataset in self.datasets():
            manifest = self.manifest(dataset)
            if manifest is not None and manifest.expires_at < now:
                self.delete_dataset(dataset)
                purged.append(dataset)
        return purged

    def scrub(self, dataset: str | None = None) -> Iterator[CorruptShareError]:
        """Read every column (of one dataset or all) and yield the ones that fail checks."""
        for ds in [dataset] if dataset is not None else self.datasets():
            for chunk in self.chunks(ds):
                for column in self.columns(ds, chunk):
                    try:
                        self.get(ds, chunk, column)
                    except CorruptShareError as exc:
                        yield exc
