"""Hosts that are really apart on one machine: a Linux network namespace per host.

Why namespaces: on 127.0.0.1 every party shares one loopback, one address and one port
space, so nothing that only a network shows can happen there (a cable cut, a partition,
a host that comes back on another address, a slow or thin link). Each `Host` here has its
own stack: an `eth0` with its own IPv4 address, cabled (a veth pair) to one bridge.

Layout of a `Lan` named `enigma-<pid>-<hex>`:

    namespace <lan>-hub   bridge br0, port p<k> for host k (the switch)
    namespace <lan>-<h>   eth0 = 10.77.0.<10+k>/24, lo; the cable's other end is p<k>

Nothing is made in the machine's own namespace, so the host's network is untouched and
interface names never collide between runs; only namespace names are global, and the
pid and random suffix keep parallel runs apart. A run killed before it could clean up
leaves namespaces whose pid is gone: `sweep_stale` removes them (and ends the processes
left in them) before a new run starts.

Faults, each undone by its inverse: `cut`/`mend` take the host's switch port down/up (the
cable pulled at the switch: established connections hang, new ones fail), `partition`/
`heal` make groups unreachable from each other by routes (each side still works inside),
`readdress` moves a host to a new IP. A `Lan(delay_line=True)` can be made a WAN
(`shape`): a user-space switch holds each frame half the round-trip time (this kernel has
no `tc netem`, app/delayline.py says more) and `tc tbf` limits each uplink's rate.

Processes run in a host with `Host.command(argv)` (`ip netns exec`: it execs, so the pid
is the program's own); Python code of this process runs in a host with `Host.call`, on a
thread that entered the namespace (sockets belong to the namespace of the thread
that made them; threads it starts inherit it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "enigma-"
SUBNET = "10.77.0"
NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000

T = TypeVar("T")


class NamespaceError(RuntimeError):
    """An `ip` or `tc` command failed; the message quotes it and its error."""


def ip(*args: str, check: bool = True) -> str:
    """Run `ip ARGS`; its stdout, or NamespaceError naming the command."""
    return _tool("ip", args, check)


def _tool(tool: str, args: Sequence[str], check: bool = True) -> str:
    # 120 s: on a busy host the kernel's rtnl lock, which every route and address change
    # takes, has been held for over 30 s (another namespace's teardown); a slow `ip` is
    # not a failed one
    done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise NamespaceError(f"`{tool} {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


def unavailable() -> str | None:
    """Why namespaces cannot be made here (not root, no `ip`/`tc`, a kernel that refuses),
    or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root, as .ci/run does)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian: apt-get install iproute2)"
    probe = f"{PREFIX}{os.getpid()}-probe{secrets.token_hex(2)}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` is refused here: {done.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def _end_processes_in(ns: str) -> None:
    """SIGKILL what still runs in `ns` (processes a run started there), by pid."""
    for pid in ip("netns", "pids", ns, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def sweep_stale() -> list[str]:
    """Remove `enigma-<pid>-…` namespaces whose run (pid) is gone; the names removed."""
    swept = []
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        pid = name[len(PREFIX):].split("-")[0]
        if not name.startswith(PREFIX) or not pid.isdigit():
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), 0)
            continue  # its run is alive
        _end_processes_in(name)
        ip("netns", "del", name, check=False)
        swept.append(name)
    return swept


