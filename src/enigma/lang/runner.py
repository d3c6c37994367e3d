"""Run a checked script on an owner's table through q real processes, results to the owner only.

The flow is the one of a job, on one machine:

1. The owner reads its CSV with the schema and encodes the columns the
   script reads (integers, booleans and category codes as integers, fixed
   point as round(x 2^f)); it splits the table into q additive shares and
   picks its own output key k (`mpc.client`), also split into q shares.
2. Each node (a spawned process, `mpc.runner.run_local`) checks the script
   against the schema itself, inputs its additive shares (one input round
   per node, the key share riding along), and sums them into MAC'd secrets:
   no node ever holds a value of the table.
3. The nodes run the member program of a network job (`program.run_member`):
   the script on `MpcBackend`, every revealed value sealed for the owner
   (`client.seal_output`: [k x] next to [x], MAC check).
4. The owner decodes as after a network job (`program.decode_results`):
   recombine the sealed shares, check z = k x (a node that changed its share
   is caught), undo each scale, attach its error bound, check its range.

`run_local` hands every process the same arguments, so in this local run the
processes could read each other's shares; a node only ever touches its own
(`shares[e.party]`). In the network, each node receives its share encrypted
to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from enigma.field import Field
from enigma.mpc import client
from enigma.mpc.engine import Engine
from enigma.mpc.runner import ProviderFactory, run_local
from enigma.mpc.secret import Secret
from enigma.sharing import AuthShare, additive

from .checker import check
from .errors import ScriptError
from .interpreter import Outcome
from .plain import column_range, referenced_columns
from .program import decode_results, run_member
from .pvalues import finish
from .release import Release
from .results import labelled
from .schema import Schema
from .syntax import Script


class CountingProvider:
    """A preprocessing provider that counts what the online phase takes from it (for costs)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.field, self.party, self.parties = inner.field, inner.party, inner.parties
        self.counts = {"triples": 0, "input_masks": 0, "trunc_masks": 0, "digit_masks": 0,
                       "random_bits": 0}

    def mac_key_share(self) -> np.ndarray:
        return self.inner.mac_key_share()

    def triples(self, n: int):
        self.counts["triples"] += n
        return self.inner.triples(n)

    def input_masks(self, owner: int, n: int):
        self.counts["input_masks"] += n
        return self.inner.input_masks(owner, n)

    def random_bits(self, n: int):
        self.counts["random_bits"] += n
        return self.inner.random_bits(n)

    def trunc_masks(self, n: int, m: int, k: int):
        self.counts["trunc_masks"] += n
        return self.inner.trunc_masks(n, m, k)

    def digit_masks(self, n: int, m: int, k: int, digit_bits: int):
        self.counts["digit_masks"] += n
        return self.inner.digit_masks(n, m, k, digit_bits)


class CountingFactory:
    """Wraps a provider factory so that every party's provider counts (picklable)."""

    def __init__(self, inner: ProviderFactory) -> None:
        self.inner = inner
        self.needs_channel = getattr(inner, "needs_channel", False)

    def __call__(self, field: Field, party: int, parties: int, **kw) -> CountingProvider:
        return CountingProvider(self.inner(field, party, parties, **kw))


@dataclass
class Job:
    """What every node receives: the script, the schema, the public shape of the table."""

    source: str
    filename: str
    schema: dict
    rows: int
    private: list[tuple[str, tuple[int, float, float, bool]]]
    """Private columns in share order, with (fractional bits, lo, hi, integer-valued)."""
    public: dict[str, np.ndarray]
    shares: list[np.ndarray] = field(repr=False)
    """Node i's additive shares of the table (n x columns) followed by its share of the key."""
    release: Release | None = None
    """The job's release policy and ε (docs/disclosure.md); None releases every value."""


