"""Run one function as q real processes over the authenticated mesh.

For tests, benchmarks and notebooks: `run_local(fn, parties=3, args=...)`
starts q OS processes, gives each a `Mesh` (fresh identities, free ports on
127.0.0.1), a preprocessing provider made by `provider_factory` and an
`Engine`, calls `fn(engine, *args)` in each, and returns the q results in
party order. `fn` must be importable (a module-level function), because the
processes are spawned, not forked: a forked child would inherit the parent's
threads and locks.

A factory whose attribute `needs_channel` is true is called with the party's
mesh as `channel=`: preprocessing that runs a protocol (homomorphic
encryption) talks over the same authenticated channels as the online phase.

If any party fails, every party's error is collected and `PartyFailed` says
who failed and why; processes still running at the deadline are killed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from enigma.field import Field
from enigma.net import local
from enigma.net.identity import Identity, PeerInfo
from enigma.net.mesh import Mesh

from .blame import Package, Program, Verdict, blame_mode, identify
from .engine import Engine
from .faults import (
    CHANNEL_KINDS,
    PROVIDER_KINDS,
    DroppedOut,
    Fault,
    FaultyChannel,
    FaultyProvider,
    require_insecure,
)
from .preprocessing import Provider

ProviderFactory = Callable[[Field, int, int], Provider]


class PartyFailed(RuntimeError):
    """At least one party raised; `errors` maps party to (exception type, message)."""

    def __init__(self, errors: dict[int, tuple[str, str]]) -> None:
        self.errors = errors
        lines = [f"party {p}: {kind}: {msg}" for p, (kind, msg) in sorted(errors.items())]
        super().__init__("the computation was aborted:\n  " + "\n  ".join(lines))

    def kinds(self) -> set[str]:
        return {kind for kind, _ in self.errors.values()}


def _party_main(party: int, key: bytes, peers: list[PeerInfo], session: bytes, fn: Callable,
                args: tuple, factory: ProviderFactory, modulus: int, engine_kwargs: dict,
                timeout: float, results: mp.Queue,
                prelude: Callable[[int], None] | None = None) -> None:
    try:
        if prelude is not None:
            prelude(party)
        field = Field(modulus)
        with Mesh(party, Identity.from_private_bytes(key), peers, session,
                  timeout=timeout) as mesh:
            if getattr(factory, "needs_channel", False):
                provider = factory(field, party, len(peers), channel=mesh)
            else:
                provider = factory(field, party, len(peers))
            engine = Engine(mesh, provider, **engine_kwargs)
            value = fn(engine, *args)
            results.put((party, "ok", value))
    except BaseException as exc:  # report every failure to the parent, then exit
        detail = str(exc) or traceback.format_exc(limit=3)
        results.put((party, "error", (type(exc).__name__, detail)))


def run_local(fn: Callable[..., Any], *, parties: int = 3, args: Sequence[Any] = (),
              provider_factory: ProviderFactory, modulus: int | None = None,
              timeout: float = 30.0, deadline: float = 600.0,
              engine_kwargs: dict | None = None,
              places: Sequence[tuple[str, int]] | None = None,
              prelude: Callable[[int], None] | None = None) -> list[Any]:
    """fn(engine, *args) in `parties` processes; returns their results in party order.

    `places[i]`: where party i listens (default: free ports on 127.0.0.1); `prelude(i)`
    runs first in party i's process (bench_wan moves it onto its own host there)."""
    field = Field() if modulus is None else Field(modulus)
    identities, peers = local.local_quorum(parties)
    if places is not None:
        peers = [PeerInfo(i, host, port, peers[i].public_key)
                 for i, (host, port) in enumerate(places)]
    session = os.urandom(16)
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_party_main, name=f"enigma-party-{i}", daemon=True,
                         args=(i, identities[i].private_bytes(), peers, session, fn,
                               tuple(args), provider_factory, field.p, engine_kwargs or {},
                               timeout, results, prelude))
             for i in range(parties)]
    for p in procs:
        p.start()
    outputs: dict[int, Any] = {}
    errors: dict[int, tuple[str, str]] = {}
    end = time.monotonic() + deadline
    try:
        while len(outputs) + len(errors) < parties:
            remaining = end - time.monotonic()
            if remaining <= 0:
                for i in range(parties):
                    if i not in outputs and i not in errors:
                        errors[i] = ("Timeout", f"no result within {deadline:.0f} s")
                break
            try:
                party, status, value = results.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                for i, p in enumerate(procs):
                    if (not p.is_alive() and i not in outputs and i not in errors
                            and results.empty()):
                        errors[i] = ("Crashed", f"process exited with code {p.exitcode}")
                continue
            if status == "ok":
                outputs[party] = value
            else:
                errors[party] = value
    finally:
        _reap(procs)
    if errors:
        raise PartyFailed(errors)
    return [outputs[i] for i in range(parties)]