def enter(ns: str) -> None:
    """Move the calling thread into network namespace `ns` (setns(2); Python 3.11 has no
    os.setns). Sockets it makes from now on, and threads it starts, live there."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise NamespaceError(f"cannot enter namespace {ns}: "
                                 f"{os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def reaches(address: str, port: int = 9, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to `address` gets an answer (accepted or refused) from the
    calling thread's network."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def enter_party(namespaces: Sequence[str], party: int) -> None:
    """`enter` for party `party` of a quorum laid out on `namespaces` (a picklable prelude
    for `mpc.runner.run_local`'s spawned parties)."""
    enter(namespaces[party])


@dataclass
class Host:
    """One machine of a `Lan`: its namespace, its address and its cable's switch port."""

    lan: Lan
    name: str
    ns: str
    index: int
    ip: str

    @property
    def port(self) -> str:
        """Its cable's end on the switch (in the hub namespace)."""
        return f"p{self.index}"

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run on this host."""
        return ["ip", "netns", "exec", self.ns, *argv]

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(*args, **kwargs) on this host's network: on a daemon thread that entered the
        namespace (a daemon, so that a call stuck on a dead link never holds up exit)."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                enter(self.ns)
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller below
                box["error"] = exc

        thread = threading.Thread(target=run, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def cut(self) -> None:
        """Pull the cable at the switch: nothing reaches this host or leaves it."""
        ip("-n", self.lan.hub, "link", "set", self.port, "down")

    def mend(self) -> None:
        ip("-n", self.lan.hub, "link", "set", self.port, "up")

    def readdress(self, address: str) -> None:
        """Move this host to `address` (the old one is gone, as after a DHCP lease)."""
        ip("-n", self.ns, "addr", "flush", "dev", "eth0")
        ip("-n", self.ns, "addr", "add", f"{address}/24", "dev", "eth0")
        self.ip = address

    def limit(self, rate_mbit: float) -> None:
        """A token bucket of `rate_mbit` on the uplink; its queue holds 50 ms at that rate
        (more is dropped, as a router does) and a burst of two 64 KiB frames."""
        burst = int(rate_mbit * 1e6 / 8 * 1e-3) + (128 << 10)
        _tool("tc", ["-n", self.ns, "qdisc", "replace", "dev", "eth0", "root", "tbf",
                     "rate", f"{rate_mbit}mbit", "burst", str(burst), "latency", "50ms"])

    def tx_bytes(self) -> int:
        """Bytes this host has sent on its uplink so far."""
        return int(ip("netns", "exec", self.ns, "cat",
                      "/sys/class/net/eth0/statistics/tx_bytes").strip())


class Lan:
    """A switch and the hosts cabled to it (`add`); `close` removes every namespace, and so
    every cable and the bridge, after ending the processes still running in them.

    `delay_line`: the switch is app/delayline.py (TAP cables, a one-way delay `shape` can
    set) instead of a kernel bridge (veth cables, no delay)."""

    def __init__(self, delay_line: bool = False) -> None:
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self.hub = f"{self.name}-hub"
        self.hosts: dict[str, Host] = {}
        self._partitions: list[tuple[Host, str]] = []
        self._switch: subprocess.Popen[str] | None = None
        ip("netns", "add", self.hub)
        try:
            if delay_line:
                self._switch = subprocess.Popen(
                    ["ip", "netns", "exec", self.hub, sys.executable, "-m",
                     "enigma.app.delayline"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    text=True)
            else:
                ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
                ip("-n", self.hub, "link", "set", "br0", "up")
        except (NamespaceError, OSError):
            self.close()
            raise

    def _tell(self, line: str) -> None:
        assert self._switch is not None and self._switch.stdin and self._switch.stdout
        self._switch.stdin.write(line + "\n")
        self._switch.stdin.flush()
        answer = self._switch.stdout.readline().strip()
        if answer != "ok":
            raise NamespaceError(f"the delay line refused {line!r}: {answer or 'it exited'}")

    def add(self, name: str) -> Host:
        """A new host `name`, cabled to the switch, with the next address."""
        index = len(self.hosts)
        host = Host(self, name, f"{self.name}-{name}", index, f"{SUBNET}.{10 + index}")
        ip("netns", "add", host.ns)
        self.hosts[name] = host
        if self._switch is None:
            ip("-n", self.hub, "link", "add", host.port, "type", "veth", "peer", "name",
               "eth0", "netns", host.ns)
            ip("-n", self.hub, "link", "set", host.port, "master", "br0", "up")
        else:
            self._tell(f"add {host.port}")
            ip("-n", self.hub, "link", "set", host.port, "netns", host.ns)
            ip("-n", host.ns, "link", "set", host.port, "name", "eth0", "mtu", "65000")
        ip("-n", host.ns, "link", "set", "lo", "up")
        ip("-n", host.ns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
        ip("-n", host.ns, "link", "set", "eth0", "up")
        return host

    def shape(self, rtt_ms: float, rate_mbit: float) -> None:
        """Every link a WAN link: host-to-host round trips of `rtt_ms` (half each way, held
        by the delay line) and an uplink of `rate_mbit` per host."""
        self._tell(f"delay {rtt_ms / 2}")
        for host in self.hosts.values():
            host.limit(rate_mbit)

    def wait_reachable(self, timeout: float = 10.0) -> None:
        """Until the bridge forwards (its ports leave the listening state): every host
        answers a connection from the first (a refusal counts: it came back)."""
        first, *rest = self.hosts.values()
        deadline = time.monotonic() + timeout
        for other in rest:
            while not first.call(reaches, other.ip):
                if time.monotonic() > deadline:
                    raise NamespaceError(f"{other.name} ({other.ip}) is not reachable from "
                                         f"{first.name} after {timeout:.0f} s")
                time.sleep(0.1)

    def partition(self, side: Iterable[Host], other: Iterable[Host]) -> None:
        """Hosts of `side` and of `other` can no longer reach each other (a route says
        unreachable at once, as a router reports a lost path); each side works inside."""
        side, other = list(side), list(other)
        for a, b in [(a, b) for a in side for b in other] + [(b, a) for a in side
                                                              for b in other]:
            ip("-n", a.ns, "route", "add", "unreachable", f"{b.ip}/32")
            self._partitions.append((a, b.ip))

    def heal(self) -> None:
        """Undo every `partition`."""
        while self._partitions:
            host, target = self._partitions.pop()
            ip("-n", host.ns, "route", "del", "unreachable", f"{target}/32", check=False)

    def close(self) -> None:
        if self._switch is not None:
            with contextlib.suppress(OSError):
                self._switch.stdin.close()  # type: ignore[union-attr]
            try:
                self._switch.wait(10)
            except subprocess.TimeoutExpired:
                self._switch.kill()
                self._switch.wait(10)
        for ns in [h.ns for h in self.hosts.values()] + [self.hub]:
            _end_processes_in(ns)
            ip("netns", "del", ns, check=False)

    def __enter__(self) -> Lan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
