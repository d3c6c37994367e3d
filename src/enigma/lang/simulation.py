"""A quorum in one process: q engines in q threads, talking through in-memory queues.

For runs on synthetic data whose only product is their counters: the cost estimate
(`lang.cost`, through `thread_quorum`) and a blame job's demand (`app.demand`). Why not
q processes (`mpc.runner.run_local`): such a run is a few engine calls per row on the
dealer, and with processes nearly all of its time went to spawning interpreters,
importing the engine in each (~1.7 s) and the mesh handshakes: an estimate took 19 s on
a quiet machine and 50-85 s under load, for runs whose own work takes milliseconds.

What the counters see is unchanged: every party runs the same engine and the same
program, and the engine counts rounds, triples, masks, openings and bytes itself (from
the arrays it hands to its channel), so a channel made of queues yields the same figures
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
from enigma.mpc.runner import ProviderFactory

#: Seconds a simulated party waits for another's message before the run gives up.
DRY_RUN_TIMEOUT = 600.0
POLL = 0.2
"""Seconds between looks at the failure flag while waiting for a message."""


class Echo(RuntimeError):
    """A simulated party stopped because another failed (not the cause)."""


class Wires:
    """One queue per ordered pair of simulated parties."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.queues = {(s, r): queue.Queue() for s in range(parties) for r in range(parties)
                       if s != r}
        self.failed = threading.Event()
        """Set when a party fails, so that the others stop waiting for it."""


class ThreadChannel:
    """An engine channel between threads of one process (the `mpc.engine.Channel` protocol)."""

    def __init__(self, wires: Wires, party: int, timeout: float = DRY_RUN_TIMEOUT) -> None:
        self.wires = wires
        self.party = party
        self.parties = wires.parties
        self.timeout = timeout

    def send(self, to: int, *buffers: Any) -> None:
        # a copy: the sender may reuse its arrays once send returns, as over a socket
        self.wires.queues[(self.party, to)].put([memoryview(bytes(b)) for b in buffers])

    def recv(self, frm: int) -> list[memoryview]:
        waited = 0.0
        while waited < self.timeout:
            try:
                return self.wires.queues[(frm, self.party)].get(timeout=POLL)
            except queue.Empty:
                if self.wires.failed.is_set():
                    raise Echo("dry run: another party failed") from None
                waited += POLL
        raise TimeoutError(f"dry run: party {frm} sent nothing")

    def broadcast(self, *buffers: Any) -> dict[int, list[memoryview]]:
        for j in range(self.parties):
            if j != self.party:
                self.send(j, *buffers)
        return {j: self.recv(j) for j in range(self.parties) if j != self.party}


def run_threads(party: Callable[[int], None], parties: int,
                errors: dict[int, BaseException], deadline: float | None = None) -> None:
    """party(i) for every party in its own thread; then raise the first real failure as it
    is (a refused script stays a ScriptError), not another party's echo of it. `party`
    records its exception in `errors` and sets its wires' `failed`. A party still running
    after `deadline` seconds is a TimeoutError."""
    threads = [threading.Thread(target=party, args=(i,), name=f"enigma-sim-{i}", daemon=True)
               for i in range(parties)]
    end = None if deadline is None else time.monotonic() + deadline
    for t in threads:
        t.start()
    for t in threads:
        t.join(None if end is None else max(0.0, end - time.monotonic()))
    if errors:
        first = min(errors, key=lambda i: isinstance(errors[i], Echo))
        raise errors[first]
    if any(t.is_alive() for t in threads):
        raise TimeoutError(f"the simulated quorum did not finish within {deadline:.0f} s")


def thread_quorum(fn: Callable[..., Any], *, parties: int = 3, args: Sequence[Any] = (),
                  provider_factory: ProviderFactory, timeout: float = 30.0,
                  deadline: float = 600.0, engine_kwargs: dict | None = None) -> list[Any]:
    """fn(engine, *args) for every party, each in a thread; results in party order.

    The contract of `mpc.runner.run_local` (which `lang.runner.run_mpc` accepts in its
    place), except that a failing party's exception is raised as it is.
    """
    if getattr(provider_factory, "needs_channel", False):
        raise ValueError("the in-process quorum runs only providers without a protocol "
                         "of their own (the dealer)")
    wires = Wires(parties)
    outputs: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}

    def party(i: int) -> None:
        try:
            field = Field()
            engine = Engine(ThreadChannel(wires, i, timeout), provider_factory(field, i, parties),
                            **(engine_kwargs or {}))
            outputs[i] = fn(engine, *args)
        except BaseException as exc:  # reported by run_threads; the others stop waiting
            errors[i] = exc
            wires.failed.set()

    run_threads(party, parties, errors, deadline)
    return [outputs[i] for i in range(parties)]
