"""Preprocessing ahead of demand in a node: a stock of HE triples and bits per quorum.

Why per quorum: a triple is shared among exactly the members that made it (and under their
MAC key alpha), so a node keeps one stock for each set of members it computes with, in
`<home>/prep/<quorum id>.stock` (`prep.commands.save_stock`: written atomically with
`enigma.files`, checksummed, mode 0600). The quorum id is a hash of the field modulus and
the sorted ledger addresses of the members, so every member finds the same id for the
same quorum whatever the order the ledger drew it in; the party number inside the file is
the member's position in that sorted list (a stock of additive shares does not depend on
who is party 0 of a job).

A session with stock (`open_session`), on every member at the same point:

1. check the stock out: read the file and delete it, so that no other session can hand
   out the same triples again (reuse would leak: a triple masks exactly one product);
2. broadcast a digest of the stock's id and counts; if any member's differs (one of them
   lost its file, crashed before saving, or two jobs raced for it), every member drops
   what it holds, logs it, and the quorum starts fresh: out-of-step stock never fails a job;
3. `HEProvider(..., stock=...)`: the engine consumes the stock first, produces the rest
   on demand;
4. after a job that succeeded, optionally top the stock up to what the members agree on
   (the smallest `--prep-ahead` among them) while still connected, then save what is left.
   A failed job saves nothing: its members may be out of step, and the stock is gone.

Why no thread producing in the background of a running node: seal-python holds the GIL in
its calls (docs/preprocessing.md), so a producer thread would stall every online phase of
the node. Production happens instead where the quorum is connected anyway: at the end of
a job (`--prep-ahead`, in a thread of its own while the owner settles; the next job on that
quorum waits for it), or when the operator asks for it (`enigma node prep`, the `prep`
service request below), which is for the hours a node is idle.

Service requests added to the node (`prep_ops`):

  prep       triples bits with timeout -> per quorum: produced, in stock (the node's own
             key only: its operator, through `enigma node prep`; without `with`, every
             quorum this node has saved a stock for)
  prep-open  members triples bits      -> a mesh port (from an active node among members)
  prep-run   members peers nonce ...   -> produced, in stock (the node that opened it)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from enigma.field import Field
from enigma.files import fsync_dir, write_atomic
from enigma.net.errors import KeyFileError, NetError
from enigma.net.identity import Identity, PeerInfo
from enigma.net.mesh import Mesh
from enigma.prep.commands import StockFileError, load_stock, save_stock
from enigma.prep.provider import HEProvider, Stock
from enigma.progress import Progress

from .host import NodeHost
from .service import Connection, ServiceError, parse_endpoint

log = logging.getLogger(__name__)

#: Largest `prep` request a node accepts from a peer (about 3 minutes of production here).
MAX_PREP = 1 << 21
#: Where a running node tells its operator's commands how to reach its service.
SERVICE_FILE = "service.json"


def quorum_id(members: Sequence[str], modulus: int) -> str:
    """The public name of a quorum's stock: members in any order give the same id."""
    text = "\n".join(["enigma.prep.quorum.v1", str(modulus),
                      *sorted(a.lower() for a in members)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _digest(stock: Stock | None) -> bytes:
    """What members compare before resuming: stock id and counts (public), or zeros."""
    if stock is None:
        return bytes(32)
    counts = np.array([stock.triples[0].shape[0], stock.bits[0].shape[0],
                       *(m[0].shape[0] for m in stock.inputs)], dtype="<u8")
    return hashlib.sha256(stock.stock_id + counts.tobytes()).digest()


class QuorumStocks:
    """The stock files of one node, one per quorum, and who is using which right now."""

    def __init__(self, home: Path, field: Field) -> None:
        self.dir = home / "prep"
        self.field = field
        self._busy: set[str] = set()
        self._free = threading.Condition()

    def path(self, qid: str) -> Path:
        return self.dir / f"{qid}.stock"

    def counts(self, qid: str) -> dict[str, int]:
        """Triples and bits a quorum's stock file announces (0 without one); public."""
        try:
            raw = self.path(qid).read_bytes()
        except FileNotFoundError:
            return {"triples": 0, "bits": 0, "inputs": 0}
        start = raw.index(b"\n") + 1
        size = int.from_bytes(raw[start:start + 4], "little")
        header = json.loads(raw[start + 4:start + 4 + size])
        return {"triples": int(header["triples"]), "bits": int(header["bits"]),
                "inputs": min(header.get("inputs") or [0])}

    def totals(self) -> dict[str, int]:
        """Triples, bits and input masks over every quorum's stock file (for /metrics);
        a file being replaced or damaged counts as none."""
        out = {"triples": 0, "bits": 0, "inputs": 0}
        for path in self.dir.glob("*.stock"):
            try:
                counts = self.counts(path.stem)
            except (OSError, ValueError, KeyError):
                continue
            for kind in out:
                out[kind] += counts[kind]
        return out

    def take(self, qid: str, party: int, parties: int, wait: float) -> Stock | None:
        """Check a quorum's stock out (read, then delete the file); None when there is none.

        Waits up to `wait` seconds while a top-up or `prep` session of the same quorum on
        this node is still producing: its stock is what the quorum's peers will have.
        A damaged or foreign file is deleted (logged) and counts as no stock.
        """
        deadline = time.monotonic() + wait
        with self._free:
            while qid in self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("quorum %s: still producing after %.0f s; this session "
                                "starts without its stock", qid, wait)
                    return None
                self._free.wait(left)
            path = self.path(qid)
            if not path.exists():
                return None
            try:
                return load_stock(path, self.field, party, parties, qid)
            except (StockFileError, ValueError, KeyError, OSError) as exc:
                log.warning("quorum %s: unusable stock file dropped: %s", qid, exc)
                return None
            finally:  # durably: a file back after a power cut would hand out used triples
                path.unlink(missing_ok=True)
                fsync_dir(self.dir)

    def busy(self, qid: str) -> None:
        with self._free:
            self._busy.add(qid)

    def release(self, qid: str) -> None:
        with self._free:
            self._busy.discard(qid)
            self._free.notify_all()

    def save(self, qid: str, members: Sequence[str], party: int, provider: HEProvider,
             order: Sequence[int]) -> None:
        """Save a quorum's stock, and its members (public) so `enigma node prep` can refill
        every quorum this node knows without being told its peers again. Input masks are
        saved by sorted member (`order[i]` is mesh party i's place), as the file is."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        listed = self.dir / f"{qid}.members"
        if not listed.exists():
            write_atomic(listed, [json.dumps(sorted(a.lower() for a in members)).encode()])
        stock = provider.export_stock()
        if stock.inputs:
            by_place = dict(zip(order, stock.inputs, strict=True))
            stock = replace(stock, inputs=tuple(by_place[c] for c in range(len(order))))
        save_stock(stock, self.path(qid), self.field, party, len(members), qid)

    def known(self) -> list[list[str]]:
        """The members of every quorum this node has saved a stock for."""
        out = []
        for listed in sorted(self.dir.glob("*.members")):
            try:
                out.append([str(a) for a in json.loads(listed.read_text())])
            except (OSError, ValueError) as exc:
                log.warning("unreadable quorum list %s skipped: %s", listed, exc)
        return out


@dataclass
class StockSession:
    """One member's HE provider for a session of a quorum, and its stock bookkeeping."""

    stocks: QuorumStocks
    qid: str
    members: list[str]
    """The quorum's ledger addresses, sorted, lower case."""
    party: int
    """This member's position among the sorted members (the stock file's party)."""
    order: list[int]
    """For each party of the session's mesh, its position among the sorted members: input
    masks belong to one member, and a job numbers its members in the ledger's draw order."""
    provider: HEProvider
    resumed: dict[str, int]
    """Triples and bits the session started with (0 when fresh)."""
    discarded: bool
    """Whether this member dropped its stock because the quorum's were out of step."""

    def report(self) -> dict[str, Any]:
        """Public counts for the owner's or operator's output: what this session cost."""
        p = self.provider
        return {"provider": "he", "quorum": self.qid, "resumed": dict(self.resumed),
                "produced": dict(p.produced), "in_stock": dict(p.in_stock),
                "discarded": self.discarded}

    def top_up(self, mesh: Mesh, triples: int, bits: int, inputs: int = 0) -> None:
        """Agree on the smallest target any member asks for, produce up to it (a protocol)."""
        mine = np.array([triples, bits, inputs], dtype="<u8")
        targets = [mine]
        for peer, frames in mesh.broadcast(mine.tobytes()).items():
            if len(frames) != 1 or len(frames[0]) != mine.nbytes:
                raise ValueError(f"party {peer} sent a malformed top-up target")
            targets.append(np.frombuffer(frames[0], dtype="<u8"))
        want = np.min(np.stack(targets), axis=0)
        if want.any():
            self.provider.reserve(triples=int(want[0]), bits=int(want[1]),
                                  inputs=int(want[2]))

    def save(self) -> None:
        self.stocks.save(self.qid, self.members, self.party, self.provider, self.order)


def open_session(stocks: QuorumStocks, mesh: Mesh, members: Sequence[str], party: int,
                 wait: float) -> StockSession:
    """Steps 1-3 of the module docstring, on every member of `members` at once.

    `party` is this member's number in the mesh (the job's order of `members`).
    """
    field = stocks.field
    qid = quorum_id(members, field.p)
    ordered = sorted(a.lower() for a in members)
    order = [ordered.index(a.lower()) for a in members]
    canon = order[party]
    stock = stocks.take(qid, canon, len(members), wait)
    if stock is not None and stock.inputs:  # the file's order -> this mesh's
        stock = replace(stock, inputs=tuple(stock.inputs[c] for c in order))
    mine = _digest(stock)
    theirs = [bytes(frames[0]) for frames in mesh.broadcast(mine).values()]
    discarded = False
    if any(t != mine for t in theirs):
        if stock is not None:
            log.warning("quorum %s: this node's preprocessing stock (%d triples, %d bits) is "
                        "out of step with its peers'; discarded, the quorum starts fresh", qid,
                        stock.triples[0].shape[0], stock.bits[0].shape[0])
        else:
            log.warning("quorum %s: peers resume a preprocessing stock this node does not "
                        "have; the quorum starts fresh", qid)
        stock, discarded = None, True
    provider = HEProvider(field, party, len(members), mesh, stock=stock)
    resumed = provider.in_stock
    return StockSession(stocks, qid, ordered, canon, order, provider, resumed, discarded)


def finish_in_background(session: StockSession, mesh: Mesh, close: Callable[[], None],
                         triples: int, bits: int, inputs: int, label: str,
                         wait: Callable[[], None] | None = None) -> threading.Thread:
    """Step 4 after a job: top up and save in a thread, then close the mesh (`close`).

    The owner gets its result meanwhile; the next session of this quorum on this node
    waits in `take` until the stock is saved. `wait` runs first in the thread (a member
    waits there until its job is settled on the ledger, so that production does not
    compete with the transactions the owner waits for).
    """
    session.stocks.busy(session.qid)

    def run() -> None:
        try:
            if wait is not None:
                wait()
            start = time.perf_counter()
            before = session.provider.produced["triples"]
            session.top_up(mesh, triples, bits, inputs)
            session.save()
            made = session.provider.produced["triples"] - before
            if made:
                log.info("%s: quorum %s topped up by %d triples in %.1f s (now %s)", label,
                         session.qid, made, time.perf_counter() - start,
                         session.provider.in_stock)
        except Exception as exc:  # a peer gone while topping up: the stock is dropped
            log.warning("%s: quorum %s: top-up failed, its stock is dropped: %s: %s", label,
                        session.qid, type(exc).__name__, exc)
        finally:
            session.stocks.release(session.qid)
            close()

    thread = threading.Thread(target=run, name=f"prep-{session.qid[:8]}", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------------------- node requests


@dataclass
class _Opened:
    members: list[str]
    port: int


class NodePrep:
    """The `prep`, `prep-open` and `prep-run` requests of one node daemon."""

    def __init__(self, node: NodeHost) -> None:
        self.node = node
        self._opened: dict[tuple[bytes, str], _Opened] = {}
        self._lock = threading.Lock()

    def _ledger(self, fn: Callable[[Any], Any]) -> Any:
        assert self.node.ledger is not None
        with self.node.ledger_lock:
            return fn(self.node.ledger)

    def _members(self, header: dict[str, Any], client: bytes) -> tuple[list[str], dict]:
        """The session's members (sorted), each an active registered node; their records."""
        members = sorted({str(a).lower() for a in header["members"]})
        infos = {}
        for address in members:
            info = self._ledger(lambda lg, a=address: lg.node(a))
            if not info.registered or not info.active:
                raise ServiceError("not-registered", f"{address} is not an active node "
                                                     "registered on the ledger")
            infos[address] = info
        if self.node.address.lower() not in members:
            raise ServiceError("not-participant", "this node is not among the members")
        if not any(i.transport_key == client for i in infos.values()):
            raise ServiceError("not-participant", "the requester is not among the members")
        return members, infos

    @staticmethod
    def _amounts(header: dict[str, Any]) -> tuple[int, int, int]:
        triples, bits = int(header.get("triples", 0)), int(header.get("bits", 0))
        inputs = int(header.get("inputs", 0))
        if not all(0 <= n <= MAX_PREP for n in (triples, bits, inputs)):
            raise ServiceError("bad-request", f"pre-generate 0..{MAX_PREP} triples, bits and "
                                              f"input masks per request, not {triples}, "
                                              f"{bits} and {inputs}")
        return triples, bits, inputs

    def prep(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]
             ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """The operator's request: this node and the peers named pre-generate together.

        1. only the node's own key may ask (whoever runs `enigma node prep` with its home);
        2. every peer must be an active node registered on the ledger (else refused);
        3. `prep-open` at each peer (port), then `prep-run` at all of them and here at once.
        Without peers, steps 2-3 run for every quorum this node has saved a stock for.
        """
        assert self.node.identity is not None
        if client != self.node.node_id:
            raise ServiceError("not-operator", "only this node's operator (its own key) may "
                                               "ask it to pre-generate")
        self._amounts(header)
        me = self.node.address.lower()
        named = {str(a).lower() for a in header.get("with", [])} - {me}
        if named:
            return {"quorums": [self._prep_with(sorted(named), header)]}, []
        quorums = [m for m in self.node.stocks.known() if me in m]
        if not quorums:
            raise ServiceError("bad-request", "this node has saved no quorum's stock yet: name "
                                              "the peers (--with ADDRESS)")
        done = []
        for members in quorums:  # one after the other: each session takes both cores
            try:
                done.append(self._prep_with([a for a in members if a != me], header))
            except (ServiceError, NetError, OSError) as exc:
                log.warning("prep: quorum %s: %s", members, exc)
                done.append({"members": members, "error": str(exc)})
        return {"quorums": done}, []

    def _prep_with(self, peers: list[str], header: dict[str, Any]) -> dict[str, Any]:
        """One pre-generation session of this node with `peers` (steps 2-3 of `prep`)."""
        assert self.node.identity is not None
        triples, bits, inputs = self._amounts(header)
        me = self.node.address.lower()
        unknown = []
        for address in peers:
            try:
                info = self._ledger(lambda lg, a=address: lg.node(a))
            except Exception:  # a malformed address is as unknown as an unregistered one
                info = None
            if info is None or not info.registered or not info.active:
                unknown.append(address)
        if unknown:
            raise ServiceError("not-registered", f"unknown peers {unknown}: not active nodes "
                                                 "registered on the ledger; pre-generate only "
                                                 "with registered nodes")
        members = sorted([me, *peers])
        timeout = float(header.get("timeout", 300.0))
        fields = {"members": members, "triples": triples, "bits": bits, "inputs": inputs}
        conns: dict[str, Connection] = {}
        ends = {me: {"host": self.node.advertised, "port": self.node.job_port()}}
        try:
            for address in peers:
                info = self._ledger(lambda lg, a=address: lg.node(a))
                host, port, _ = parse_endpoint(info.endpoint)
                conns[address] = Connection.open(host, port, self.node.identity,
                                                 info.transport_key, timeout)
                reply = conns[address].request("prep-open", **fields)[0]
                ends[address] = {"host": host, "port": int(reply["port"])}
            run = {**fields, "peers": [ends[a] for a in members],
                   "nonce": os.urandom(16).hex(), "timeout": timeout}
            with ThreadPoolExecutor(max_workers=len(conns)) as pool:
                futures = [pool.submit(c.request, "prep-run", **run) for c in conns.values()]
                mine = self._session(members, run, ends[me]["port"])
                replies = [f.result()[0] for f in futures]
        finally:
            for conn in conns.values():
                conn.close()
        seconds = max([mine["seconds"], *(float(r["seconds"]) for r in replies)])
        return {**mine, "seconds": seconds, "members": members}

    def open(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]
             ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """A peer asks this node to join a pre-generation session: check, reserve a port."""
        self._amounts(header)
        members, _ = self._members(header, client)
        port = self.node.job_port()
        with self._lock:
            self._opened[(client, ",".join(members))] = _Opened(members, port)
        return {"port": port}, []

    def run(self, client: bytes, header: dict[str, Any], arrays: list[np.ndarray]
            ) -> tuple[dict[str, Any], list[np.ndarray]]:
        members = sorted({str(a).lower() for a in header["members"]})
        with self._lock:
            opened = self._opened.pop((client, ",".join(members)), None)
        if opened is None:
            raise ServiceError("state", "no pre-generation session was opened by this client "
                                        "with these members; send prep-open first")
        return self._session(members, header, opened.port), []

    def _session(self, members: list[str], header: dict[str, Any], port: int
                 ) -> dict[str, Any]:
        """Connect the members, resume or start their stock, produce, save (every member)."""
        assert self.node.identity is not None and self.node.ledger is not None
        triples, bits, inputs = self._amounts(header)
        timeout = float(header.get("timeout", 300.0))
        me = members.index(self.node.address.lower())
        if len(header["peers"]) != len(members):
            raise ServiceError("bad-request", f"{len(header['peers'])} mesh ends for "
                                              f"{len(members)} members")
        keys = [self._ledger(lambda lg, a=a: lg.node(a).transport_key) for a in members]
        peers = [PeerInfo(i, str(p["host"]), int(p["port"]), keys[i])
                 for i, p in enumerate(header["peers"])]
        if peers[me].port != port:
            raise ServiceError("bad-request", f"the peers list gives this node port "
                                              f"{peers[me].port}, prep-open reserved {port}")
        deployment = self.node.ledger.deployment
        session = hashlib.sha256(f"enigma.prep.v1/{deployment.chain_id}/{deployment.jobs}/"
                                 f"{header['nonce']}".encode()).digest()
        stocks = self.node.stocks
        qid = quorum_id(members, self.node.field.p)
        start = time.perf_counter()
        with Mesh(me, self.node.identity, peers, session, timeout=timeout,
                  connect_timeout=max(timeout, 30.0),
                bind=self.node.config.host) as mesh:
            s = open_session(stocks, mesh, members, me, wait=timeout)
            stocks.busy(qid)
            try:
                s.provider.reserve(triples=triples, bits=bits, inputs=inputs)
                s.save()
            finally:
                stocks.release(qid)
        log.info("prep: quorum %s: %s in %.1f s, %s in stock", qid, s.provider.produced,
                 time.perf_counter() - start, s.provider.in_stock)
        return {**s.report(), "seconds": time.perf_counter() - start}


def prep_ops(node: NodeHost) -> dict[str, Callable[[bytes, dict[str, Any], list[np.ndarray]],
                                               tuple[dict[str, Any], list[np.ndarray]]]]:
    """The requests a node daemon adds to its service for pre-generation."""
    prep = NodePrep(node)
    return {"prep": prep.prep, "prep-open": prep.open, "prep-run": prep.run}


def write_service_file(home: Path, host: str, port: int, node_id: bytes) -> None:
    """Tell the operator's commands (`enigma node prep`) where this node serves."""
    write_atomic(home / SERVICE_FILE, [json.dumps({"host": host, "port": port,
                                                   "node": node_id.hex()}).encode()])


def request_prep(home: Path, triples: int, bits: int, peers: Sequence[str],
                 timeout: float = 600.0, inputs: int = 0) -> dict[str, Any]:
    """`enigma node prep`: ask the running node in `home`, as its operator, to pre-generate."""
    try:
        identity = Identity.load(home / "node.key")
        where = json.loads((home / SERVICE_FILE).read_text())
    except FileNotFoundError as exc:
        raise click.ClickException(f"no running node in {home} ({exc.filename} missing): "
                                   "start it with `enigma node --home ...` first") from exc
    except (KeyFileError, ValueError) as exc:
        raise click.ClickException(f"{home}: {exc}") from exc
    try:
        with Connection.open(where["host"], int(where["port"]), identity,
                             bytes.fromhex(where["node"]), timeout) as conn:
            reply, _ = conn.request("prep", triples=triples, bits=bits, inputs=inputs,
                                    timeout=timeout, **{"with": list(peers)})
    except ServiceError as exc:
        raise click.ClickException(f"the node refused: {exc}") from exc
    except (NetError, OSError) as exc:
        raise click.ClickException(f"cannot reach the node in {home} at {where['host']}:"
                                   f"{where['port']}: {exc}") from exc
    return reply


@click.command("prep")
@click.option("--home", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="The running node's home (its key proves you are its operator).")
@click.option("--triples", type=int, default=16384, show_default=True,
              help="Triples the quorum's stock should hold (whole batches of 16384).")
@click.option("--bits", type=int, default=0, show_default=True,
              help="Random bits the quorum's stock should hold.")
@click.option("--inputs", type=int, default=0, show_default=True,
              help="Input masks for each member's own inputs (a job spends one per value "
                   "it reads: rows x (columns + tags)).")
@click.option("--with", "peers", multiple=True,
              help="Ledger address of a peer node of the quorum (repeatable); default: "
                   "every quorum this node has saved a stock for.")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds to wait for the session.")
def prep_command(home: Path, triples: int, bits: int, inputs: int, peers: tuple[str, ...],
                 timeout: float) -> None:
    """Pre-generate HE preprocessing with the given peers (one JSON line per quorum)."""
    if triples < 0 or bits < 0 or inputs < 0:
        raise click.UsageError("--triples, --bits and --inputs cannot be negative")
    with Progress("node prep") as progress:
        progress.phase(f"the node pre-generates {triples:,} triples, {bits:,} bits and "
                       f"{inputs:,} input masks with its quorums")
        reply = request_prep(home, triples, bits, peers, timeout, inputs)
    for quorum in reply["quorums"]:
        click.echo(json.dumps(quorum))
    failed = [q["members"] for q in reply["quorums"] if "error" in q]
    if failed:
        raise click.ClickException(f"pre-generation failed for the quorums {failed}")
