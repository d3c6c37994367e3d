"""Transport throughput on loopback between real processes, with the alternatives it beat.

Prints one JSON object per line:
  {"bench": "net", "op": ..., "bytes": ..., "seconds": ..., "gb_per_second": ...}
Ops:
  link_tcp_plain     raw TCP socket, length-prefixed frames, no crypto (the ceiling)
  link_zmq_plain     pyzmq PAIR socket, zero-copy send/recv, no crypto
  link_zmq_curve     pyzmq PAIR socket with CurveZMQ encryption
  link_tls           Python ssl, TLS 1.3 (AES-256-GCM) with mutual pinned certificates
  link_mesh          enigma.net.Mesh, one direction (encrypted, authenticated, hashed)
  exchange3_mesh     3 parties, each sends `size` bytes to each other party per round
  exchange3_tcp_plain  the same round over raw TCP sockets with no crypto (the ceiling)
  rounds3_mesh       3 parties, many rounds of a 16-byte broadcast: the latency of one round
  setup3_mesh, setup5_mesh  connect a whole mesh of 3 (5) parties whose processes already
                     run, `reps` times: handshakes included (seconds of the slowest party)
`bytes` counts payload bytes moved during the timed part (for exchange3, all 6 directions);
times follow one warm-up message or round. The 3-party mesh ops also report the CPU time
of all parties per round, which varies less than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import multiprocessing as mp
import pathlib
import socket
import ssl
import struct
import tempfile
import threading
import time

import numpy as np
import zmq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from enigma.net import Identity, Mesh, free_ports, local_quorum

CTX = mp.get_context("spawn")


def _report(op: str, nbytes: int, seconds: float, **extra: object) -> None:
    print(json.dumps({"bench": "net", "op": op, "bytes": nbytes, "seconds": round(seconds, 6),
                      "gb_per_second": round(nbytes / seconds / 1e9, 3), **extra}), flush=True)


def _payload(size: int) -> np.ndarray:
    return np.random.default_rng(size).integers(0, 255, size=size, dtype=np.uint8)


# ---- raw TCP ------------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        k = sock.recv_into(view[got:])
        if k == 0:
            raise ConnectionError("peer closed")
        got += k


def _tcp_receiver(port: int, reps: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        head = bytearray(8)
        for _ in range(reps + 1):
            _recv_exact(s, memoryview(head))
            (n,) = struct.unpack("<Q", head)
            _recv_exact(s, memoryview(np.empty(n, np.uint8)))
        s.sendall(b"k")


def link_tcp_plain(size: int, reps: int) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    p = CTX.Process(target=_tcp_receiver, args=(server.getsockname()[1], reps))
    p.start()
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = _payload(size)
    conn.sendall(struct.pack("<Q", size))
    conn.sendall(data)
    t = time.perf_counter()
    for _ in range(reps):
        conn.sendall(struct.pack("<Q", size))
        conn.sendall(data)
    conn.recv(1)
    _report("link_tcp_plain", size * reps, time.perf_counter() - t, message_bytes=size)
    conn.close()
    server.close()
    p.join()


# ---- TLS ----------------------------------------------------------------------------------


def _self_signed(folder: pathlib.Path) -> tuple[str, str]:
    """One certificate for 127.0.0.1 used by both ends and pinned as the only trusted one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "enigma-bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _tls_context(side: int, cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(side)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def _tls_receiver(port: int, reps: int, size: int, cert: str, key: str) -> None:
    ctx = _tls_context(ssl.PROTOCOL_TLS_CLIENT, cert, key)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                         server_hostname="127.0.0.1") as s:
        for _ in range(reps + 1):
            _recv_exact(s, memoryview(np.empty(size, np.uint8)))
        s.sendall(b"k")


