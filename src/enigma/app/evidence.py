"""Evidence files: where they live, who keeps them, how anyone gets them.

Each node keeps evidence files in `<home>/evidence/`, named by their keccak256, and
serves them to anyone who asks by hash (`evidence-get`). A node stores a file only if an
accusation on chain names exactly its hash (`evidence-put`), so nobody can make nodes
keep arbitrary bytes. The accuser pushes the file to every member of the job's quorum,
the accused included, and to a few other active nodes drawn at random
(`evidence_holders`, `publish_evidence`): if every other member colludes with the
culprit and withholds the file, an honest outsider still serves it. A verifier asks the
quorum, found on the ledger with endpoints and keys, then the committee members, who keep
what they fetched, then every other active node (`fetch_evidence`). The DHT is not used:
its records hold at most 8 KB, and an evidence file is kilobytes to megabytes. The
ledger already names who must have the file, and whom to ask.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from eth_utils import keccak

from enigma.files import write_atomic
from enigma.ledger import Ledger, LedgerError
from enigma.net.identity import Identity

from .host import NodeHost
from .service import Connection, ServiceError, parse_endpoint

log = logging.getLogger(__name__)

MAX_EVIDENCE_BYTES = 256 << 20
"""A node refuses to store bigger files (a 1,000-element comparison's evidence is 3 MB)."""
EXTRA_HOLDERS = 3
"""Active nodes outside the quorum that also get each evidence file."""


class EvidenceStore:
    """Evidence files under their keccak256: `<root>/<hex>.bin`, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: bytes) -> Path:
        return self.root / f"{digest.hex()}.bin"

    def get(self, digest: bytes) -> bytes | None:
        """The file with this hash, if held here and intact."""
        try:
            data = self.path(digest).read_bytes()
        except OSError:
            return None
        return data if keccak(data) == digest else None

    def put(self, data: bytes) -> bytes:
        digest = keccak(data)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.get(digest) is None:
            write_atomic(self.path(digest), [data])
        return digest


def _as_bytes(arrays: Sequence[np.ndarray]) -> bytes:
    if len(arrays) != 1:
        raise ServiceError("bad-request", "an evidence file travels as one byte array")
    return np.ascontiguousarray(arrays[0], dtype=np.uint8).tobytes()


def evidence_ops(node: NodeHost) -> dict[str, Callable[[bytes, dict[str, Any], list[np.ndarray]],
                                                   tuple[dict[str, Any], list[np.ndarray]]]]:
    """The node's two evidence requests; the store is `<home>/evidence`."""
    store = EvidenceStore(node.config.home / "evidence")

    def put(client: bytes, header: dict[str, Any], arrays: list[np.ndarray]
            ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Keep a file that an accusation on chain names (its `accusation_id`)."""
        data = _as_bytes(arrays)
        if len(data) > MAX_EVIDENCE_BYTES:
            raise ServiceError("too-large", f"evidence files are at most {MAX_EVIDENCE_BYTES} "
                                            "bytes here")
        assert node.ledger is not None
        with node.ledger_lock:
            accusation = node.ledger.accusation(int(header["accusation_id"]))
        if accusation.evidence_hash != keccak(data):
            raise ServiceError("refused", f"accusation {accusation.accusation_id} names "
                                          "another evidence hash; only files on chain are kept")
        store.put(data)
        return {"stored": accusation.evidence_hash.hex()}, []

    def get(client: bytes, header: dict[str, Any], arrays: list[np.ndarray]
            ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Hand out a file by its keccak256: evidence is public."""
        digest = bytes.fromhex(str(header["hash"]))
        data = store.get(digest)
        if data is None:
            raise ServiceError("missing", f"no evidence file {digest.hex()[:16]}... here")
        return {"hash": digest.hex()}, [np.frombuffer(data, dtype=np.uint8)]

    return {"evidence-put": put, "evidence-get": get}


def _connect(ledger: Ledger, identity: Identity, address: str, timeout: float) -> Connection:
    info = ledger.node(address)
    host, port, _ = parse_endpoint(info.endpoint)
    return Connection.open(host, port, identity, info.transport_key, timeout)


def evidence_holders(ledger: Ledger, quorum: Sequence[str],
                     extra: int = EXTRA_HOLDERS) -> list[str]:
    """Where an accuser pushes an evidence file: the job's quorum, and `extra` other active
    nodes drawn at random (the colluders of a culprit cannot make it vanish)."""
    others = [a for a in ledger.active_nodes() if a not in quorum]
    return [*quorum, *secrets.SystemRandom().sample(others, min(extra, len(others)))]


def publish_evidence(ledger: Ledger, identity: Identity, accusation_id: int, data: bytes,
                     to: Iterable[str], timeout: float = 10.0) -> list[str]:
    """Push an accusation's evidence file to these nodes (the job's quorum); returns the
    ones that stored it. A node that is down or refuses is logged and skipped: the file
    needs one honest holder, and the accused itself counts (it is in the quorum)."""
    stored = []
    for address in to:
        try:
            with _connect(ledger, identity, address, timeout) as conn:
                conn.request("evidence-put", [np.frombuffer(data, dtype=np.uint8)],
                             accusation_id=accusation_id)
            stored.append(address)
        except (ServiceError, LedgerError, OSError) as exc:
            log.warning("evidence of accusation %d not stored at %s: %s", accusation_id,
                        address, exc)
    return stored


def fetch_evidence(ledger: Ledger, identity: Identity, digest: bytes, sources: Iterable[str],
                   store: EvidenceStore | None = None, timeout: float = 5.0) -> bytes | None:
    """The evidence file with keccak256 `digest`: from `store`, else from the first of
    `sources` (node addresses) that hands over bytes with that hash; kept in `store`."""
    if store is not None and (data := store.get(digest)) is not None:
        return data
    for address in sources:
        try:
            with _connect(ledger, identity, address, timeout) as conn:
                _, arrays = conn.request("evidence-get", hash=digest.hex())
            data = _as_bytes(arrays)
        except (ServiceError, LedgerError, OSError) as exc:
            log.info("evidence %s... not fetched from %s: %s", digest.hex()[:16], address, exc)
            continue
        if keccak(data) == digest:
            if store is not None:
                store.put(data)
            return data
    return None
