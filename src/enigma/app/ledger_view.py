"""A node's reads of the ledger for its job services, the fixed fields cached.

A split job makes every reducer check a dozen partials against the same few jobs and
nodes; reading the ledger for each, under the node's one ledger lock, cost a second. A
job's dataset, script hash and quorum and a node's transport key never change once
written, so they are read once; a job's status is never taken from the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from enigma.ledger import JobInfo, Ledger

from .host import NodeHost


class LedgerView:
    """Serialized ledger calls on the node's one connection, and the cached records."""

    def __init__(self, node: NodeHost) -> None:
        self.node = node
        self._lock = threading.Lock()
        self._jobs: dict[int, JobInfo] = {}
        self._keys: dict[str, bytes] = {}

    def call(self, fn: Callable[[Ledger], Any]) -> Any:
        assert self.node.ledger is not None
        with self.node.ledger_lock:
            return fn(self.node.ledger)

    def job(self, job_id: int) -> JobInfo:
        """A job's record for its fixed fields (dataset, script hash, quorum), read once."""
        with self._lock:
            info = self._jobs.get(job_id)
        if info is None:
            info = self.call(lambda lg: lg.job(job_id))
            with self._lock:
                self._jobs[job_id] = info
        return info

    def transport_key(self, address: str) -> bytes:
        """A registered node's transport key (fixed at registration), read once."""
        with self._lock:
            key = self._keys.get(address)
        if key is None:
            key = self.call(lambda lg: lg.node(address).transport_key)
            with self._lock:
                self._keys[address] = key
        return key
