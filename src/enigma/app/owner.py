"""The data owner's client: share a table into the network, collect it back, keep it alive.

    owner = Owner.open(home, rpc, deployment_file, account, bootstrap=[("127.0.0.1", 4000)])
    result = owner.share("people.csv", Schema.load("people.yaml"), "people")   # or a DataFrame
    values = owner.collect("people")            # {column: numpy array}, decoded
    owner.recover("people", lost=[address], replacements=[other_address])
    owner.refresh("people")                     # re-randomize every share
    owner.repair("people")                      # audit holders, re-share onto damaged ones

Upload (`share`), in order:

  1. fix t and n from the job quorum the data is for (`threshold`: t = quorum - 1 and
     n = t + 2 by default, a smaller t only if the owner accepts it as weak); draw n
     holders from the ledger's staked nodes (or take the given ones; each must be an
     active registered node), find their endpoints (DHT, else the ledger);
  2. ask each holder which chunks it already has (`have`): a chunk that every holder has
     with the commitment recorded in the progress file is not sent again (resume; the
     file is saved when the holders are chosen and again, with every chunk each holder
     acknowledged, when the upload stops for any reason);
  3. stream the table: parse, validate, encode, cut into chunks, share each chunk t-of-n,
     send holder j its shares (`put`), in parallel to all holders; each holder answers
     with its chunk commitment, which must equal the one computed here;
  4. post the dataset on the ledger: schema hash, DHT key, holders, one dataset
     commitment per holder, storage paid for `duration` seconds;
  5. publish the DHT records (dataset -> chunks and holders, chunk -> holders);
  6. ask each holder to seal the generation against the ledger record.

The progress file (<home>/datasets/<name>.json, written atomically) holds no data and no
shares: holders, points, per-chunk commitments, the ledger id. It is what makes step 2
possible and what `collect`, `recover` and `refresh` start from.

Generations: every reshare writes a new generation g+1 on the new holders and a new
ledger record; the old generation stays readable until the new one is sealed, so an
interrupted recovery is run again without loss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enigma.field import Field
from enigma.files import write_atomic
from enigma.lang.schema import Schema
from enigma.ledger import Deployment, Ledger, LedgerError, Policy
from enigma.net.identity import Identity
from enigma.sharing import shamir, tags
from enigma.storage.audit import Damage
from enigma.storage.commitment import chunk_commitment, dataset_commitment, describe
from enigma.storage.dht import DhtNode
from enigma.storage.records import DhtError, record_key
from enigma.storage.recovery import RecoveryError, plan

from .audits import Collected, HolderAudit, RepairReport, Skipped
from .home import DATASET_NAME, load_or_create_identity, store_name
from .service import Connection, ServiceError, parse_endpoint
from .upload import (
    EncodedChunk,
    Timings,
    UploadError,
    decode_columns,
    read_chunks,
    share_chunk,
)

log = logging.getLogger(__name__)

DEFAULT_DURATION = 30 * 24 * 3600
#: The job quorum a dataset is shared for unless the owner says otherwise (as `enigma run`).
DEFAULT_QUORUM = 3


@dataclass(frozen=True)
class Threshold:
    """How a dataset is shared: t-of-n, for jobs on quorums of `quorum` members.

    Any t holders learn nothing and any t + 1 read the data, so a quorum of q is safe
    against q - 1 colluding members only if t >= q - 1; `weak` records that the owner
    accepted t < quorum - 1."""

    t: int
    n: int
    quorum: int
    weak: bool
    warnings: tuple[str, ...] = ()
    """Weaknesses the owner should know of (n = t + 1: no holder may be lost)."""

    def as_json(self) -> dict[str, Any]:
        """The setting as the CLI and the benchmarks print it."""
        return {"t": self.t, "n": self.n, "quorum": self.quorum, "weak": self.weak}


def threshold(quorum: int = DEFAULT_QUORUM, t: int | None = None, n: int | None = None,
              weak: bool = False, holders: int | None = None) -> Threshold:
    """The sharing parameters for jobs on quorums of `quorum`; UploadError if they do not fit.

    Defaults: t = quorum - 1 (no coalition smaller than a whole quorum reads the data) and
    n = t + 2 (the data survives the loss of one holder), or n = `holders` when the owner
    names them. t < quorum - 1 needs `weak`; n = t + 1 is allowed with a warning.
    """
    if quorum < 2:
        raise UploadError(f"a quorum has at least 2 members, not {quorum}")
    t = quorum - 1 if t is None else t
    n = (t + 2 if holders is None else holders) if n is None else n
    if not 0 < t < n:
        raise UploadError(f"need 0 < t < n, got t={t}, n={n}: t holders learn nothing, "
                          "t + 1 reconstruct")
    if t + 1 > quorum:
        raise UploadError(f"t={t} needs t + 1 = {t + 1} members in every quorum to compute, "
                          f"more than a quorum of {quorum}; pass a quorum of {t + 1}, or a "
                          "smaller t")
    if n < quorum:
        raise UploadError(f"a quorum of {quorum} is drawn among the holders, and n={n} are "
                          "too few")
    if t < quorum - 1 and not weak:
        raise UploadError(f"t={t} lets any {t + 1} holders read the data, fewer than a "
                          f"quorum of {quorum}; pass weak=True / --weak-threshold to accept "
                          "that")
    warnings = []
    if n == t + 1:
        warnings.append(f"n = t + 1 = {n}: every holder is needed to read, compute on or "
                        "recover the data; no node may be lost")
    return Threshold(t, n, quorum, t < quorum - 1, tuple(warnings))


@dataclass(frozen=True)
class Holder:
    """A node holding one share of every chunk of a dataset generation, at `point`."""

    point: int
    address: str
    key: str
    host: str
    port: int


@dataclass
class DatasetState:
    """The owner's record of one dataset (the progress file); no data, no shares."""

    name: str
    gen: int
    t: int
    chunk_rows: int
    schema: dict[str, Any]
    source: str
    holders: list[Holder]
    chunks: dict[str, dict[str, str]]
    """point -> chunk index -> chunk commitment (hex), as sent in this generation."""
    chunk_count: int = 0
    rows: int = 0
    ledger_id: int | None = None
    expires_at: int = 0
    sealed: bool = False
    quorum: int = 0
    """The job quorum the dataset was shared for; files from before it was recorded load
    with t + 1, the largest quorum their t covers."""
    weak: bool = False
    """The owner accepted t < quorum - 1: fewer holders than a quorum can read the data."""

    def __post_init__(self) -> None:
        if not self.quorum:
            self.quorum = self.t + 1

    @classmethod
    def load(cls, path: Path) -> DatasetState | None:
        try:
            body = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UploadError(f"progress file {path} is unreadable ({exc}); delete it to start "
                              "the upload over") from exc
        body["holders"] = [Holder(**h) for h in body["holders"]]
        return cls(**body)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, [json.dumps(asdict(self), indent=1, sort_keys=True).encode()])