def _reap(procs: list) -> None:
    """Wait a little for every party process, then kill what is left (a hung party)."""
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join()


# ---------------------------------------------------------------------------------- blame mode


@dataclass
class BlameRun:
    """A run in blame mode: what each party returned or raised, and every party's package.

    `verdict()` names the culprits of an aborted run (enigma.mpc.blame.identify); in a
    deployment the packages would go, sealed, to the job's owner, who runs the same function.
    """

    outputs: dict[int, Any]
    errors: dict[int, tuple[str, str]]
    packages: dict[int, Package]
    public_keys: list[bytes]
    program: Program

    @property
    def aborted(self) -> bool:
        return bool(self.errors)

    def verdict(self) -> Verdict:
        return identify(self.program, self.packages, self.public_keys)


def _blame_main(party: int, key: bytes, peers: list[PeerInfo], session: bytes, fn: Callable,
                args: tuple, factory: ProviderFactory, modulus: int, engine_kwargs: dict,
                timeout: float, faults: tuple[Fault, ...], insecure: bool,
                results: mp.Queue) -> None:
    try:
        field = Field(modulus)
        identity = Identity.from_private_bytes(key)
        with Mesh(party, identity, peers, session, timeout=timeout,
                  connect_timeout=max(timeout, 30.0)) as mesh:
            provider = factory(field, party, len(peers))
            mine = next((f for f in faults if f.party == party), None)
            if mine is not None and mine.kind in PROVIDER_KINDS:
                provider = FaultyProvider(provider, mine, insecure=insecure)
            wrap = None
            if mine is not None and mine.kind in CHANNEL_KINDS:
                def wrap(inner: Any, fault: Fault = mine) -> FaultyChannel:
                    return FaultyChannel(inner, fault, insecure=insecure)
            engine, signed = blame_mode(mesh, identity, [p.public_key for p in peers],
                                        provider, factory, wrap=wrap, **engine_kwargs)
            try:
                value = fn(engine, *args)
            except DroppedOut:
                results.put((party, "dropped", None, None))
                return
            except Exception as exc:  # the abort: sign why, hand over the package
                record = signed.abort(exc)
                results.put((party, "error", (type(exc).__name__, str(exc)[:500]),
                             signed.package(record)))
                return
            results.put((party, "ok", value, signed.package(None)))
    except BaseException as exc:
        results.put((party, "error", (type(exc).__name__, str(exc)[:500]), None))


def run_blamed(fn: Callable[..., Any], *, parties: int = 3, args: Sequence[Any] = (),
               provider_factory: ProviderFactory, fault: Fault | Sequence[Fault] | None = None,
               insecure: bool = False, modulus: int | None = None, timeout: float = 30.0,
               deadline: float = 600.0, engine_kwargs: dict | None = None) -> BlameRun:
    """fn(engine, *args) in `parties` processes in blame mode, optionally with faults.

    `fault` is one `Fault` or several (at most one per party: colluding cheaters).

    Unlike `run_local` it does not raise when parties fail: an abort is the expected outcome
    of a fault, and the caller wants the packages to find the culprit. A fault is refused
    unless `insecure=True` (enigma.mpc.faults).
    """
    faults = (fault,) if isinstance(fault, Fault) else tuple(fault or ())
    for f in faults:
        require_insecure(f, insecure)
    if len({f.party for f in faults}) != len(faults):
        raise ValueError("at most one fault per party")
    field = Field() if modulus is None else Field(modulus)
    identities, peers = local.local_quorum(parties)
    session = os.urandom(16)
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    kwargs = dict(engine_kwargs or {})
    procs = [ctx.Process(target=_blame_main, name=f"enigma-blame-{i}", daemon=True,
                         args=(i, identities[i].private_bytes(), peers, session, fn,
                               tuple(args), provider_factory, field.p, kwargs, timeout,
                               faults, insecure, results))
             for i in range(parties)]
    for p in procs:
        p.start()
    outputs: dict[int, Any] = {}
    errors: dict[int, tuple[str, str]] = {}
    packages: dict[int, Package] = {}
    seen: set[int] = set()
    end = time.monotonic() + deadline
    try:
        while len(seen) < parties and time.monotonic() < end:
            try:
                party, status, value, package = results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    break
                continue
            seen.add(party)
            if status == "ok":
                outputs[party] = value
            elif status == "dropped":
                errors[party] = ("DroppedOut", "left the computation")
            else:
                errors[party] = value
            if package is not None:
                packages[party] = package
    finally:
        _reap(procs)
    for i in range(parties):
        if i not in seen:
            errors[i] = ("NoResult", f"no result (exit code {procs[i].exitcode})")
    program = Program(fn, tuple(args), provider_factory, parties, field.p, kwargs)
    return BlameRun(outputs, errors, packages, [p.public_key for p in peers], program)
