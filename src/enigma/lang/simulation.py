"""A quorum in one process: q engines in q threads, talking through in-memory queues.

For the cost estimate only (`lang.cost`). Why not `mpc.runner.run_local`: an estimate
measures two tiny runs (64 and 256 synthetic rows), and with real processes nearly all of
its time went to spawning 3 interpreters per run, importing the engine in each (~1.7 s)
and the mesh handshakes: 19 s on a quiet machine and 50-85 s under load, for runs whose
own work takes milliseconds. Threads share one interpreter and one import.

What the counters see is unchanged: every party runs the same engine and the same
program, and the engine counts rounds, triples, masks, openings and bytes itself (from
the arrays it hands to the channel), so a channel made of queues yields the same figures
as the authenticated mesh; `tests/test_lang_cost.py` checks them against a 3-process
run. Nothing here is private: the data is synthetic and the dealer insecure by design.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from enigma.field import Field
from enigma.mpc.engine import Engine
from enigma.mpc.runner import PartyFailed, ProviderFactory

POLL = 0.05
"""Seconds between looks at the abort flag while waiting for a message."""


class Aborted(RuntimeError):
    """Another party of the simulated quorum failed; this one stops waiting for it."""


class MemoryChannel:
    """One party's end of the in-memory mesh (the `mpc.engine.Channel` protocol)."""

    def __init__(self, party: int, parties: int, boxes: dict[tuple[int, int], queue.Queue],
                 abort: threading.Event, timeout: float) -> None:
        self.party, self.parties = party, parties
        self._boxes, self._abort, self._timeout = boxes, abort, timeout

    def send(self, to: int, *buffers: Any) -> None:
        # a copy: the sender may reuse its arrays once send returns, as over a socket
        self._boxes[(self.party, to)].put([memoryview(bytes(memoryview(b))) for b in buffers])

    def recv(self, frm: int) -> list[memoryview]:
        box = self._boxes[(frm, self.party)]
        waited = 0.0
        while True:
            try:
                return box.get(timeout=POLL)
            except queue.Empty:
                waited += POLL
                if self._abort.is_set():
                    raise Aborted(f"party {frm} failed") from None
                if waited >= self._timeout:
                    raise TimeoutError(f"no message from party {frm} within "
                                       f"{self._timeout:.0f} s") from None

    def broadcast(self, *buffers: Any) -> dict[int, list[memoryview]]:
        others = [j for j in range(self.parties) if j != self.party]
        for j in others:
            self.send(j, *buffers)
        return {j: self.recv(j) for j in others}


def run_threads(fn: Callable[..., Any], *, parties: int = 3, args: Sequence[Any] = (),
                provider_factory: ProviderFactory, timeout: float = 30.0,
                deadline: float = 600.0, engine_kwargs: dict | None = None) -> list[Any]:
    """fn(engine, *args) for every party, each in a thread; results in party order.

    The same contract as `mpc.runner.run_local` (which `lang.runner.run_mpc` accepts in
    its place): a failing party's error comes back as `PartyFailed`, and the others stop.
    """
    if getattr(provider_factory, "needs_channel", False):
        raise ValueError("the in-process quorum runs only providers without a protocol "
                         "of their own (the dealer)")
    boxes = {(i, j): queue.Queue() for i in range(parties) for j in range(parties) if i != j}
    abort = threading.Event()
    outputs: dict[int, Any] = {}
    errors: dict[int, tuple[str, str]] = {}

    def party_main(party: int) -> None:
        try:
            field = Field()
            channel = MemoryChannel(party, parties, boxes, abort, timeout)
            engine = Engine(channel, provider_factory(field, party, parties),
                            **(engine_kwargs or {}))
            outputs[party] = fn(engine, *args)
        except Aborted:
            pass
        except Exception as exc:  # reported to the caller as PartyFailed
            errors[party] = (type(exc).__name__, str(exc))
            abort.set()

    threads = [threading.Thread(target=party_main, args=(i,), name=f"enigma-sim-{i}",
                                daemon=True) for i in range(parties)]
    end = time.monotonic() + deadline
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    if any(t.is_alive() for t in threads):
        abort.set()
        errors.setdefault(-1, ("Timeout", f"no result within {deadline:.0f} s"))
    if errors:
        raise PartyFailed(errors)
    return [outputs[i] for i in range(parties)]
