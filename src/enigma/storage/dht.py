"""Discovery: a Kademlia DHT over UDP that says who holds which dataset and chunk.

Built on the `kademlia` package (Maymounkov and Mazières 2002; routing, iterative lookups
and republishing are the package's), with three changes for an open network:

- every DHT node stores only records that verify (`records.verify_record`) under the key
  they arrive with, and keeps the highest `seq` of each, so a stranger cannot plant or
  replay pointers in honest nodes;
- a lookup checks every value it is offered and keeps crawling past invalid ones, so one
  lying node cannot hide a record that honest nodes hold;
- `DhtNode` runs the asyncio loop in a background thread, so node, owner and analyst code
  call it like an ordinary object;
- a short-lived process (a CLI command, an owner's session) joins as a *client*: it looks
  up and stores like any node, but its requests carry a client id that servers never add
  to their routing tables, so it leaves no dead contact behind when it exits.

Record kinds (bodies are JSON; node ids are Ed25519 public keys in hex):

    node:<id>         by the node itself   {"host": str, "ports": {name: int}}
    dataset:<id>      by the owner         {"chunks": [chunk id], "holders": [node id]}
    chunk:<id>        by the owner         {"holders": [node id]}
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kademlia.crawling import NodeSpiderCrawl, RPCFindResponse, ValueSpiderCrawl
from kademlia.network import Server
from kademlia.node import Node
from kademlia.protocol import KademliaProtocol
from kademlia.storage import ForgetfulStorage

from .records import (
    DhtError,
    InvalidRecordError,
    Record,
    claimed_key,
    record_key,
    sign_record,
    verify_record,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def _routing_id(key: bytes) -> bytes:
    """The 160-bit Kademlia id the package files a 32-byte record key under."""
    return hashlib.sha1(key).digest()


class VerifyingStorage(ForgetfulStorage):
    """A DHT node's table that admits only valid records, newest `seq` per key.

    A STORE carries only the routing id (SHA-1 of the record key), which cannot be turned
    back into a key; the record itself names its kind, name and writer, from which its key
    follows, and it is admitted only if that key hashes to the routing id it came with.
    """

    def admit(self, routing_id: bytes, value: object) -> bool:
        """Store `value` under `routing_id` if it is a valid, newer record; say whether."""
        try:
            record = _verify_routed(value, routing_id)
        except InvalidRecordError as exc:
            log.warning("refused a DHT record: %s", exc)
            return False
        current = self.get(routing_id)
        if current is not None and current != value:
            try:
                if _verify_routed(current, routing_id).seq >= record.seq:
                    return False
            except InvalidRecordError:
                log.warning("replacing an invalid record held under %s", routing_id.hex()[:16])
        # storing the same value again renews its age, as republishing should
        super().__setitem__(routing_id, value)
        return True

    def __setitem__(self, routing_id: bytes, value: object) -> None:
        self.admit(routing_id, value)


def _verify_routed(value: object, routing_id: bytes) -> Record:
    """verify_record for a value known only by its routing id, as DHT nodes see it."""
    key = claimed_key(value)
    if _routing_id(key) != routing_id:
        raise InvalidRecordError(
            f"a record was sent under routing id {routing_id.hex()[:16]}..., "
            "which is not the one of the key it names"
        )
    return verify_record(value, key)


#: Prefixed to a client's 20-byte id on the wire: 21 bytes is no Kademlia id, so it cannot
#: collide with a server's, and a server can tell a client from the id alone.
_CLIENT_TAG = b"c"


def is_client_id(node_id: bytes) -> bool:
    """Whether a sender id is a client's (`_CLIENT_TAG` + 20 bytes), never a routing contact."""
    return len(node_id) == 21 and node_id[:1] == _CLIENT_TAG


