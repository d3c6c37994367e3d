"""The node daemon: stake on the ledger, join the DHT, store shares, serve owners and peers.

Start-up, in order (`Node.start`):

  1. load the identity key from <home>/node.key, or make one (mode 0600, atomic write);
  2. open the share store <home>/shares (one process per store; crash leftovers swept);
  3. bind the service port, so that the endpoint registered next is the real one;
  4. register on the ledger with a deposit, unless this account is already registered
     (then its registered transport key must be this identity's key, and an endpoint
     that changed since, a restart on other ports, is updated: peers read it there);
  5. join the DHT (bootstrap from the given endpoints, else from the ledger's other
     nodes) and publish this node's endpoint record, signed with the identity key;
  6. serve /metrics and /health, accept service connections, purge expired datasets.

Who may connect (`admission`): this node, active ledger nodes and owners of sealed data
here use every request; any other key is a guest that may upload within
`upload_quota` unsealed bytes (at most `MAX_GUESTS` guests at once); others are refused
right after the handshake. Idle connections close after `connection_idle` seconds.

Storage policy, and why "accept first, visible after the ledger": an upload arrives as
unsealed chunks (a generation of a dataset) that no request other than the owner's own
`have` and `commitment` will see. The node seals a generation only when the owner names
a ledger record that (a) points to this dataset and owner (its DHT key), (b) lists this
node as a holder and (c) carries exactly the commitment this node computes from its own
files. The alternative, posting on the ledger first, would make the owner pay for
storage before any node has accepted a byte, and the commitments it posts would have to
be computed from shares it has not sent yet. Unsealed data is never served, so an upload
that stops half-way (bad row, crash, lost connection) leaves nothing visible.

Requests (`service` protocol; the client's proven key is `client`). A dataset's files
live under `<dataset>.<owner key hex>.g<generation>`, so an owner reaches only its own
datasets, and a stranger's uploads can never overwrite them:

  hello                                         -> node key, ledger address, registered
  have        dataset gen                       -> stored chunks and their commitments
  put         dataset gen chunk t point rows    + one array per column  -> commitment
  commitment  dataset gen chunk_count           -> this holder's dataset commitment
  seal        dataset gen ledger_id chunk_count -> checks the ledger record, writes manifest
  get         dataset gen chunk                 + arrays (sealed generations only)
  verify      dataset gen chunk_count columns   -> every missing, truncated or corrupt piece
  expect      dataset gen t point participants chunk_count  (before a reshare, owner only)
  reshare     dataset gen new_gen point participants targets (owner only; see recovery)
  contribution owner dataset gen chunk from_point + arrays (from a participant node)
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enigma.field import Field
from enigma.ledger import Deployment, Ledger, LedgerError
from enigma.ledger.errors import JobClosed
from enigma.mpc.faults import KINDS
from enigma.net.errors import KeyFileError, MalformedKey, NetError, NotAdmitted
from enigma.net.identity import Identity
from enigma.net.local import free_port_in
from enigma.storage.audit import audit
from enigma.storage.commitment import dataset_commitment
from enigma.storage.container import CorruptShareError
from enigma.storage.dht import DhtNode
from enigma.storage.records import DhtError, record_key
from enigma.storage.recovery import RecoveryError, combine_chunk, reshare_chunk
from enigma.storage.store import MissingShareError, ShareStore, StoreError

from .accounts import bootstrap_peers, ledger_options, payer
from .admission import UPLOAD_QUOTA, Admission
from .disputes import Watcher
from .evidence import evidence_ops
from .health import Unhealthy, probe, summary
from .home import RESULTS, SEALED_SUFFIX, load_or_create_identity, store_name
from .host import NodeConfig
from .logs import configure, log_options
from .metrics import MetricsServer, NodeMetrics
from .node_config import (
    CONFIG_FILE,
    SETTINGS,
    ConfigError,
    config_path,
    env_settings,
    parse_port_range,
    read_config,
    write_config,
)
from .node_jobs import NodeJobs, job_ops
from .service import (
    Connection,
    ServiceError,
    accept,
    format_endpoint,
    parse_endpoint,
    serve,
)
from .stock import QuorumStocks, prep_command, prep_ops, write_service_file

log = logging.getLogger(__name__)

#: Chunks a `verify` may ask about (65,536 rows each by default: 6.5e10 rows).
MAX_CHUNKS = 1_000_000
#: Damaged pieces a `verify` reply names one by one; the rest are counted.
MAX_DAMAGE_REPORTED = 100


def drop_old_results(folder: Path, older_than: float, now: float | None = None) -> list[Path]:
    """Delete sealed results (for analysts, `NodeJobs.result`) older than `older_than`.

    Why: every job on a dataset with a release policy leaves one on each member, and only
    its recipient can open it; after the analyst's window it is dead weight. Age is the
    file's modification time (written once, when the member sealed it)."""
    now = time.time() if now is None else now
    gone = [p for p in folder.glob(f"*{SEALED_SUFFIX}") if now - p.stat().st_mtime > older_than]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def drop_unsealed(store: ShareStore, older_than: float, now: float | None = None) -> list[str]:
    """Delete dataset generations never sealed and untouched for `older_than` seconds.

    Why: a node accepts uploads before the ledger pays for them (see the module
    docstring), so an abandoned upload would otherwise hold disk forever. "Untouched" is
    the newest modification time of the generation's chunk directories (a file renamed
    into a chunk directory updates it), so an upload or reshare in progress is kept.
    """
    now = time.time() if now is None else now
    dropped = []
    for name in store.datasets():
        if store.manifest(name) is not None:
            continue
        root = store.root / name
        newest = max([root.stat().st_mtime, *(p.stat().st_mtime for p in root.iterdir())])
        if now - newest > older_than:
            store.delete_dataset(name)
            dropped.append(name)
    return dropped


