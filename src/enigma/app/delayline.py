"""A switch that holds every frame for a while: the WAN delay this kernel's `tc` lacks.

Why: `tc qdisc … netem` is the standard way to give a link a round-trip time, but a kernel
built without sch_netem (this machine's: `Error: Specified qdisc kind is unknown`, and no
fq for BPF pacing either) cannot delay packets at all. A user-space switch can: each host's
`eth0` is a TAP device whose other end is a file descriptor of this process; a frame read
from one port is written to its destination port `delay` seconds later (a learning
switch: unknown and group destinations go to every other port). A constant delay keeps
the frames of a port in order. Rates stay the kernel's (`tc … tbf` on each host's uplink).

Driven on stdin, one command a line, each answered `ok` (or `error: why`) on stdout:
`add NAME` makes a TAP port NAME in this process's namespace (the caller moves it into
its host's namespace); `delay MS` sets the one-way delay; end of input stops the switch.
Run in the hub namespace of a `namespaces.Lan`: `python -m enigma.app.delayline`.

Its cost: one read and one write system call per frame in Python; the ports' MTU is
raised to 64 KiB so that a TCP segment is one frame. It carries a few Gbit/s at most on an
idle core, so a "10 Gbit" link is the switch's own ceiling (docs/design.md, "Over a WAN").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import struct
import sys
import time
from collections import deque

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
FRAME_MAX = 1 << 17


def open_tap(name: str) -> int:
    """A TAP device NAME in this namespace; the descriptor that carries its frames."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


class DelaySwitch:
    """The ports, the MAC table and the frames in flight."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.macs: dict[bytes, int] = {}
        self.delay = 0.0
        self.flight: deque[tuple[float, list[int], bytes]] = deque()
        self.selector = selectors.DefaultSelector()

    def add(self, name: str) -> None:
        fd = open_tap(name)
        self.selector.register(fd, selectors.EVENT_READ, len(self.ports))
        self.ports.append(fd)

    def take(self, port: int, now: float) -> None:
        """Every frame waiting on `port`, into flight until now + delay."""
        fd = self.ports[port]
        while True:
            try:
                frame = os.read(fd, FRAME_MAX)
            except BlockingIOError:
                return
            self.macs[frame[6:12]] = port
            to = self.macs.get(frame[:6])
            outs = [to] if to is not None and not frame[0] & 1 else \
                [p for p in range(len(self.ports)) if p != port]
            self.flight.append((now + self.delay, outs, frame))

    def release(self, now: float) -> None:
        """Write every frame whose time has come (a full queue at a port drops it, as a
        switch does)."""
        while self.flight and self.flight[0][0] <= now:
            _, outs, frame = self.flight.popleft()
            for p in outs:
                with contextlib.suppress(OSError):  # BlockingIOError included
                    os.write(self.ports[p], frame)

    def command(self, line: str) -> str:
        word, _, arg = line.strip().partition(" ")
        try:
            if word == "add":
                self.add(arg)
            elif word == "delay":
                self.delay = float(arg) / 1e3
            else:
                return f"error: unknown command {word!r} (add NAME, delay MS)"
        except (OSError, ValueError) as exc:
            return f"error: {exc}"
        return "ok"

    def run(self) -> None:
        self.selector.register(sys.stdin, selectors.EVENT_READ, None)
        while True:
            timeout = max(0.0, self.flight[0][0] - time.monotonic()) if self.flight else None
            for key, _ in self.selector.select(timeout):
                if key.data is None:
                    line = sys.stdin.readline()
                    if not line:
                        return
                    print(self.command(line), flush=True)
                else:
                    self.take(key.data, time.monotonic())
            self.release(time.monotonic())


if __name__ == "__main__":
    DelaySwitch().run()