class _Protocol(KademliaProtocol):
    """The package's protocol, answering STORE with whether the record was admitted, and
    keeping clients out of the routing table.

    Why clients are left out: every request a Kademlia node receives makes its sender a
    contact (`welcome_if_new`). A CLI command lives for seconds, so each run would leave a
    dead contact in the tables of every node it asked; lookups then wait out an RPC
    timeout per dead contact (publishing a dataset went from 0.01 s to 455 s that way).
    A client therefore sends `_CLIENT_TAG` + its id as the sender id (the package's calls
    send `source_node.id`), and servers answer it without welcoming it. The client's own
    routing table is unaffected: it is keyed on the server's node, not on this id.
    """

    def __init__(self, source_node: Node, storage: VerifyingStorage, ksize: int,
                 wait_timeout: float, client: bool) -> None:
        super().__init__(source_node, storage, ksize)
        self._wait_timeout = wait_timeout
        if client:
            self.source_node = Node(_CLIENT_TAG + source_node.id)

    def welcome_if_new(self, node: Node) -> None:
        if not is_client_id(node.id):
            super().welcome_if_new(node)

    def rpc_store(self, sender: tuple[str, int], nodeid: bytes, key: bytes,
                  value: object) -> bool:
        self.welcome_if_new(Node(nodeid, sender[0], sender[1]))
        return self.storage.admit(key, value)


class _VerifiedValueCrawl(ValueSpiderCrawl):
    """An iterative FIND_VALUE that checks each value and crawls on past invalid ones."""

    def __init__(self, protocol: _Protocol, node: Node, peers: list[Node], ksize: int,
                 alpha: int, key: bytes) -> None:
        super().__init__(protocol, node, peers, ksize, alpha)
        self.key = key
        self.rejected: list[str] = []

    async def _nodes_found(self, responses: dict[bytes, Any]) -> Record | None:
        """One round of the lookup (Kademlia §2.3), with verification.

        1. drop peers that did not answer;
        2. a peer that offers a value: keep it if it verifies, else note why and treat the
           peer as one without the value;
        3. a peer that offers closer nodes: add them to the shortlist;
        4. if any value verified, return the highest `seq` and store it at the closest
           peer that lacked it; otherwise continue until every close node was asked.
        """
        unanswered, found = [], []
        for peer_id, raw in responses.items():
            response = RPCFindResponse(raw)
            peer = self.nearest.get_node(peer_id)
            if not response.happened():
                unanswered.append(peer_id)
                continue
            if response.has_value():
                try:
                    found.append(verify_record(response.get_value(), self.key))
                    continue
                except InvalidRecordError as exc:
                    self.rejected.append(f"from {peer.ip}:{peer.port}: {exc}")
            else:
                self.nearest.push(response.get_node_list())
            self.nearest_without_value.push(peer)
        self.nearest.remove(unanswered)
        if found:
            best = max(found, key=lambda r: r.seq)
            peer = self.nearest_without_value.popleft()
            if peer:
                await self.protocol.call_store(peer, self.node.id, best.encode())
            return best
        if self.nearest.have_contacted_all():
            return None
        return await self.find()


class _Server(Server):
    protocol_class = _Protocol

    def __init__(self, ksize: int, alpha: int, rpc_timeout: float, client: bool) -> None:
        super().__init__(ksize=ksize, alpha=alpha, node_id=os.urandom(20),
                         storage=VerifyingStorage())
        self.rpc_timeout = rpc_timeout
        self.client = client

    def _create_protocol(self) -> _Protocol:
        return _Protocol(self.node, self.storage, self.ksize, self.rpc_timeout, self.client)

    async def bootstrap_node(self, addr: tuple[str, int]) -> Node | None:
        """The package's first ping, sent with the protocol's sender id (tagged for a
        client; the package sends the bare node id here)."""
        answered, node_id = await self.protocol.ping(addr, self.protocol.source_node.id)
        return Node(node_id, addr[0], addr[1]) if answered else None

    async def join(self, addrs: Sequence[tuple[str, int]]) -> int:
        """Ping the known endpoints, then look ourselves up to fill the routing table."""
        answers = await asyncio.gather(*(self.bootstrap_node(a) for a in addrs))
        contacts = [n for n in answers if n is not None]
        if addrs and not contacts:
            raise DhtError(
                f"none of the {len(addrs)} bootstrap endpoints answered "
                f"({', '.join(f'{h}:{p}' for h, p in addrs)}): check that those DHT nodes "
                "run and that UDP reaches them"
            )
        spider = NodeSpiderCrawl(self.protocol, self.node, contacts, self.ksize, self.alpha)
        return len(await spider.find())

    async def put(self, key: bytes, text: str) -> int:
        """Store at the k closest nodes and here; return how many other nodes accepted."""
        routing = _routing_id(key)
        self.storage.admit(routing, text)
        target = Node(routing)
        nearest = self.protocol.router.find_neighbors(target)
        if not nearest:
            return 0
        nodes = await NodeSpiderCrawl(self.protocol, target, nearest, self.ksize,
                                      self.alpha).find()
        results = await asyncio.gather(
            *(self.protocol.call_store(n, routing, text) for n in nodes))
        return sum(1 for answered, accepted in results if answered and accepted is True)

    async def fetch(self, key: bytes) -> tuple[Record | None, list[str]]:
        """The newest valid record under `key` here or in the network, and why others failed."""
        routing = _routing_id(key)
        candidates: list[Record] = []
        rejected: list[str] = []
        local = self.storage.get(routing)
        if local is not None:
            try:
                candidates.append(verify_record(local, key))
            except InvalidRecordError as exc:
                rejected.append(f"from this node's own table: {exc}")
        target = Node(routing)
        nearest = self.protocol.router.find_neighbors(target)
        if nearest:
            crawl = _VerifiedValueCrawl(self.protocol, target, nearest, self.ksize,
                                        self.alpha, key)
            remote = await crawl.find()
            if remote is not None:
                candidates.append(remote)
            rejected += crawl.rejected
        return (max(candidates, key=lambda r: r.seq) if candidates else None), rejected