@dataclass(frozen=True)
class UploadResult:
    """What `share` did: where the dataset is recorded, with which threshold, and how long
    each phase took."""

    name: str
    ledger_id: int
    rows: int
    chunks: int
    holders: list[Holder]
    sent_chunks: int
    timings: dict[str, float]
    threshold: Threshold
    stored_bytes: int = 0
    """Share bytes sent to all holders in this call, tags included."""
    tag_bytes: int = 0
    """Of `stored_bytes`: the tags' shares (what authenticating the inputs stores)."""


def _fingerprint(source: Any, schema: Schema, t: int, n: int, chunk_rows: int) -> str:
    """Identifies an upload for resuming: same file contents, schema and parameters."""
    h = hashlib.sha256(schema.digest().encode() + f",{t},{n},{chunk_rows}".encode())
    if isinstance(source, str | Path):
        with open(source, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
    else:
        h.update(b"in-memory table %d" % id(source))
    return h.hexdigest()


class _Sender:
    """One thread per holder that sends its chunks in order while the next is prepared."""

    def __init__(self, conn: Connection, holder: Holder, fields: dict[str, Any],
                 names: dict[int, str]) -> None:
        self.conn, self.holder, self.fields, self.names = conn, holder, fields, names
        self.queue: queue.Queue[tuple[EncodedChunk, dict[str, np.ndarray]] | None] = (
            queue.Queue(maxsize=2))
        self.commitments: dict[int, str] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"send-{holder.point}")
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue
            chunk, shares = item
            try:
                expected = chunk_commitment(self.names[self.holder.point], chunk.index,
                                            {c: describe(a) for c, a in shares.items()})
                reply, _ = self.conn.request(
                    "put", list(shares.values()), chunk=chunk.index, rows=chunk.rows,
                    columns=list(shares), point=self.holder.point, **self.fields)
                if reply["commitment"] != expected.hex():
                    raise ServiceError("commitment", f"holder {self.holder.address} stored "
                                       f"chunk {chunk.index} with another commitment than was "
                                       "sent: the data was altered on the way or on its disk")
                self.commitments[chunk.index] = reply["commitment"]
            except BaseException as exc:  # reported by the main thread, with the holder named
                self.error = exc

    def put(self, chunk: EncodedChunk, shares: dict[str, np.ndarray]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((chunk, shares))

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def _finish(senders: Sequence[_Sender], state: DatasetState) -> list[BaseException]:
    """Wait for every sender and record each chunk its holder acknowledged; the failures.

    Every sender is finished even after one failed, so that the progress file records
    what each healthy holder stored and a run that failed resumes from there, not from
    chunk 0."""
    failed = []
    for sender in senders:
        try:
            sender.finish()
        except BaseException as exc:  # raised by `share`, after the progress is saved
            failed.append(exc)
        state.chunks[str(sender.holder.point)].update(
            {str(c): v for c, v in sender.commitments.items()})
    return failed


def source_address(host: str) -> str:
    """This machine's address on the route to `host`, for the owner's DHT client socket.

    Why not the loopback default: replies from a node on another machine would never reach
    a socket bound to 127.0.0.1 (found when the nodes moved to hosts of their own,
    tests/test_app_netns.py). Why not every interface: a client needs one, the one its
    peers answer to. Connecting a UDP socket sends nothing; it only picks the route."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                       socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))
        return str(probe.getsockname()[0])


class Owner:
    """One data owner: an identity, a ledger account, a DHT node and a progress directory."""

    def __init__(self, identity: Identity, ledger: Ledger, home: Path,
                 dht: DhtNode | None = None, field_: Field | None = None,
                 timeout: float = 120.0) -> None:
        self.identity = identity
        self.ledger = ledger
        self.home = Path(home)
        self.dht = dht
        self.field = field_ or Field()
        self.timeout = timeout

    @classmethod
    def open(cls, home: Path, rpc: str, deployment: Path, account: str | bytes,
             bootstrap: Sequence[tuple[str, int]] = ()) -> Owner:
        """Load or make the owner's key in `home`, connect to the ledger, join the DHT.

        Without `bootstrap`, the DHT is joined through the nodes registered on the ledger
        (their endpoints carry their DHT ports); with no such node, there is no DHT and
        uploads are recorded on the ledger only.
        """
        home = Path(home)
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        identity = load_or_create_identity(home / "owner.key")
        ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
        endpoints = list(bootstrap)
        if not endpoints:
            for address in ledger.active_nodes():
                try:
                    host, _, dht_port = parse_endpoint(ledger.node(address).endpoint)
                except ServiceError:
                    continue
                if dht_port:
                    endpoints.append((host, dht_port))
        dht = None
        if endpoints:
            dht = DhtNode.start(source_address(endpoints[0][0]),
                                signing_key=Ed25519PrivateKey.from_private_bytes(
                identity.private_bytes()), bootstrap=endpoints, rpc_timeout=2.0,
                client=True)
        return cls(identity, ledger, home, dht)

    def close(self) -> None:
        if self.dht is not None:
            self.dht.stop()

    def __enter__(self) -> Owner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers --------------------------------------------------------------------------------

    def _state_path(self, name: str) -> Path:
        return self.home / "datasets" / f"{name}.json"

    def state(self, name: str) -> DatasetState:
        state = DatasetState.load(self._state_path(name))
        if state is None:
            raise UploadError(f"this owner ({self.home}) has no dataset {name!r}; share it first")
        return state

    def ledger_id(self, name: str) -> int:
        """The ledger id of a dataset this owner shared (what an analyst posts jobs on);
        UploadError while it is not there yet."""
        ledger_id = self.state(name).ledger_id
        if ledger_id is None:
            raise UploadError(f"dataset {name!r} is not on the ledger yet; finish "
                              "`enigma share` first")
        return ledger_id

    def tag_key(self, name: str, create: bool = False) -> np.ndarray:
        """The dataset's tag key kappa (`sharing.tags`), kept in <home>/keys beside no data.

        One per dataset name for all its generations: recovery and refresh re-share the
        tags with the values, so the key never changes."""
        path = self.home / "keys" / f"{name}.tagkey"
        if create and not path.exists():
            tags.save_key(path, tags.new_key(self.field))
        try:
            return tags.load_key(path, self.field)
        except tags.TagKeyError as exc:
            raise UploadError(f"dataset {name!r}: {exc}") from exc

    def holder(self, address: str, point: int) -> Holder:
        """A registered, active node as a new holder at `point`, at its endpoint now."""
        info = self.ledger.node(address)
        if not info.active:
            raise UploadError(
                f"node {address} is not an active registered node on the ledger (no deposit at "
                "stake, withdrawn or slashed), so it cannot hold shares; choose registered nodes")
        return self._reach(Holder(point, info.address, info.transport_key.hex(), "", 0),
                           info.endpoint)

    def _reach(self, holder: Holder, registered: str | None = None) -> Holder:
        """`holder` at its endpoint now: its DHT record, else its ledger record.

        Why never the host and port a progress file saved: a node restarted on other ports
        (every `enigma up` picks free ones) would be unreachable. The saved address, point
        and key stay the holder's identity; the key found here is the one it must prove.
        """
        found = None
        if self.dht is not None:
            with contextlib.suppress(DhtError):
                found = self.dht.find_endpoint(bytes.fromhex(holder.key))
        if found is not None and "service" in found.ports:
            return replace(holder, host=found.host, port=found.ports["service"])
        if registered is None:
            registered = self.ledger.node(holder.address).endpoint
        host, port, _ = parse_endpoint(registered)
        return replace(holder, host=host, port=port)

    def connect(self, holder: Holder) -> Connection:
        """A channel to `holder` where it is now (`_reach`), proving the key it was given."""
        now = self._reach(holder)
        return Connection.open(now.host, now.port, self.identity, bytes.fromhex(holder.key),
                               self.timeout)

    def _on_all(self, holders: Sequence[Holder], op: str,
                fields: Callable[[Holder], dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """One request to each holder at once; the first failure is raised, naming the holder."""
        def one(h: Holder) -> dict[str, Any]:
            with self.connect(h) as conn:
                return conn.request(op, **fields(h))[0]

        with ThreadPoolExecutor(max_workers=max(1, len(holders))) as pool:
            futures = {h.point: pool.submit(one, h) for h in holders}
            return {p: f.result() for p, f in futures.items()}

    def _publish(self, state: DatasetState) -> None:
        if self.dht is None:
            return
        dht = self.dht
        keys = [bytes.fromhex(h.key) for h in state.holders]
        chunk_ids = [f"{state.name}/{state.gen}/{c}" for c in range(state.chunk_count)]
        # in parallel: a lookup that meets a dead DHT node waits out its RPC timeout
        with ThreadPoolExecutor(max_workers=8) as pool:
            jobs = [pool.submit(dht.publish_chunk, c, keys) for c in chunk_ids]
            jobs.append(pool.submit(dht.set, "dataset", state.name, {
                "chunks": chunk_ids, "holders": [k.hex() for k in keys], "gen": state.gen,
                "ledger_id": state.ledger_id, "t": state.t, "quorum": state.quorum,
                "weak": state.weak}))
            for job in jobs:
                job.result()

    # -- upload ---------------------------------------------------------------------------------

    def share(self, source: Any, schema: Schema, name: str, *, quorum: int = DEFAULT_QUORUM,
              t: int | None = None, n: int | None = None, weak: bool = False,
              chunk_rows: int = 1 << 16, holders: Sequence[str] | None = None,
              duration: int = DEFAULT_DURATION,
              progress: Callable[[int], None] | None = None) -> UploadResult:
        """Share a table t-of-n into the network (steps 1-6 of the module docstring).

        `quorum` is the size of the job quorums the data is meant for; t and n default to
        quorum - 1 and t + 2 (or the number of `holders` given), and a t below quorum - 1
        is refused unless `weak` (`threshold`). `source` is a CSV or Parquet path, a pandas
        DataFrame, a pyarrow Table or a dict of arrays. `progress(rows)` is called after
        each chunk. Raises UploadError naming the row and column of the first bad value;
        nothing is then visible on any node.
        """
        if not DATASET_NAME.fullmatch(name):
            raise UploadError(f"dataset name {name!r} must be 1-48 letters, digits, '_' or '-'")
        setting = threshold(quorum, t, n, weak, None if holders is None else len(holders))
        t, n = setting.t, setting.n
        timings = Timings()
        path = self._state_path(name)
        fingerprint = _fingerprint(source, schema, t, n, chunk_rows)
        state = DatasetState.load(path)
        if state is not None and state.sealed:
            raise UploadError(f"dataset {name!r} is already shared (ledger record "
                              f"{state.ledger_id}); pick another name, or refresh it")
        if state is None or state.source != fingerprint:
            gen = 0 if state is None else state.gen + 1
            addresses = list(holders) if holders is not None else self.ledger.draw_view(
                hashlib.sha256(self.identity.public_key + name.encode()
                               + gen.to_bytes(4, "big")).digest(), n)
            if len(addresses) != n or len(set(addresses)) != n:
                raise UploadError(f"need {n} distinct holders, got {addresses}")
            with ThreadPoolExecutor(max_workers=n) as pool:  # DHT lookups may meet dead nodes
                found = list(pool.map(self.holder, addresses, range(1, n + 1)))
            state = DatasetState(name, gen, t, chunk_rows, schema.to_dict(), fingerprint,
                                 found, {str(j): {} for j in range(1, n + 1)})
        else:
            for h in state.holders:
                self.holder(h.address, h.point)  # still registered and active
        state.quorum, state.weak = setting.quorum, setting.weak
        state.save(path)  # a run that fails from here on resumes with these holders
        names = {h.point: store_name(name, self.identity.public_key, state.gen)
                 for h in state.holders}
        key = self.tag_key(name, create=True)
        conns: dict[int, Connection] = {}
        try:
            for h in state.holders:
                conns[h.point] = self.connect(h)
            complete: list[set[int]] = []
            for h in state.holders:
                have = conns[h.point].request("have", dataset=name, gen=state.gen)[0]["chunks"]
                mine = state.chunks[str(h.point)]
                complete.append({int(c) for c, commit in have.items() if mine.get(c) == commit})
            done = set.intersection(*complete)
            fields = {"dataset": name, "gen": state.gen, "t": t}
            senders = [_Sender(conns[h.point], h, fields, names) for h in state.holders]
            t_start = time.perf_counter()
            sent = stored = tagged = 0
            try:
                for chunk in read_chunks(source, schema, self.field, chunk_rows, timings):
                    state.rows = chunk.first_row + chunk.rows
                    state.chunk_count = chunk.index + 1
                    if chunk.index not in done:
                        t0 = time.perf_counter()
                        shares = share_chunk(self.field, chunk, t, n, key, timings=timings)
                        timings.share += time.perf_counter() - t0
                        for sender, holder_shares in zip(senders, shares, strict=True):
                            sender.put(chunk, holder_shares)
                            sizes = {c: a.nbytes for c, a in holder_shares.items()}
                            stored += sum(sizes.values())
                            tagged += sum(v for c, v in sizes.items() if tags.is_tag(c))
                        sent += 1
                    if progress is not None:
                        progress(chunk.rows)
            finally:
                failed = _finish(senders, state)
                state.save(path)
            if failed:
                raise failed[0]
            timings.send = (time.perf_counter() - t_start - timings.parse - timings.encode
                            - timings.share)
        finally:
            for conn in conns.values():
                conn.close()
        if state.chunk_count == 0:
            raise UploadError(f"{source}: the table has no rows")
        self._post_and_seal(state, bytes.fromhex(schema.digest()), duration, timings)
        state.save(path)
        return UploadResult(name, state.ledger_id or 0, state.rows, state.chunk_count,
                            state.holders, sent, timings.as_dict(), setting, stored, tagged)

    def _post_and_seal(self, state: DatasetState, schema_hash: bytes, duration: int,
                       timings: Timings, commitments: Sequence[bytes] | None = None) -> None:
        """Steps 4-6: the ledger record, the DHT records, then each holder seals."""
        t0 = time.perf_counter()
        if commitments is None:
            commitments = [dataset_commitment([bytes.fromhex(state.chunks[str(h.point)][str(c)])
                                               for c in range(state.chunk_count)])
                           for h in state.holders]
        state.ledger_id = self.ledger.post_dataset(
            record_key("dataset", state.name, self.identity.public_key), schema_hash,
            [h.address for h in state.holders], list(commitments), Policy.OWNER_ONLY,
            duration)
        state.expires_at = self.ledger.dataset(state.ledger_id).expires_at
        timings.ledger += time.perf_counter() - t0
        t0 = time.perf_counter()
        self._publish(state)
        timings.dht += time.perf_counter() - t0
        t0 = time.perf_counter()
        self._on_all(state.holders, "seal", lambda h: {
            "dataset": state.name, "gen": state.gen, "ledger_id": state.ledger_id,
            "chunk_count": state.chunk_count})
        state.sealed = True
        timings.seal += time.perf_counter() - t0

    # -- reading back ---------------------------------------------------------------------------

    def collect(self, name: str) -> Collected:
        """The dataset, reconstructed from the holders and decoded (the owner's own view).

        Every reachable holder's shares are used, so a holder whose shares disagree with
        the others' is detected (ShamirError); unreachable or corrupt holders are skipped
        while t + 1 remain, and each one skipped is named, with the chunks and the reason,
        in the result's `warnings`. The values are checked against their tags, unless the
        tag key is lost: the owner still gets its data back then, with a warning (jobs
        cannot run on it until it is shared again under a new key).
        """
        state = self.state(name)
        schema = Schema.from_dict(state.schema, f"the progress file of {name!r}")
        warnings: list[str] = []
        try:
            key: np.ndarray | None = self.tag_key(name)
        except UploadError as exc:
            warnings.append(f"{exc}; collecting {name!r} without checking its tags")
            key = None
        conns: dict[int, Connection] = {}
        skipped = Skipped()
        address = {h.point: h.address for h in state.holders}
        for h in state.holders:
            try:
                conns[h.point] = self.connect(h)
            except ServiceError as exc:
                skipped.holder(h.address, str(exc))
        try:
            parts: dict[str, list[np.ndarray]] = {c: [] for c in schema.names}
            for chunk in range(state.chunk_count):
                shares: dict[int, dict[str, np.ndarray]] = {}
                for point, conn in list(conns.items()):
                    try:
                        reply, arrays = conn.request("get", dataset=name, gen=state.gen,
                                                     chunk=chunk)
                    except ServiceError as exc:
                        skipped.chunk(address[point], chunk, str(exc))
                        if exc.kind in ("connection", "timeout"):  # gone: ask it no more
                            conns.pop(point).close()
                        continue
                    shares[int(reply["point"])] = dict(zip(reply["columns"], arrays, strict=True))
                if len(shares) < state.t + 1:
                    raise UploadError(f"chunk {chunk} of {name!r}: only {len(shares)} holders "
                                      f"answered, t + 1 = {state.t + 1} are needed; "
                                      + "; ".join(skipped.warnings()))
                for column in schema.names:
                    value, tag = (shamir.reconstruct(self.field, {p: s[c] for p, s in
                                                                 shares.items()}, state.t)
                                  for c in (column, tags.column(column)))
                    if key is not None and not np.array_equal(tags.tag(self.field, value,
                                                                       key), tag):
                        raise UploadError(f"chunk {chunk} of {name!r}, column {column!r}: the "
                                          "holders' shares do not match their tags; the data "
                                          "was changed where it is stored")
                    parts[column].append(value)
        finally:
            for conn in conns.values():
                conn.close()
        warnings += skipped.warnings()
        for warning in warnings:
            log.warning("collect %r: %s", name, warning)
        return Collected(decode_columns(self.field, schema,
                                        {c: np.concatenate(v) for c, v in parts.items()}),
                         warnings)

    # -- recovery -------------------------------------------------------------------------------

    def recover(self, name: str, lost: Sequence[str], replacements: Sequence[str],
                unusable: Sequence[str] = ()) -> DatasetState:
        """Move a dataset to a new generation: lost holders replaced, every share re-randomized.

        1. plan: t + 1 usable holders send; the others (lost ones replaced) receive;
        2. `expect` to every new holder: its point, and who the participants are;
        3. `reshare` to every participant (they send directly to the new holders);
        4. each new holder's dataset commitment; a new ledger record for the remaining
           paid time; seal on every new holder (which drops the old generation);
        5. republish the DHT records and save the progress file.
        """
        state = self.state(name)
        if not state.sealed:
            raise UploadError(f"dataset {name!r} is not completely shared yet; finish `share`")
        points = {h.point: h.address for h in state.holders}
        try:
            p = plan(points, lost, replacements, state.t, unusable)
        except RecoveryError as exc:
            raise UploadError(f"cannot recover {name!r}: {exc}") from exc
        old = {h.point: h for h in state.holders}
        new_holders = [self._reach(old[pt]) if old[pt].address == addr
                       else self.holder(addr, pt) for pt, addr in sorted(p.holders.items())]
        new_gen = state.gen + 1
        participants = {str(pt): old[pt].key for pt in p.participants}
        self._on_all(new_holders, "expect", lambda h: {
            "dataset": name, "gen": new_gen, "t": state.t, "point": h.point,
            "participants": participants, "chunk_count": state.chunk_count})
        targets = [asdict(h) for h in new_holders]
        self._on_all([old[pt] for pt in p.participants], "reshare", lambda h: {
            "dataset": name, "gen": state.gen, "new_gen": new_gen, "point": h.point,
            "participants": p.participants, "t": state.t, "targets": targets})
        replies = self._on_all(new_holders, "commitment", lambda h: {
            "dataset": name, "gen": new_gen, "chunk_count": state.chunk_count})
        commitments = [bytes.fromhex(replies[h.point]["commitment"]) for h in new_holders]
        remaining = max(1, state.expires_at - int(self.ledger.w3.eth.get_block("latest")
                                                  ["timestamp"]))
        updated = DatasetState(name, new_gen, state.t, state.chunk_rows, state.schema,
                               state.source, new_holders, {str(h.point): {} for h in new_holders},
                               state.chunk_count, state.rows, quorum=state.quorum,
                               weak=state.weak)
        self._post_and_seal(updated, bytes.fromhex(Schema.from_dict(state.schema).digest()),
                            remaining,
                            Timings(), commitments)
        updated.save(self._state_path(name))
        return updated

    def refresh(self, name: str) -> DatasetState:
        """Proactive refresh: the same holders get fresh shares of the same data."""
        return self.recover(name, [], [])

    def audit(self, name: str) -> list[HolderAudit]:
        """Ask every holder, at once, what it lacks of the current generation
        (`storage.audit`: missing, truncated and corrupt chunks, or the whole generation).
        A holder that cannot be asked is reported as unreachable, never as healthy."""
        state = self.state(name)
        schema = Schema.from_dict(state.schema, f"the progress file of {name!r}")
        columns = [c for n in schema.names for c in (n, tags.column(n))]

        def one(h: Holder) -> HolderAudit:
            try:
                with self.connect(h) as conn:
                    reply = conn.request("verify", dataset=name, gen=state.gen,
                                         chunk_count=state.chunk_count, columns=columns)[0]
                return HolderAudit(h.address, [Damage.from_json(d) for d in reply["damage"]],
                                   int(reply["more"]))
            except ServiceError as exc:
                return HolderAudit(h.address, unreachable=str(exc))
            except (KeyError, TypeError, ValueError) as exc:
                return HolderAudit(h.address, unreachable=f"its audit reply is malformed ({exc})")

        with ThreadPoolExecutor(max_workers=max(1, len(state.holders))) as pool:
            return list(pool.map(one, state.holders))

    def repair(self, name: str) -> RepairReport:
        """Audit every holder, then re-share onto the damaged ones (`recover` with them
        unusable: they receive fresh shares and do not send).

        A holder that cannot be reached cannot receive its new shares either, so nothing is
        re-shared while one is down: the report names it, and `recover` replaces it.
        """
        found = self.audit(name)
        gen = self.state(name).gen
        damaged = [h.address for h in found if h.unreachable is None and not h.healthy]
        down = [h.address for h in found if h.unreachable is not None]
        if down:
            return RepairReport(name, gen, found, [], (
                f"holders {down} could not be checked; if they stay down, replace them with "
                f"`enigma dataset recover {name} --lost ADDRESS --replacement ADDRESS`"))
        if not damaged:
            return RepairReport(name, gen, found, [])
        try:
            state = self.recover(name, [], [], unusable=damaged)
        except (UploadError, ServiceError, LedgerError) as exc:
            return RepairReport(name, gen, found, [], str(exc))
        return RepairReport(name, state.gen, found, damaged)