@dataclass
class _Reshare:
    """What a new holder expects during a reshare, from the owner's `expect`."""

    name: str
    t: int
    point: int
    participants: dict[int, bytes]
    chunk_count: int
    received: dict[int, dict[int, dict[str, np.ndarray]]] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)


class NodeError(Exception):
    """A node that cannot start as configured; the message says what to change."""


class Node:
    """One storage and computation node; `start`, then `stop` (or `run` until SIGTERM)."""

    def __init__(self, config: NodeConfig, field_: Field | None = None) -> None:
        self.config = config
        self.field = field_ or Field()
        self.metrics = NodeMetrics()
        self.identity: Identity | None = None
        self.store: ShareStore | None = None
        self.ledger: Ledger | None = None
        self.dht: DhtNode | None = None
        self.admission: Admission | None = None
        self.registered = False
        self.port = 0
        self._metrics_server: MetricsServer | None = None
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self.ledger_lock = threading.Lock()
        self._reshares: dict[tuple[bytes, str, int], _Reshare] = {}
        self._ops: dict[str, Callable[[bytes, dict[str, Any], list[np.ndarray]],
                                      tuple[dict[str, Any], list[np.ndarray]]]] = {
            "hello": self._hello, "have": self._have, "put": self._put,
            "commitment": self._commitment, "seal": self._seal, "get": self._get,
            "verify": self._verify, "expect": self._expect, "reshare": self._reshare,
            "contribution": self._contribution,
        }
        self.jobs = NodeJobs(self)
        self._ops.update(job_ops(self.jobs))
        self._ops.update(prep_ops(self))
        self.stocks = QuorumStocks(config.home, self.field)
        self.metrics.watch_stock(self.stocks.totals)
        self._ops.update(evidence_ops(self))

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def node_id(self) -> bytes:
        assert self.identity is not None
        return self.identity.public_key

    @property
    def metrics_port(self) -> int:
        assert self._metrics_server is not None
        return self._metrics_server.port

    @property
    def address(self) -> str:
        assert self.ledger is not None
        return self.ledger.address

    @property
    def advertised(self) -> str:
        return self.config.advertise or self.config.host

    def job_port(self) -> int:
        return free_port_in(self.config.host, *self.config.job_ports)

    def start(self) -> None:
        """Steps 1-6 of the module docstring; on failure everything started is stopped."""
        cfg = self.config
        if cfg.host in ("0.0.0.0", "::", "") and not cfg.advertise:
            raise NodeError(f"bind address {cfg.host!r} is every interface, which peers cannot "
                            "dial; set advertise (--advertise HOST) to the address they reach")
        try:
            cfg.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.identity = load_or_create_identity(cfg.home / "node.key")
            self.store = ShareStore(cfg.home / "shares")
            self.admission = Admission(self.node_id, self.store, self._active_keys,
                                       cfg.upload_quota)
            self._listener = socket.create_server((cfg.host, cfg.port), backlog=64)
            self.port = self._listener.getsockname()[1]
            self.ledger = Ledger.connect(cfg.rpc, cfg.account, Deployment.load(cfg.deployment))
            self.dht = DhtNode.start(cfg.host, cfg.dht_port, rpc_timeout=2.0, signing_key=(
                Ed25519PrivateKey.from_private_bytes(self.identity.private_bytes())))
            self._register()
            self._join_dht()
            self._metrics_server = MetricsServer(self.metrics, self._health, cfg.host,
                                                 cfg.metrics_port)
            self._publish_endpoint()
            write_service_file(cfg.home, self.advertised, self.port, self.node_id)
        except BaseException:
            self.stop()
            raise
        self._spawn(self._accept_loop, "node-accept")
        self._spawn(self._housekeeping_loop, "node-housekeeping")
        # accusations against this node, and committees it is drawn to (app/disputes.py)
        watcher = Watcher(self, cfg.watch_interval, always_dispute=cfg.misbehave is not None)
        self._spawn(lambda: watcher.run(self._stopping), "node-accusations")

    def _publish_endpoint(self) -> None:
        """This node's DHT record: the advertised address, not the bound one (a node bound
        to 0.0.0.0 in a container would send every owner that finds it to 0.0.0.0)."""
        assert self.dht is not None and self._metrics_server is not None
        self.dht.publish_endpoint({"service": self.port, "metrics": self._metrics_server.port},
                                  host=self.advertised)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _register(self) -> None:
        assert self.ledger is not None and self.dht is not None
        info = self.ledger.node()
        endpoint = format_endpoint(self.advertised, self.port, self.dht.port)
        if info.registered and info.transport_key != self.node_id:
            raise NodeError(
                f"ledger account {self.ledger.address} is registered with another node key "
                f"({info.transport_key.hex()[:16]}...); use that node's home directory, or "
                "another account for this one")
        if not info.registered and self.config.register:
            deposit = self.config.deposit or self.ledger.params().min_deposit
            self.ledger.register_node(endpoint, self.node_id, deposit)
            info = self.ledger.node()
        elif info.registered and info.endpoint != endpoint:  # restarted on other ports
            self.ledger.set_endpoint(endpoint)
        self.registered = info.active

    def _join_dht(self) -> None:
        """Bootstrap from the given endpoints, else from other nodes listed on the ledger."""
        assert self.ledger is not None and self.dht is not None
        endpoints = list(self.config.bootstrap)
        if not endpoints:
            for address in self.ledger.active_nodes():
                if address == self.ledger.address:
                    continue
                try:
                    host, _, dht_port = parse_endpoint(self.ledger.node(address).endpoint)
                except ServiceError as exc:  # another node's registration, not ours to fix
                    log.warning("skipping node %s for bootstrap: %s", address, exc)
                    continue
                if dht_port:
                    endpoints.append((host, dht_port))
        if endpoints:
            try:
                self.dht.bootstrap(endpoints)
            except DhtError as exc:
                log.warning("DHT bootstrap failed, serving alone until others join: %s", exc)

    def _health(self) -> tuple[bool, dict[str, Any]]:
        ok = not self._stopping.is_set() and self._listener is not None
        return ok, {"node": self.node_id.hex() if self.identity else None,
                    "registered": self.registered, "service_port": self.port,
                    "dht_port": self.dht.port if self.dht else None}

    def stop(self, grace: float = 10.0, jobs_grace: float = 0.0) -> None:
        """Stop accepting, finish or hand back running jobs, let requests finish, then close.

        1. no new connections, and no new jobs on open ones (`job-open` is refused);
        2. running jobs have `jobs_grace` s to finish; those still running then are handed
           back (`NodeJobs.hand_back`): each member replies with a signed `cancelled`
           record, which blames nobody, and its owner re-runs the job without this node;
        3. requests in progress (and those replies) have `grace` s more; then close.

        A request cut off by the grace period cannot leave a half-written file: every
        share file is written to a temporary name and renamed (`storage.durable`), and
        unsealed generations are never served.
        """
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        until = time.monotonic() + jobs_grace
        while self.jobs.running() and time.monotonic() < until:
            time.sleep(0.1)
        handed = self.jobs.hand_back("the node is shutting down (SIGTERM); run the job "
                                     "again without it")
        if handed:
            log.warning("shutdown: handed %d running job(s) back to their owners", handed)
        deadline = time.monotonic() + grace
        for thread in [*self._threads, *list(self._connections)]:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None
        if self.dht is not None:
            self.dht.stop()
        if self.store is not None:
            self.store.close()

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop cleanly (the CLI's main loop)."""
        wake = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: wake.set())
        while not wake.wait(0.5):
            pass
        log.info("shutdown: stopping (jobs have %g s to finish)", self.config.shutdown_grace)
        self.stop(jobs_grace=self.config.shutdown_grace)

    # -- connections ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None and self.identity is not None
        self._listener.settimeout(0.25)  # closing a socket does not wake a blocked accept()
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            thread = threading.Thread(target=self._connection, args=(sock,), daemon=True,
                                      name="node-connection")
            with self._lock:
                self._connections.add(thread)
            thread.start()

    def _connection(self, sock: socket.socket) -> None:
        """One client: handshake, admission (`admission`), then requests until it leaves.

        Every refusal is one log line: a malformed key (e.g. all zeros) a warning, a key
        not admitted or a failed handshake an info line.
        """
        assert self.identity is not None and self.admission is not None
        admission = self.admission
        admitted: list[bytes] = []

        def admit(key: bytes) -> bool:
            if admission.admit(key):
                admitted.append(key)
                return True
            return False

        self.metrics.connections.inc()
        try:
            link, client = accept(sock, self.identity, timeout=30.0, admit=admit,
                                  handshake_timeout=self.config.handshake_timeout)
        except MalformedKey as exc:
            log.warning("refused a service connection with a malformed key: %s", exc)
            sock.close()
        except NotAdmitted as exc:
            log.info("refused a service connection (not admitted): %s", exc)
            sock.close()
        except (NetError, ServiceError, OSError) as exc:
            log.info("refused a service connection: %s", exc)
            sock.close()
        else:
            link.channel.max_message = admission.message_cap(client)
            serve(link, client, self._dispatch, self._stopping.is_set,
                  idle=self.config.connection_idle)
        finally:
            for key in admitted:
                admission.release(key)
            self.metrics.connections.dec()
            with self._lock:
                self._connections.discard(threading.current_thread())

    def _dispatch(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]
                  ) -> tuple[dict[str, Any], list[np.ndarray]]:
        op = str(header.get("op"))
        handler = self._ops.get(op)
        if op == "job-open" and self._stopping.is_set():
            raise ServiceError("shutting-down", "this node is shutting down and takes no new "
                                                "jobs; draw a quorum without it")
        if handler is None:
            raise ServiceError("unknown-op", f"operation {op!r} is not one of {sorted(self._ops)}")
        assert self.admission is not None
        self.admission.check(client, op)
        outcome = "error"
        try:
            reply = handler(client, header, arrays)
            outcome = "ok"
            return reply
        except CorruptShareError as exc:
            self.metrics.corrupt.inc()
            raise ServiceError("corrupt", f"{exc}") from exc
        except MissingShareError as exc:
            raise ServiceError("missing", str(exc)) from exc
        except (RecoveryError, StoreError, LedgerError, KeyError, TypeError, ValueError) as exc:
            raise ServiceError("bad-request", f"{op}: {exc}") from exc
        finally:
            self.metrics.requests.labels(op, outcome).inc()

    # -- requests -------------------------------------------------------------------------------

    def _name(self, owner: bytes, header: dict[str, Any], gen_key: str = "gen") -> str:
        return store_name(header["dataset"], owner, int(header[gen_key]))

    def _require_sealed(self, name: str, sealed: bool = True) -> None:
        assert self.store is not None
        if (self.store.manifest(name) is not None) != sealed:
            state = "not sealed by a ledger record yet" if sealed else "sealed already"
            raise ServiceError("state", f"dataset generation {name} is {state}")

    def _hello(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        return {"node": self.node_id.hex(), "address": self.address,
                "registered": self.registered}, []

    def _have(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        assert self.store is not None
        name = self._name(client, header)
        chunks = {str(c): self.store.commitment(name, c).hex() for c in self.store.chunks(name)}
        return {"chunks": chunks, "sealed": self.store.manifest(name) is not None}, []

    def _check_shares(self, names: list[str], arrays: list[np.ndarray], rows: int) -> None:
        if len(names) != len(arrays) or len(set(names)) != len(names):
            raise ServiceError("bad-request", f"{len(names)} column names for {len(arrays)} "
                                              "arrays, or duplicate names")
        for name, arr in zip(names, arrays, strict=True):
            if arr.dtype != np.uint64 or arr.shape != (rows, 2):
                raise ServiceError("bad-request", f"column {name!r} must be uint64 ({rows}, 2) "
                                                  f"field elements, got {arr.dtype}{arr.shape}")
            p_lo, p_hi = np.uint64(self.field.p & (2**64 - 1)), np.uint64(self.field.p >> 64)
            if ((arr[:, 1] > p_hi) | ((arr[:, 1] == p_hi) & (arr[:, 0] >= p_lo))).any():
                raise ServiceError("bad-request", f"column {name!r} holds values that are not "
                                                  "elements of the field")

    def _write_chunk(self, name: str, chunk: int, columns: dict[str, np.ndarray],
                     meta: dict[str, Any]) -> str:
        assert self.store is not None
        for column, arr in columns.items():
            self.store.put(name, chunk, column, arr, meta)
            self.metrics.bytes_received.inc(arr.nbytes)
            self.metrics.columns_stored.inc()
        return self.store.commitment(name, chunk).hex()

    def _put(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        name = self._name(client, header)
        self._require_sealed(name, sealed=False)
        names, rows = list(header["columns"]), int(header["rows"])
        self._check_shares(names, arrays, rows)
        chunk = int(header["chunk"])
        assert self.admission is not None
        self.admission.check_put(client, name, chunk, sum(a.nbytes for a in arrays))
        meta = {"scheme": "shamir", "t": int(header["t"]), "point": int(header["point"]),
                "rows": rows, "owner": client.hex()}
        commitment = self._write_chunk(name, chunk,
                                       dict(zip(names, arrays, strict=True)), meta)
        return {"commitment": commitment}, []

    def _own_commitment(self, name: str, chunk_count: int) -> bytes:
        assert self.store is not None
        return dataset_commitment([self.store.commitment(name, c) for c in range(chunk_count)])

    def _commitment(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        name = self._name(client, header)
        return {"commitment": self._own_commitment(name, int(header["chunk_count"])).hex()}, []

    def _seal(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        """Make a generation visible once the ledger record confirms it.

        1. read the ledger record `ledger_id`;
        2. its DHT key must be the owner's dataset record key (so it is this dataset);
        3. this node's ledger address must be among its holders;
        4. the commitment at that position must equal the one computed from local files;
        5. write the manifest (schema hash and paid expiry from the ledger), then delete
           this owner's older generations of the dataset.
        """
        assert self.store is not None and self.ledger is not None
        name = self._name(client, header)
        chunk_count = int(header["chunk_count"])
        with self.ledger_lock:
            record = self.ledger.dataset(int(header["ledger_id"]))
        if record.dht_key != record_key("dataset", header["dataset"], client):
            raise ServiceError("ledger", f"ledger record {header['ledger_id']} is not about "
                                         f"dataset {header['dataset']!r} of this owner")
        if self.address not in record.holders:
            raise ServiceError("ledger", f"ledger record {header['ledger_id']} does not list "
                                         f"this node ({self.address}) as a holder")
        mine = self._own_commitment(name, chunk_count)
        if record.commitments[record.holders.index(self.address)] != mine:
            raise ServiceError("ledger", f"ledger record {header['ledger_id']} carries another "
                                         "commitment for this node than its stored shares "
                                         "have; re-send the chunks whose commitments differ")
        with self._lock:
            self.store.write_manifest(name, record.schema_hash, float(record.expires_at),
                                      chunk_count)
            gen = int(header["gen"])
            for old in self.store.datasets():
                stem, _, g = old.rpartition(".g")
                if stem == name.rpartition(".g")[0] and g.isdigit() and int(g) < gen:
                    self.store.delete_dataset(old)
        self.metrics.datasets.set(sum(1 for d in self.store.datasets()
                                      if self.store.manifest(d) is not None))
        return {"expires_at": record.expires_at}, []

    def _read_chunk(self, name: str, chunk: int) -> dict[str, np.ndarray]:
        assert self.store is not None
        columns = self.store.columns(name, chunk)
        if not columns:
            raise MissingShareError(f"this node holds no chunk {chunk} of {name}")
        return {c: self.store.get(name, chunk, c) for c in columns}

    def _get(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        assert self.store is not None
        name = self._name(client, header)
        self._require_sealed(name)
        chunk = int(header["chunk"])
        columns = self._read_chunk(name, chunk)
        meta = self.store.header(name, chunk, next(iter(columns))).meta
        self.metrics.bytes_served.inc(sum(a.nbytes for a in columns.values()))
        return {"columns": list(columns), "point": meta["point"], "rows": meta["rows"]}, list(
            columns.values())

    def _verify(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        """Audit this holder's copy of a generation against what the owner says it shared
        (`storage.audit`): the first MAX_DAMAGE_REPORTED pieces it lacks, and how many more.

        The chunk count is bounded so that a client cannot make the node walk (and count)
        an arbitrary range of chunks that were never there."""
        assert self.store is not None
        chunk_count = int(header["chunk_count"])
        if not 0 < chunk_count <= MAX_CHUNKS:
            raise ServiceError("bad-request", f"chunk_count {chunk_count} is outside "
                                              f"1..{MAX_CHUNKS}")
        columns = [str(c) for c in header["columns"]]
        damage = audit(self.store, self._name(client, header), chunk_count, columns)
        shown = [d.as_json() for d in itertools.islice(damage, MAX_DAMAGE_REPORTED)]
        more = sum(1 for _ in damage)
        self.metrics.corrupt.inc(sum(1 for d in shown if d["kind"] != "missing"))
        return {"damage": shown, "more": more}, []

    def _active_keys(self) -> dict[bytes, str]:
        """Transport key -> ledger address of every active registered node."""
        assert self.ledger is not None
        with self.ledger_lock:
            return {self.ledger.node(a).transport_key: a for a in self.ledger.active_nodes()}

    def _expect(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        """Get ready to receive a new generation by resharing: who will send, and my point.

        Every participant must be an active node on the ledger: a node that is not
        registered (no deposit at stake) cannot take part in a reshare.
        """
        name = self._name(client, header)
        self._require_sealed(name, sealed=False)
        participants = {int(p): bytes.fromhex(k) for p, k in header["participants"].items()}
        active = self._active_keys()
        strangers = [k.hex()[:16] for k in participants.values() if k not in active]
        if strangers:
            raise ServiceError("not-registered", f"participants {strangers} are not active "
                                                 "registered nodes on the ledger")
        t = int(header["t"])
        if len(participants) != t + 1:
            raise ServiceError("bad-request", f"a threshold-{t} reshare needs {t + 1} "
                                              f"participants, got {len(participants)}")
        with self._lock:
            self._reshares[(client, header["dataset"], int(header["gen"]))] = _Reshare(
                name, t, int(header["point"]), participants, int(header["chunk_count"]))
        return {}, []

    def _reshare(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        """As a participant: send each new holder its part of every chunk (recovery steps 1-2).

        The owner asks; this node reads its sealed shares (checksums verified), computes
        `reshare_chunk` and sends each target its message over an authenticated
        connection. A target that is this node gets it without the network.
        """
        assert self.store is not None and self.identity is not None
        name = self._name(client, header)
        self._require_sealed(name)
        manifest = self.store.manifest(name)
        assert manifest is not None
        point, t = int(header["point"]), int(header["t"])
        participants = [int(p) for p in header["participants"]]
        targets = {int(tg["point"]): tg for tg in header["targets"]}
        active = self._active_keys()
        for tg in targets.values():
            if bytes.fromhex(tg["key"]) not in active:
                raise ServiceError("not-registered", f"target {tg['key'][:16]}... is not an "
                                                     "active registered node on the ledger")
        links: dict[int, Connection] = {}
        try:
            for p, tg in targets.items():
                if bytes.fromhex(tg["key"]) != self.node_id:
                    links[p] = Connection.open(tg["host"], int(tg["port"]), self.identity,
                                               bytes.fromhex(tg["key"]))
            for chunk in range(manifest.chunk_count):
                shares = self._read_chunk(name, chunk)
                out = reshare_chunk(self.field, shares, point, participants, sorted(targets), t)
                for p, columns in out.items():
                    fields = {"owner": client.hex(), "dataset": header["dataset"],
                              "gen": int(header["new_gen"]), "chunk": chunk,
                              "from_point": point, "columns": list(columns)}
                    if p in links:
                        links[p].request("contribution", list(columns.values()), **fields)
                    else:
                        self._contribution(self.node_id, fields, list(columns.values()))
                    self.metrics.bytes_served.inc(sum(a.nbytes for a in columns.values()))
        finally:
            for link in links.values():
                link.close()
        return {"chunks": manifest.chunk_count}, []

    def _contribution(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]):
        """As a new holder: keep a participant's message; with all t + 1, store the share."""
        owner = bytes.fromhex(header["owner"])
        key = (owner, header["dataset"], int(header["gen"]))
        with self._lock:
            state = self._reshares.get(key)
        if state is None:
            raise ServiceError("state", "no reshare of this dataset generation is expected; "
                                        "the owner must send 'expect' first")
        sender = int(header["from_point"])
        if state.participants.get(sender) != client:
            raise ServiceError("not-participant", f"this connection's key is not participant "
                                                  f"{sender} of the expected reshare")
        chunk = int(header["chunk"])
        if not 0 <= chunk < state.chunk_count:
            raise ServiceError("bad-request", f"chunk {chunk} is outside 0..{state.chunk_count}")
        names = list(header["columns"])
        rows = arrays[0].shape[0] if arrays else 0
        self._check_shares(names, arrays, rows)
        with self._lock:
            inbox = state.received.setdefault(chunk, {})
            inbox[sender] = {n: np.array(a) for n, a in zip(names, arrays, strict=True)}
            complete = len(inbox) == len(state.participants)
            if complete:
                del state.received[chunk]
        if complete:
            columns = combine_chunk(self.field, inbox, sorted(state.participants))
            meta = {"scheme": "shamir", "t": state.t, "point": state.point, "rows": rows,
                    "owner": owner.hex()}
            self._write_chunk(state.name, chunk, columns, meta)
            with self._lock:
                state.done.add(chunk)
        return {"complete": complete}, []

    # -- housekeeping ---------------------------------------------------------------------------

    def _housekeeping_loop(self) -> None:
        """Delete datasets whose paid storage ended and stale unsealed uploads; close this
        node's jobs that are past their deadline (`jobs.timeout`: the poster gets its
        escrow back; an owner that vanished mid-job leaves nothing locked); republish the
        endpoint record hourly.

        "Ended" is judged by the ledger's clock (the latest block's timestamp), the one the
        contract's `is_live` uses: a dev chain's clock runs ahead of the wall clock (one
        second per block at least), a stalled chain's behind it, and the node must not
        delete what the ledger still calls paid for. Without the ledger, nothing is deleted.
        """
        last_publish = time.monotonic()
        while not self._stopping.wait(self.config.housekeeping):
            assert self.store is not None and self.dht is not None and self.ledger is not None
            try:
                with self.ledger_lock:
                    now = float(self.ledger.w3.eth.get_block("latest")["timestamp"])
                    for job in self.ledger.jobs_for():
                        if now >= job.deadline:  # another member may have closed it first
                            with contextlib.suppress(JobClosed):
                                refund = self.ledger.timeout(job.job_id)
                                log.warning("job %d is past its deadline: closed, %d wei back "
                                            "to its poster", job.job_id, refund)
                with self._lock:
                    gone = self.store.purge_expired(now)
                    gone += drop_unsealed(self.store, self.config.unsealed_ttl)
                    sealed = sum(1 for d in self.store.datasets()
                                 if self.store.manifest(d) is not None)
                drop_old_results(self.config.home / RESULTS, self.config.results_ttl)
                self.metrics.purged.inc(len(gone))
                self.metrics.datasets.set(sealed)
                if time.monotonic() - last_publish > 3600:
                    self._publish_endpoint()
                    last_publish = time.monotonic()
            except (StoreError, DhtError, LedgerError, OSError, ValueError) as exc:
                log.warning("housekeeping: %s", exc)


@click.group("node", invoke_without_command=True)
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Settings file (TOML); default $ENIGMA_NODE_CONFIG, else <home>/node.toml "
                   "if it exists. Options and ENIGMA_NODE_* variables override it.")
@click.option("--home", type=click.Path(path_type=Path, file_okay=False),
              help="Directory for this node's key (node.key) and shares (required).")
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True,
              help="Ledger JSON-RPC URL.")
@click.option("--deployment", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("deployment.json"), show_default=True,
              help="Contract addresses (from `enigma ledger deploy`).")
@click.option("--account", help="Ledger account the chain has unlocked (dev chains).")
@click.option("--key-env", help="Environment variable holding the account's hex private key.")
@click.option("--bind", "--host", "bind", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; then set --advertise).")
@click.option("--advertise", default="",
              help="Address peers reach this node at, registered on the ledger "
                   "(default: the --bind address).")
@click.option("--port", default=0, show_default=True, type=int, help="Service TCP port.")
@click.option("--dht-port", default=0, show_default=True, type=int, help="DHT UDP port.")
@click.option("--metrics-port", default=0, show_default=True, type=int,
              help="HTTP port for /metrics and /health.")
@click.option("--job-ports", default="", help="LOW-HIGH: TCP ports job meshes listen on, one "
              "per running job (default: any free port).")
@click.option("--bootstrap", multiple=True, help="HOST:PORT of a DHT node (repeatable); "
              "default: the other nodes listed on the ledger.")
@click.option("--deposit", type=int, help="Wei to stake; default the ledger's minimum.")
@click.option("--no-register", is_flag=True, help="Do not stake (the node cannot hold data).")
@click.option("--housekeeping", default=60.0, show_default=True, type=float,
              help="Seconds between purges of datasets whose paid storage expired.")
@click.option("--unsealed-ttl", default=24 * 3600.0, show_default=True, type=float,
              help="Seconds an unsealed (unpaid) upload may sit untouched before deletion.")
@click.option("--results-ttl", default=30 * 24 * 3600.0, show_default=True, type=float,
              help="Seconds an analyst's sealed result is kept for `enigma job result`.")
@click.option("--upload-quota", default=UPLOAD_QUOTA, show_default=True, type=int,
              help="Unsealed bytes a key without sealed data here may upload (0: only "
                   "ledger nodes and owners of sealed data may connect).")
@click.option("--shutdown-grace", default=30.0, show_default=True, type=float,
              help="Seconds running jobs may finish after SIGTERM before they are handed "
                   "back to their owners.")
@click.option("--misbehave", type=click.Choice(KINDS), default=None,
              help="TEST ONLY: cheat in every job as this fault kind (docs/node.md); "
                   "refused without --insecure-test-faults.")
@click.option("--misbehave-at", type=int, default=2, show_default=True,
              help="TEST ONLY: the sending call (or triples request) where the fault strikes.")
@click.option("--watch-interval", default=1.0, show_default=True, type=float,
              help="Seconds between looks at the ledger's accusations (dispute, vote, finalize).")
@click.option("--insecure-test-faults", is_flag=True,
              help="Allow --misbehave: this node will cheat on purpose and lose its deposit.")
@click.option("--prep-ahead", type=int, default=0, show_default=True,
              help="After each job, top its quorum's HE preprocessing stock up to this many "
                   "triples (the smallest value among the members counts).")
@click.option("--prep-ahead-bits", type=int, default=0, show_default=True,
              help="... and up to this many random bits.")
@click.option("--prep-ahead-inputs", type=int, default=0, show_default=True,
              help="... and up to this many input masks per member (one per value a job "
                   "reads), so a job's inputs cost no HE work.")
@log_options("info")
@click.pass_context
def node_command(ctx: click.Context, config_file: Path | None, **opts: Any) -> None:
    """Run a node until SIGTERM: stake, join the DHT, store shares, serve metrics.

    Settings come from the options, else ENIGMA_NODE_<NAME> variables, else the config
    file, else the defaults (docs/node.md). `enigma node --home DIR [options] init` writes
    the file; `enigma node prep` asks a running node to pre-generate with named peers. The
    node logs each job's phases at INFO (`--log-level`, `--log-format json` for a collector).
    """
    if ctx.invoked_subcommand not in (None, "init", "health"):
        return
    configure(opts["log_level"], opts["log_format"])
    try:
        settings = _settings(ctx, config_file, opts)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    if ctx.invoked_subcommand in ("init", "health"):
        ctx.obj = settings
        return
    config = _node_config(settings, opts)
    if config.misbehave is not None:
        log.warning("FAULT INJECTION ENABLED: this node will misbehave as %r in every job "
                    "(--insecure-test-faults); it will be blamed and slashed. Tests only.",
                    config.misbehave)
    node = Node(config)
    try:
        node.start()
    except (NodeError, LedgerError, DhtError, StoreError, KeyFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    assert node.dht is not None
    click.echo(f"node: ready id={node.node_id.hex()} address={node.address} "
               f"service={node.advertised}:{node.port} dht={node.dht.port} "
               f"metrics={node.metrics_port} registered={node.registered}")
    node.run()
    click.echo("node: stopped")


def _settings(ctx: click.Context, config_file: Path | None, opts: dict[str, Any]
              ) -> dict[str, Any]:
    """Every setting of SETTINGS by precedence: option, variable, config file, default."""
    env = env_settings()
    given = {name for name in SETTINGS
             if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE}
    home = opts["home"] if "home" in given else env.get("home", opts["home"])
    path = config_path(config_file, home)
    from_file = read_config(path) if path is not None else {}
    settings = {}
    for name in SETTINGS:
        value = opts[name]
        if name not in given:
            value = env.get(name, from_file.get(name, value))
        settings[name] = list(value) if name == "bootstrap" else value
    return settings


def _node_config(settings: dict[str, Any], opts: dict[str, Any]) -> NodeConfig:
    """The daemon's configuration from the merged settings; usage errors in one line."""
    s = settings
    if s["home"] is None:
        raise click.UsageError("Missing option '--home' (or home in the config file, or "
                               "ENIGMA_NODE_HOME).")
    if not Path(s["deployment"]).is_file():
        raise click.BadParameter(f"file {str(s['deployment'])!r} does not exist",
                                 param_hint="'--deployment'")
    if min(s["prep_ahead"], s["prep_ahead_bits"], s["prep_ahead_inputs"],
           s["upload_quota"]) < 0:
        raise click.UsageError("--prep-ahead, --prep-ahead-bits, --prep-ahead-inputs and "
                               "--upload-quota cannot be negative")
    if opts["misbehave"] is not None and not opts["insecure_test_faults"]:
        raise click.UsageError("--misbehave makes this node cheat on purpose (fault "
                               "injection for tests); add --insecure-test-faults to allow it")
    if opts["misbehave_at"] < 0:
        raise click.UsageError("--misbehave-at cannot be negative")
    try:
        job_ports = parse_port_range(s["job_ports"])
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    return NodeConfig(home=Path(s["home"]), rpc=s["rpc"], deployment=Path(s["deployment"]),
                      account=payer(s["account"], s["key_env"]), host=s["bind"],
                      advertise=s["advertise"], port=s["port"], dht_port=s["dht_port"],
                      metrics_port=s["metrics_port"], job_ports=job_ports,
                      bootstrap=bootstrap_peers(tuple(s["bootstrap"])), deposit=s["deposit"],
                      register=not s["no_register"], housekeeping=s["housekeeping"],
                      unsealed_ttl=s["unsealed_ttl"], results_ttl=s["results_ttl"],
                      upload_quota=s["upload_quota"],
                      shutdown_grace=s["shutdown_grace"], misbehave=opts["misbehave"],
                      misbehave_at=opts["misbehave_at"], prep_ahead=s["prep_ahead"],
                      prep_ahead_bits=s["prep_ahead_bits"],
                      prep_ahead_inputs=s["prep_ahead_inputs"],
                      watch_interval=s["watch_interval"])


@node_command.command("init")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@click.pass_obj
def init_command(settings: dict[str, Any], force: bool) -> None:
    """Write <home>/node.toml from the options given to `enigma node` before `init`, and
    make the node key; `enigma node --home DIR` then starts from them."""
    if settings.get("home") is None:
        raise click.UsageError("give --home DIR before init: `enigma node --home DIR init`")
    home = Path(settings["home"]).absolute()
    path = home / CONFIG_FILE
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; edit it, or pass `init --force` to replace it")
    for name in ("port", "dht_port", "metrics_port"):
        if not settings[name]:
            raise click.UsageError(f"--{name.replace('_', '-')} is 0 (any free port); a node "
                                   "on its own host needs fixed ports that the firewall opens")
    try:
        parse_port_range(settings["job_ports"])
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = load_or_create_identity(home / "node.key")
    values = {**settings, "home": str(home),
              "deployment": str(Path(settings["deployment"]).absolute())}
    write_config(path, {k: v for k, v in values.items() if v not in (None, "")})
    click.echo(f"node: wrote {path}; node key {identity.public_key.hex()}")


@node_command.command("health")
@click.option("--timeout", default=5.0, show_default=True, type=float,
              help="Seconds to wait for the node's answer.")
@click.pass_obj
def health_command(settings: dict[str, Any], timeout: float) -> None:
    """Ask the node these settings describe for its /health: exit 0 while it serves, 1
    otherwise (app/health.py; the image's HEALTHCHECK is its lighter `python -m
    enigma.app.health`, which reads the same file and variables)."""
    try:
        body = probe(settings["bind"], settings["metrics_port"], timeout)
    except Unhealthy as exc:
        if not settings["metrics_port"]:
            raise click.UsageError(str(exc)) from exc
        raise click.ClickException(str(exc)) from exc
    click.echo(summary(body))


node_command.add_command(prep_command)



@node_command.command("resume")
@ledger_options("The node's ledger account (unlocked on dev chains).")
def resume_command(rpc: str, deployment: Path, account: str | bytes) -> None:
    """Put a suspended node back in the draw (after an absence report, once it is fixed)."""
    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    try:
        ledger.resume()
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"node {ledger.address}: active again; it is drawn for jobs from now on")


if __name__ == "__main__":
    node_command()