@dataclass(frozen=True)
class Endpoint:
    """Where a node listens, and the public key its transport proves itself with."""

    node_id: bytes
    host: str
    ports: dict[str, int]
    transport_key: bytes


@dataclass(frozen=True)
class DatasetPointer:
    """Which chunks a dataset has and which nodes hold any of them."""

    dataset_id: str
    chunk_ids: list[str]
    holders: list[bytes]


class DhtNode:
    """A running DHT node with a synchronous API; create it with `DhtNode.start`."""

    def __init__(self, key: Ed25519PrivateKey, server: _Server, loop: asyncio.AbstractEventLoop,
                 thread: threading.Thread, host: str, port: int, timeout: float) -> None:
        self._key = key
        self._server = server
        self._loop = loop
        self._thread = thread
        self.host = host
        self.port = port
        self.timeout = timeout
        self.node_id: bytes = key.public_key().public_bytes_raw()

    @classmethod
    def start(
        cls, host: str = "127.0.0.1", port: int = 0,
        bootstrap: Iterable[tuple[str, int]] = (), *,
        signing_key: Ed25519PrivateKey | None = None, rpc_timeout: float = 5.0,
        ksize: int = 20, alpha: int = 3, timeout: float = 30.0, client: bool = False,
    ) -> DhtNode:
        """Listen on UDP `host`:`port` (0: a free port) and join through `bootstrap`.

        `signing_key` signs this node's records (pass the node's identity key; a fresh key
        is made if omitted). `rpc_timeout` bounds each UDP request, `timeout` each call.
        `client`: join for lookups and stores only, never becoming a contact of others (for
        processes that do not stay up; see `_Protocol`).
        """
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"dht-{host}:{port}",
                                  daemon=True)
        thread.start()
        server = _Server(ksize, alpha, rpc_timeout, client)
        node = cls(signing_key or Ed25519PrivateKey.generate(), server, loop, thread, host,
                   port, timeout)
        try:
            try:
                node._call(server.listen(port, interface=host), f"listening on {host}:{port}")
            except OSError as exc:
                raise DhtError(f"cannot listen on UDP {host}:{port}: {exc.strerror}; pick "
                               "another port, or 0 for a free one") from exc
            node.port = server.transport.get_extra_info("sockname")[1]
            endpoints = list(bootstrap)
            if endpoints:
                node.bootstrap(endpoints)
        except BaseException:
            node.stop()
            raise
        return node

    def _call(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise DhtError(f"DHT node {self.host}:{self.port}: {what} took more than "
                           f"{self.timeout} s; the network may be unreachable") from None

    def __enter__(self) -> DhtNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DhtNode({self.host}:{self.port}, id {self.node_id.hex()[:16]}...)"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def bootstrap(self, endpoints: Iterable[tuple[str, int]]) -> int:
        """Join the network through known (host, port) endpoints; return nodes found."""
        addrs = [(_resolve(h, p), int(p)) for h, p in endpoints]
        return self._call(self._server.join(addrs), "bootstrapping")

    def neighbours(self) -> list[tuple[str, int]]:
        """Endpoints in this node's routing table: a bootstrap list for next time."""
        return [(h, int(p)) for h, p in self._server.bootstrappable_neighbors()]

    # -- records ----------------------------------------------------------------------------

    def set(self, kind: str, name: str, body: Mapping[str, Any], *,
            seq: int | None = None) -> int:
        """Sign and store a record; return how many other DHT nodes accepted it.

        RecordTooLargeError before anything is sent if it exceeds one UDP request.
        """
        record = sign_record(self._key, kind, name, dict(body),
                             time.time_ns() if seq is None else seq)
        return self._call(self._server.put(record.key, record.encode()), f"storing {kind}:{name}")

    def get(self, kind: str, name: str, writer: bytes) -> Record | None:
        """`writer`'s newest valid record about `kind`:`name`, or None if nobody has one.

        InvalidRecordError if records were found but none verified.
        """
        key = record_key(kind, name, writer)
        record, rejected = self._call(self._server.fetch(key), f"looking up {kind}:{name}")
        if record is None and rejected:
            raise InvalidRecordError(
                f"{kind}:{name!r} by {writer.hex()[:16]}...: every copy found was rejected "
                f"({len(rejected)}): " + "; ".join(rejected)
            )
        return record

    def get_key(self, key: bytes) -> Record | None:
        """The newest valid record under a DHT key given as is (a ledger record's `dht_key`),
        or None; the record's kind, name and writer are whatever hash to `key`."""
        record, _ = self._call(self._server.fetch(key), f"looking up {key.hex()[:16]}...")
        return record

    def publish_endpoint(self, ports: Mapping[str, int], host: str | None = None,
                         transport_key: bytes | None = None) -> int:
        """Announce where this node listens (its node record)."""
        return self.set("node", self.node_id.hex(), {
            "host": host or self.host, "ports": {k: int(v) for k, v in ports.items()},
            "transport_key": (transport_key or self.node_id).hex(),
        })

    def find_endpoint(self, node_id: bytes) -> Endpoint | None:
        record = self.get("node", node_id.hex(), node_id)
        if record is None:
            return None
        body = record.body
        return Endpoint(node_id, str(body["host"]),
                        {str(k): int(v) for k, v in body["ports"].items()},
                        bytes.fromhex(body["transport_key"]))

    def publish_dataset(self, dataset_id: str, chunk_ids: Sequence[str],
                        holders: Sequence[bytes]) -> int:
        """As the dataset's owner, point from its id to its chunks and their holders."""
        return self.set("dataset", dataset_id, {"chunks": list(chunk_ids),
                                                "holders": [h.hex() for h in holders]})

    def find_dataset(self, dataset_id: str, owner: bytes) -> DatasetPointer | None:
        record = self.get("dataset", dataset_id, owner)
        if record is None:
            return None
        return DatasetPointer(dataset_id, [str(c) for c in record.body["chunks"]],
                              [bytes.fromhex(h) for h in record.body["holders"]])

    def publish_chunk(self, chunk_id: str, holders: Sequence[bytes]) -> int:
        """As the dataset's owner, record which nodes hold a chunk's shares."""
        return self.set("chunk", chunk_id, {"holders": [h.hex() for h in holders]})

    def find_chunk_holders(self, chunk_id: str, owner: bytes) -> list[bytes] | None:
        record = self.get("chunk", chunk_id, owner)
        if record is None:
            return None
        return [bytes.fromhex(h) for h in record.body["holders"]]

    # -- shutdown ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Close the socket, cancel pending requests and end the loop thread. Idempotent."""
        if self._loop.is_closed():
            return
        if self._loop.is_running():
            async def shutdown() -> None:
                self._server.stop()
                current = asyncio.current_task()
                pending = [t for t in asyncio.all_tasks() if t is not current]
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(self.timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout)
        self._loop.close()


def _resolve(host: str, port: int) -> str:
    """The package accepts IP addresses only; resolve names once, here."""
    try:
        return socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except socket.gaierror as exc:
        raise DhtError(f"bootstrap endpoint {host}:{port} does not resolve: {exc}") from exc
