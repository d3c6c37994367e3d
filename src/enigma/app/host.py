"""What a node's services see of the node daemon: its configuration and a few handles.

The job, dispute, evidence and stock services run inside the daemon (`node.Node`) and
need its ledger connection, key, store and configuration; they name the daemon through
`NodeHost`, a Protocol, so the daemon can import them without a cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from enigma.field import Field
from enigma.ledger import Ledger
from enigma.net.identity import Identity
from enigma.storage.store import ShareStore

from .admission import UPLOAD_QUOTA
from .service import HANDSHAKE_TIMEOUT

if TYPE_CHECKING:
    from .metrics import NodeMetrics
    from .stock import QuorumStocks


@dataclass
class NodeConfig:
    """Everything a node needs to start; the CLI fills it from options."""

    home: Path
    rpc: str
    deployment: Path
    account: str | bytes
    """An address the chain has unlocked (dev chains) or a private key (real chains)."""
    host: str = "127.0.0.1"
    """The address to bind (listen on); 0.0.0.0 or :: for every interface."""
    advertise: str = ""
    """The address peers reach this node at (ledger endpoint); empty: the bound one."""
    port: int = 0
    dht_port: int = 0
    metrics_port: int = 0
    job_ports: tuple[int, int] = (0, 0)
    """TCP ports the job and pre-generation meshes may listen on; (0, 0): any free one."""
    shutdown_grace: float = 30.0
    """Seconds a SIGTERMed node lets its running jobs finish before it hands them back."""
    bootstrap: Sequence[tuple[str, int]] = ()
    deposit: int | None = None
    """Wei to stake at registration; None stakes the ledger's minimum."""
    register: bool = True
    housekeeping: float = 60.0
    unsealed_ttl: float = 24 * 3600.0
    """Seconds an unsealed (unpaid) upload may sit untouched before it is deleted."""
    results_ttl: float = 30 * 24 * 3600.0
    """Seconds an analyst's sealed result is kept for `enigma job result` before deletion."""
    connection_idle: float = 600.0
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    """Seconds a client has for its preface and the whole handshake (slow ones are cut)."""
    upload_quota: int = UPLOAD_QUOTA
    """Unsealed bytes a key without sealed data here may upload (`admission`); 0 admits
    only members (ledger nodes, owners of sealed data)."""
    misbehave: str | None = None
    """Test-only fault injection (`enigma.mpc.faults.KINDS`): this node cheats in every job
    it runs. Set only with --insecure-test-faults; the node logs a warning per job."""
    misbehave_at: int = 2
    """Where the fault strikes: the node's n-th sending call (or triples request)."""
    watch_interval: float = 1.0
    """Seconds between looks at the ledger's accusations (dispute, vote, finalize)."""
    prep_ahead: int = 0
    """After each job, top its quorum's HE stock up to this many triples (app/stock.py)."""
    prep_ahead_bits: int = 0
    """... and to this many random bits (comparisons consume about 100 each)."""
    prep_ahead_inputs: int = 0
    """... and to this many input masks per member (a job spends one per value it reads)."""


class NodeHost(Protocol):
    """The parts of a running node its services use."""

    config: NodeConfig
    field: Field
    identity: Identity | None
    ledger: Ledger | None
    ledger_lock: threading.Lock
    """Held around every call on `ledger` (one connection, many service threads)."""
    store: ShareStore | None
    stocks: QuorumStocks
    metrics: NodeMetrics

    @property
    def advertised(self) -> str:
        """The address peers reach this node at: `config.advertise`, else `config.host`."""
        ...

    def job_port(self) -> int:
        """A free port of `config.job_ports` for one job's (or pre-generation's) mesh."""
        ...

    @property
    def address(self) -> str: ...

    @property
    def node_id(self) -> bytes: ...