def link_tls(size: int, reps: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cert, key = _self_signed(pathlib.Path(folder))
        server = socket.create_server(("127.0.0.1", 0))
        p = CTX.Process(target=_tls_receiver,
                        args=(server.getsockname()[1], reps, size, cert, key))
        p.start()
        raw, _ = server.accept()
        conn = _tls_context(ssl.PROTOCOL_TLS_SERVER, cert, key).wrap_socket(raw, server_side=True)
        data = _payload(size)
        conn.sendall(data)
        t = time.perf_counter()
        for _ in range(reps):
            conn.sendall(data)
        conn.recv(1)
        _report("link_tls", size * reps, time.perf_counter() - t, message_bytes=size,
                cipher=conn.cipher()[0])
        conn.close()
        server.close()
        p.join()


# ---- pyzmq --------------------------------------------------------------------------------


def _zmq_receiver(port: int, reps: int, server_public: bytes | None) -> None:
    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    if server_public is not None:
        s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
        s.curve_serverkey = server_public
    s.connect(f"tcp://127.0.0.1:{port}")
    for _ in range(reps + 1):
        s.recv(copy=False)
    s.send(b"k")
    s.close()
    ctx.term()


def link_zmq(size: int, reps: int, curve: bool) -> None:
    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    public = None
    if curve:
        public, secret = zmq.curve_keypair()
        s.curve_secretkey, s.curve_publickey, s.curve_server = secret, public, True
    port = s.bind_to_random_port("tcp://127.0.0.1")
    p = CTX.Process(target=_zmq_receiver, args=(port, reps, public))
    p.start()
    data = _payload(size)
    s.send(data, copy=False)
    t = time.perf_counter()
    for _ in range(reps):
        s.send(data, copy=False)
    s.recv()
    op = "link_zmq_curve" if curve else "link_zmq_plain"
    _report(op, size * reps, time.perf_counter() - t, message_bytes=size)
    p.join()
    s.close()
    ctx.term()


# ---- the mesh -----------------------------------------------------------------------------


def _mesh_party(me: int, secret: bytes, peers, size: int, reps: int, mode: str,
                results: mp.Queue) -> None:
    with Mesh(me, Identity.from_private_bytes(secret), peers, b"bench", timeout=60) as mesh:
        data = _payload(size)
        if mode == "link":
            if me == 0:
                for _ in range(reps + 1):
                    mesh.send(1, data)
                mesh.recv(1)
            else:
                mesh.recv(0)
                t = time.perf_counter()
                for _ in range(reps):
                    mesh.recv(0)
                results.put(time.perf_counter() - t)
                mesh.send(0, b"")
        else:
            mesh.broadcast(data)
            cpu = time.process_time()
            t = time.perf_counter()
            for _ in range(reps):
                mesh.broadcast(data)
            results.put((time.perf_counter() - t, time.process_time() - cpu))
            mesh.checkpoint()  # no party closes while another still waits for its last round


def _setup_party(me: int, secret: bytes, peers, reps: int, results: mp.Queue) -> None:
    identity = Identity.from_private_bytes(secret)
    total = 0.0
    for rep in range(reps + 1):
        t = time.perf_counter()
        mesh = Mesh(me, identity, peers, b"setup-%d" % rep, timeout=60)
        if rep:
            total += time.perf_counter() - t
        mesh.checkpoint()  # every party is connected before anyone closes
        mesh.close()
    results.put(total)


def mesh_setup(parties: int, reps: int) -> float:
    """Seconds per mesh setup of the slowest party (after one warm-up setup)."""
    identities, peers = local_quorum(parties)
    results = CTX.Queue()
    procs = [CTX.Process(target=_setup_party, args=(i, identities[i].private_bytes(), peers,
                                                    reps, results))
             for i in range(parties)]
    for p in procs:
        p.start()
    seconds = max(results.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    return seconds / reps


def mesh_exchange(size: int, reps: int, parties: int) -> tuple[float, float]:
    """Wall seconds (slowest party) and CPU seconds (all parties) of `reps` rounds."""
    identities, peers = local_quorum(parties)
    results = CTX.Queue()
    procs = [CTX.Process(target=_mesh_party, args=(i, identities[i].private_bytes(), peers,
                                                   size, reps, "exchange", results))
             for i in range(parties)]
    for p in procs:
        p.start()
    got = [results.get(timeout=600) for _ in range(parties)]
    for p in procs:
        p.join()
    return max(wall for wall, _ in got), sum(cpu for _, cpu in got)


def mesh_link(size: int, reps: int) -> float:
    """Seconds party 1 takes to receive `reps` messages of `size` bytes from party 0."""
    identities, peers = local_quorum(2)
    results = CTX.Queue()
    procs = [CTX.Process(target=_mesh_party, args=(i, identities[i].private_bytes(), peers,
                                                   size, reps, "link", results))
             for i in range(2)]
    for p in procs:
        p.start()
    seconds = results.get(timeout=600)
    for p in procs:
        p.join()
    return seconds


# ---- 3-party exchange over raw TCP, the ceiling -------------------------------------------


def _tcp_party(me: int, ports: list[int], size: int, reps: int, results: mp.Queue) -> None:
    parties = len(ports)
    server = socket.create_server(("127.0.0.1", ports[me]))
    socks: dict[int, socket.socket] = {}
    for j in range(me):
        while True:
            try:
                socks[j] = socket.create_connection(("127.0.0.1", ports[j]))
                break
            except ConnectionRefusedError:
                time.sleep(0.02)
        socks[j].sendall(struct.pack("<H", me))
    while len(socks) < parties - 1:
        c, _ = server.accept()
        who = bytearray(2)
        _recv_exact(c, memoryview(who))
        socks[struct.unpack("<H", who)[0]] = c
    data = _payload(size)

    def one_round() -> None:
        readers = [threading.Thread(target=_recv_exact,
                                    args=(s, memoryview(np.empty(size, np.uint8))))
                   for s in socks.values()]
        for r in readers:
            r.start()
        for s in socks.values():
            s.sendall(data)
        for r in readers:
            r.join()

    one_round()
    t = time.perf_counter()
    for _ in range(reps):
        one_round()
    results.put(time.perf_counter() - t)
    for s in socks.values():
        s.close()
    server.close()


def exchange3_tcp_plain(size: int, reps: int) -> float:
    ports = free_ports(3)
    results = CTX.Queue()
    procs = [CTX.Process(target=_tcp_party, args=(i, ports, size, reps, results))
             for i in range(3)]
    for p in procs:
        p.start()
    seconds = max(results.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32 * 10**6,
                    help="bytes per message (default: the 32 MB one party sends each other "
                         "party in a round of 10^6 Beaver multiplications)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--ops", default="link_tcp_plain,link_zmq_plain,link_zmq_curve,link_tls,"
                                     "link_mesh,exchange3_tcp_plain,exchange3_mesh,rounds3_mesh,"
                                     "setup3_mesh,setup5_mesh")
    args = ap.parse_args()
    size, reps = args.size, args.reps
    for op in args.ops.split(","):
        if op == "link_tcp_plain":
            link_tcp_plain(size, reps)
        elif op == "link_tls":
            link_tls(size, reps)
        elif op in ("link_zmq_plain", "link_zmq_curve"):
            link_zmq(size, reps, curve=op == "link_zmq_curve")
        elif op == "link_mesh":
            _report(op, size * reps, mesh_link(size, reps), message_bytes=size)
        elif op == "exchange3_mesh":
            seconds, cpu = mesh_exchange(size, reps, 3)
            _report(op, 6 * size * reps, seconds, message_bytes=size, parties=3,
                    seconds_per_round=round(seconds / reps, 6),
                    cpu_seconds_per_round=round(cpu / reps, 6))
        elif op == "exchange3_tcp_plain":
            seconds = exchange3_tcp_plain(size, reps)
            _report(op, 6 * size * reps, seconds, message_bytes=size, parties=3,
                    seconds_per_round=round(seconds / reps, 6))
        elif op == "rounds3_mesh":
            rounds = 100 * reps
            seconds, cpu = mesh_exchange(16, rounds, 3)
            _report(op, 6 * 16 * rounds, seconds, message_bytes=16, parties=3,
                    seconds_per_round=round(seconds / rounds, 7),
                    cpu_seconds_per_round=round(cpu / rounds, 7))
        elif op in ("setup3_mesh", "setup5_mesh"):
            parties = int(op[5])
            seconds = mesh_setup(parties, reps)
            _report(op, 0, seconds, parties=parties, seconds_per_setup=round(seconds, 6))
        else:
            raise SystemExit(f"unknown op {op!r}; choose from --ops' default list")


if __name__ == "__main__":
    main()