def encode_table(schema: Schema, values: dict[str, np.ndarray], names: list[str]
                 ) -> tuple[np.ndarray, list[tuple[str, tuple[int, float, float, bool]]],
                            dict[str, np.ndarray]]:
    """The owner's integer codes of the private columns (n, c), their metadata, public columns."""
    codes, meta, public = [], [], {}
    for name in names:
        col = schema.column(name)
        if not col.private:
            public[name] = np.asarray(col.encoding.to_integers(values[name]), dtype=np.float64)
            if col.kind == "fixed":
                public[name] = public[name] / float(1 << col.frac_bits)
            continue
        lo, hi = column_range(col)
        f = col.frac_bits if col.kind == "fixed" else 0
        codes.append(np.asarray(col.encoding.to_integers(values[name]), dtype=np.int64))
        meta.append((name, (f, lo, hi, col.kind != "fixed")))
    n = len(next(iter(values.values()))) if values else 0
    table = np.stack(codes, axis=1) if codes else np.zeros((n, 0), dtype=np.int64)
    return table, meta, public


def _node(e: Engine, job: Job) -> dict:
    """One node: check the script, input its shares, run, seal the results for the owner.

    A refusal (a script that could overflow, a function the engine does not run)
    comes from public information only, so every node refuses at the same
    point, before anything about it is opened; it goes back to the owner as is.
    """
    try:
        return _compute(e, job)
    except ScriptError as exc:
        return dict(refused=(exc.message, exc.line, exc.col, exc.explanation))


def _compute(e: Engine, job: Job) -> dict:
    script = check(job.source, Schema.from_dict(job.schema), job.filename)
    n, c = job.rows, len(job.private)
    size = n * c + 1
    mine = job.shares[e.party]
    total = None
    for member in range(e.parties):
        part = e.input(member, mine if member == e.party else None, size)
        total = part if total is None else total + part
    table = total[:n * c].reshape(n, c)
    columns = {}
    for j, (name, meta) in enumerate(job.private):
        col = table[:, j]
        columns[name] = (Secret(e, AuthShare(np.ascontiguousarray(col.share.value),
                                             np.ascontiguousarray(col.share.mac))), meta)
    key = total[n * c:]
    out = run_member(e, script, columns, job.public, n, key, job.filename,
                     release=job.release)
    out["stats"].update(getattr(e.provider, "counts", {}))
    return out


def run_mpc(source: str, schema: Schema, values: dict[str, np.ndarray], *,
            provider_factory: ProviderFactory, parties: int = 3, filename: str = "<script>",
            timeout: float = 60.0, deadline: float = 600.0,
            engine_kwargs: dict | None = None, quorum: Callable[..., list] = run_local,
            release: Release | None = None, script: Script | None = None) -> Outcome:
    """Run `source` on the owner's table `values` (as `Schema.read_csv` gives) in q processes.

    The script is checked here first (a refused script never reaches a node), unless the
    caller passes `script`, its own `check(source, schema, filename)` (the advice checks
    once and runs the result; every node still checks the source itself).
    Returns the owner's view: each revealed value with its error bound, and
    the public cost counters of node 0 in `Outcome.stats`. `quorum` runs the nodes:
    q processes (`run_local`), or q threads for a cost estimate (`simulation.thread_quorum`).
    """
    script = script if script is not None else check(source, schema, filename)
    names = referenced_columns(script)
    field = Field()
    table, meta, public = encode_table(schema, values, names)
    n = table.shape[0] if names else (schema.rows or 0)
    key, key_shares = client.owner_key_shares(field, parties)
    flat = field.from_int64(table.reshape(-1)) if table.size else np.zeros((0, 2), np.uint64)
    shares = additive.split(field, flat, parties)
    job = Job(source, filename, schema.to_dict(), n, meta, public,
              [np.concatenate([s, k.reshape(1, 2)]) for s, k in zip(shares, key_shares,
                                                                      strict=True)],
              release)
    outs = quorum(_node, parties=parties, args=(job,),
                     provider_factory=CountingFactory(provider_factory), timeout=timeout,
                     deadline=deadline, engine_kwargs=engine_kwargs)
    first = outs[0]
    if "refused" in first:
        raise ScriptError(*first["refused"], filename)
    results = decode_results(field, key, [o["sealed"] for o in outs], first)
    return Outcome(finish(script, labelled(script, results), n), first["printed"],
                   synthetic=False, stats=first["stats"])
