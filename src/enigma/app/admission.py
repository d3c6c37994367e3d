"""Who may talk to a node's service port, and how much a key that has paid nothing may store.

The rule (docs/node.md, "Who may connect"), decided right after the handshake has proven
the client's key and before the connection allocates anything beyond its fixed buffers:

  1. members — this node's own key, the transport keys of active nodes on the ledger,
     and owners of a sealed (ledger-paid) dataset generation in this node's store — may
     use every request, with messages up to `service.MAX_MESSAGE`;
  2. guests — any other well-formed key — are admitted only while (a) fewer than
     `max_guests` guest connections are open and (b) the key's unsealed bytes on this
     node are below `quota`. A guest may make an owner's requests (`GUEST_OPS`), not
     node-to-node ones, and send messages up to `GUEST_MESSAGE`; each `put` must keep
     its unsealed bytes within the quota. Why guests at all: an owner's first upload
     comes from a key no node knows yet; it becomes a member once the ledger pays for a
     generation and the node seals it.
  3. everyone else is refused with the NOT_ADMITTED verdict after the TLS handshake
     (`net.handshake`).

Why unsealed bytes and not connections or requests: unsealed data is what a stranger can
make a node keep without paying (until `unsealed_ttl`); sealed data was paid for on the
ledger. The ledger's node keys are cached and re-read on a miss at most once per
`REFRESH` seconds, so strangers cannot make the node hammer the ledger.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from enigma.ledger import LedgerError
from enigma.storage.store import ShareStore, StoreError

from .service import MAX_MESSAGE, ServiceError

log = logging.getLogger(__name__)

#: Default unsealed bytes one guest key may keep on a node (an owner's first upload).
UPLOAD_QUOTA = 1 << 30
#: Largest message a guest may send: a `put` of a chunk (65,536 rows of 16-byte shares per
#: column by default) or an evidence file (`disputes.MAX_EVIDENCE_BYTES`, 256 MiB) with
#: its header.
GUEST_MESSAGE = (1 << 28) + (1 << 20)
#: Guest connections a node keeps open at once; more are refused until one closes.
MAX_GUESTS = 64
#: Seconds between two reads of the ledger's node keys caused by unknown keys.
REFRESH = 1.0
#: What a guest may ask: what an owner's client asks, each request checking the client's
#: own rights itself (its store names, or a ledger record naming it: a job on its dataset
#: runs on a reducing quorum that holds none of its data), evidence (public) and a job's
#: result sealed to its recipient (useless to anyone else). Not
#: node-to-node requests (job-partial, job-reshare, contribution, prep*).
GUEST_OPS = frozenset({"hello", "have", "put", "commitment", "seal", "get", "verify",
                       "expect", "reshare", "job-open", "job-run", "job-cancel", "job-blame",
                       "evidence-put", "evidence-get", "job-result"})


def owner_of(store_name: str) -> str:
    """The owner key (hex) in a store name `<dataset>.<owner hex>.g<gen>`."""
    return store_name.split(".")[1] if store_name.count(".") == 2 else ""


class Admission:
    """The node's admission policy; thread-safe (every connection thread asks it)."""

    def __init__(self, own_key: bytes, store: ShareStore,
                 node_keys: Callable[[], Iterable[bytes]], quota: int = UPLOAD_QUOTA,
                 max_guests: int = MAX_GUESTS) -> None:
        self._own = own_key
        self._store = store
        self._read_node_keys = node_keys
        self.quota = quota
        self.max_guests = max_guests
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._node_keys: frozenset[bytes] = frozenset()
        self._read_at = -float("inf")
        self._guests: Counter[bytes] = Counter()

    def _is_node(self, key: bytes) -> bool:
        """Whether `key` is an active node's, as the ledger says after this call began.

        On a miss the keys are read again, but at most once per REFRESH seconds: a caller
        waits for the next read rather than trusting one older than its own arrival (a
        node registered a moment ago is seen), and strangers cost the ledger one read a
        second however many there are.
        """
        if key in self._node_keys:
            return True
        asked = time.monotonic()
        with self._refresh_lock:
            if self._read_at < asked:
                time.sleep(max(0.0, self._read_at + REFRESH - time.monotonic()))
                self._read_at = time.monotonic()
                try:
                    self._node_keys = frozenset(self._read_node_keys())
                except (LedgerError, OSError) as exc:
                    log.warning("admission: cannot read node keys from the ledger: %s", exc)
        return key in self._node_keys

    def _sealed(self, name: str) -> bool:
        try:
            return self._store.manifest(name) is not None
        except StoreError:  # a damaged manifest seals nothing; repair names it
            return False

    def _owned(self, key: bytes) -> list[str]:
        mine = key.hex()
        return [n for n in self._store.datasets() if owner_of(n) == mine]

    def is_member(self, key: bytes, fresh: bool = False) -> bool:
        """This node, an active ledger node, or the owner of a sealed dataset here; with
        `fresh`, an unknown key is looked up on the ledger again (may wait up to REFRESH s)."""
        return (key == self._own or key in self._node_keys
                or any(self._sealed(n) for n in self._owned(key))
                or (fresh and self._is_node(key)))

    def unsealed_bytes(self, key: bytes, skip: tuple[str, int] | None = None) -> int:
        """Bytes of `key`'s unsealed generations on disk, without chunk `skip` (name, chunk),
        which a `put` is about to replace."""
        total = 0
        for name in self._owned(key):
            if self._sealed(name):
                continue
            for chunk in self._store.chunks(name):
                if (name, chunk) == skip:
                    continue
                for column in self._store.columns(name, chunk):
                    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                        total += self._store.path(name, chunk, column).stat().st_size
        return total

    def admit(self, key: bytes) -> bool:
        """The handshake's `admit` callback; a guest admitted here holds a slot until
        `release(key)`. The ledger is asked only when the key would be refused."""
        if self.is_member(key):
            return True
        with self._lock:
            full = sum(self._guests.values()) >= self.max_guests
            spent = self.unsealed_bytes(key) >= self.quota
            if not full and not spent:
                self._guests[key] += 1
                return True
        if self.is_member(key, fresh=True):
            return True
        log.info("admission: refused %s...: not a ledger node nor an owner of sealed data "
                 "here, and %s", key.hex()[:16],
                 f"{self.max_guests} guests are connected" if full
                 else f"its upload quota of {self.quota} bytes is used up")
        return False

    def release(self, key: bytes) -> None:
        """A connection admitted by `admit` closed."""
        with self._lock:
            if self._guests[key] > 0:
                self._guests[key] -= 1
            if not self._guests[key]:
                del self._guests[key]

    def message_cap(self, key: bytes) -> int:
        """The largest message this key may send on a connection (checked before any
        allocation by the record layer)."""
        return MAX_MESSAGE if self.is_member(key) else GUEST_MESSAGE

    def check(self, key: bytes, op: str) -> None:
        """Refuse a request a guest may not make (member status is looked up again, so a
        key that became a member since it connected is not held back)."""
        if op not in GUEST_OPS and not self.is_member(key, fresh=True):
            raise ServiceError("not-admitted", f"{op!r} is for registered nodes and owners of "
                                               "data on this node; this key is neither")

    def check_put(self, key: bytes, name: str, chunk: int, nbytes: int) -> None:
        """Refuse a guest's chunk that would take its unsealed bytes past the quota."""
        if self.is_member(key):
            return
        used = self.unsealed_bytes(key, skip=(name, chunk))
        if used + nbytes > self.quota:
            raise ServiceError("quota", f"this chunk ({nbytes} bytes) would take the unsealed "
                                        f"uploads of this key to {used + nbytes} bytes, over this"
                                        f" node's quota of {self.quota} for keys without sealed "
                                        "data; seal what is uploaded first, or ask the operator "
                                        "for a larger --upload-quota")
