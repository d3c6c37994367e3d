"""The computation a job's member runs, from its stored Shamir shares to sealed results.

`authenticate` turns storage shares into MAC'd columns checked against the owner's tags;
`compute` then runs the member program of `lang.program`, the one `enigma script run`
runs too; `compute_map` and `compute_reduce` are the two halves of a split job. The
fault-injection helpers here change what a test node inputs or states, never in
production (`mpc.faults`).
"""


from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from enigma.field import Field
from enigma.lang.budget import Budget
from enigma.lang.disclosure import track
from enigma.lang.interpreter import run
from enigma.lang.mpc_backend import Fx, MpcBackend
from enigma.lang.plain import column_range
from enigma.lang.program import member_reply, run_member
from enigma.lang.reduction import (
    CHECK_NAME,
    SplitBackend,
    accept_handover,
    batch_statistics,
    handover_shares,
    input_sum,
    statistics_size,
)
from enigma.lang.release import Release, ReleasePolicy
from enigma.lang.schema import Schema
from enigma.mpc.engine import Engine
from enigma.mpc.faults import (
    INPUT_KINDS,
    Fault,
)
from enigma.mpc.inputs import check_tags
from enigma.mpc.secret import Secret, concat
from enigma.net.mesh import Mesh
from enigma.prep.served import Demand
from enigma.sharing import AuthShare, shamir, tags
from enigma.storage.commitment import (
    column_facts,
    describe,
    read_column_facts,
)

from .job_facts import META_FIELDS, JobError
from .service import ServiceError

log = logging.getLogger(__name__)


def agree_on_demand(mesh: Mesh, demand: Demand) -> None:
    """Every member must take the same amounts out of the stock, or the HE protocol falls
    out of step: broadcast the demand (public counts) and refuse on any difference."""
    mine = demand.encode()
    for peer, frames in mesh.broadcast(mine).items():
        if len(frames) != 1 or bytes(frames[0]) != mine:
            raise ServiceError("failed", f"member {peer} sized this job's preprocessing "
                                         "differently (its dry run disagrees with this one's)")


def _quorum_points(e: Engine, point: int) -> list[int]:
    """Every member's Shamir point (public), broadcast once; they must be distinct."""
    got = e.channel.broadcast(np.array([point], dtype=np.uint64))
    points = [point if j == e.party else int(np.frombuffer(got[j][0], np.uint64)[0])
              for j in range(e.parties)]
    if len(set(points)) != len(points):
        raise JobError(f"quorum members hold the same Shamir points {points}: they hold "
                       "shares of different generations; ask the owner to re-share")
    return points


def authenticate(e: Engine, schema: Schema, shares: dict[str, np.ndarray], point: int,
                 rows: int, key_share: np.ndarray, fault: Fault | None = None,
                 phases: dict[str, float] | None = None
                 ) -> tuple[dict[str, tuple[Secret, tuple[int, float, float, bool]]],
                            dict[str, np.ndarray], Secret]:
    """Storage shares to MAC'd columns, checked against the owner's tags; public columns
    opened; and the owner's output key [k].

    `shares` holds this member's Shamir shares of each column read and of its tags
    (`sharing.tags`); `key_share` its additive shares of the owner's output key k and of
    the dataset's tag key kappa, in that order.

    1. every member broadcasts its Shamir point (public); the quorum's points fix the
       Lagrange coefficients, and lambda_i s_i is this member's additive share of each
       value (any q >= t + 1 points of a degree-t polynomial give its constant);
    2. every member inputs its additive shares of values and tags and its key shares (one
       input round each, SPDZ input with a preprocessed mask); the sum over members is
       a MAC'd secret of the table: nobody ever holds a value of it;
    3. the tag check (`mpc.inputs.check_tags`): the values are the ones the owner stored,
       or every member aborts, before anything of them is opened;
    4. columns the schema calls public are opened (they are public by definition).
    """
    F = e.field
    points = _quorum_points(e, point)
    names = [c for c in shares if not tags.is_tag(c)]
    untagged = [c for c in names if tags.column(c) not in shares]
    if untagged or len(shares) != 2 * len(names):
        raise JobError(f"the stored shares of columns {untagged or list(shares)} come without "
                       "their tags (shared before inputs were authenticated?): share the "
                       "dataset again")
    order = names + [tags.column(c) for c in names]
    keys = np.asarray(key_share).reshape(-1, 2)
    if keys.shape[0] != 2:
        raise JobError(f"the owner sent {keys.shape[0]} key shares, the job needs 2 (output "
                       "key and tag key)")
    flat = np.concatenate([shamir.to_additive(F, shares[c], point, points) for c in order]
                          + [keys])
    m = len(names) * rows
    if fault is not None and fault.kind in INPUT_KINDS and fault.party == e.party:
        flat = _shift_input(F, flat, fault.kind, m)
    t0 = time.perf_counter()
    total = input_sum(e, flat)
    t1 = time.perf_counter()
    if names:
        check_tags(e, total[:m], total[m:2 * m], total[2 * m + 1:2 * m + 2])
    if phases is not None:  # what authentication costs: tags double the input
        phases["input"] = t1 - t0
        phases["tag_check"] = time.perf_counter() - t1
    columns: dict[str, tuple[Secret, tuple[int, float, float, bool]]] = {}
    public: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        col = schema.column(name)
        piece = total[j * rows:(j + 1) * rows]
        f = col.frac_bits if col.kind == "fixed" else 0
        if not col.private:
            value = F.to_int64(e.open(piece)[0]).astype(np.float64)
            public[name] = value / float(1 << f)
            continue
        lo, hi = column_range(col)
        columns[name] = (Secret(e, AuthShare(np.ascontiguousarray(piece.share.value),
                                             np.ascontiguousarray(piece.share.mac))),
                         (f, lo, hi, col.kind != "fixed"))
    return columns, public, total[2 * m:2 * m + 1]


def rewritten_store(F: Field, shares: dict[str, np.ndarray], stored: dict[str, Any]
               ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fault injection (STORE_KINDS): this member's share of the first value it reads is one
    more, as if its file had been rewritten after sealing with a matching header; what it
    says it stores follows the file, so only the ledger's commitment tells."""
    log.warning("FAULT INJECTION (stored-shift): this node's stored share was rewritten")
    column = next(iter(shares))
    changed = shares[column].copy()
    changed[0] = F.add(changed[0:1], F.const(1).reshape(1, 2))[0]
    index, rows, facts = stored["chunks"][0]
    digests = read_column_facts(facts)
    digests[column] = describe(np.ascontiguousarray(changed[:rows], dtype="<u8"))
    return ({**shares, column: changed},
            {**stored, "chunks": [[index, rows, column_facts(digests)],
                                  *stored["chunks"][1:]]})


def _shift_input(F: Field, flat: np.ndarray, kind: str, m: int) -> np.ndarray:
    """Fault injection (INPUT_KINDS): this member adds 1 to the first value, the first tag
    or its tag-key share that it inputs, after converting what it stored (signed, so a
    replay of its committed inputs shows the deviation)."""
    log.warning("FAULT INJECTION (%s): this node changes what it inputs from storage", kind)
    at = {"input-shift": 0, "tag-shift": m, "key-share-shift": 2 * m + 1}[kind]
    out = flat.copy()
    out[at] = F.add(out[at:at + 1], F.const(1).reshape(1, 2))[0]
    return out


def lying_release(release: Release | None) -> Release:
    """Fault injection (RELEASE_KINDS): the release this member runs under instead of the
    ledger's, as a node that wants more out of a job would: no cell suppressed (n_min 1,
    no dominance rule), the job's ε and δ kept."""
    log.warning("FAULT INJECTION (release-lie): this node runs under a looser release than "
                "the ledger's")
    if release is None:
        return Release(ReleasePolicy(n_min=1))
    loose = replace(release.policy, n_min=1, dominance_k=None, dominance_p=None)
    return Release(loose, release.epsilon, release.delta)


def lying_reply(out: dict[str, Any], kind: str) -> dict[str, Any]:
    """Fault injection (REPLY_KINDS): this member states other public facts of the result
    (the first scale one bit higher, or the first exact value plus one) and commits to
    them, as a node that wants the owner to decode a wrong number would."""
    log.warning("FAULT INJECTION (%s): this node lies about the result's public facts", kind)
    out = json.loads(json.dumps({k: out[k] for k in META_FIELDS})) | {
        k: v for k, v in out.items() if k not in META_FIELDS}
    if kind == "metadata-lie" and out["layout"]:
        out["layout"][0][2] += 1
    elif kind == "exact-lie" and out["exact"]:
        name = next(iter(out["exact"]))
        out["exact"][name] = (np.asarray(out["exact"][name]) + 1).tolist()
    return out


def compute(e: Engine, script: Any, schema: Schema, shares: dict[str, np.ndarray], point: int,
            rows: int, key_share: np.ndarray, filename: str, fault: Fault | None = None,
            phases: dict[str, float] | None = None, budget: Budget | None = None,
            release: Release | None = None) -> dict[str, Any]:
    """One member's part of a job on one quorum, from storage shares to sealed result shares.

    `authenticate` (storage shares -> MAC'd columns and [k]), then the script runs on
    `MpcBackend`; revealed values are sealed under the owner's key after the quorum's
    MAC check (`mpc.client.seal_output`). Under a `release` (the dataset's policy and the
    job's ε, as the ledger has them: `disclosure.member_release`) a cell that fails the
    policy is never sealed, and released values are noised (docs/disclosure.md).
    """
    columns, public, key = authenticate(e, schema, shares, point, rows, key_share, fault,
                                        phases)
    return run_member(e, script, columns, public, rows, key, filename, budget, release)


class ChunkExchange:
    """A chunk member's side of `lang.reduction.Exchange`: hands batches of its quorum's
    statistics to the reducers (as parts of (P, k P)) and takes the centroids they re-share.

    `send(batch, p, z, layout)` splits and sends this member's shares (returns the parts
    sent, for the commitment); `wait(batch)` returns the sum of the reducers' parts of
    re-share `batch`.
    """

    def __init__(self, send: Callable[[int, np.ndarray, np.ndarray, list[dict[str, Any]]],
                                      list[np.ndarray]],
                 wait: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> None:
        self._send, self._wait = send, wait
        self.e: Engine | None = None
        self.key: Secret | None = None
        self.batch = 0
        self.sent: list[np.ndarray] = []

    def bind(self, e: Engine, key: Secret) -> None:
        self.e, self.key = e, key

    def handover(self, partials: list[Secret], layout: list[dict[str, Any]]) -> None:
        """[Z] = [k][P], the MAC check, then this member's shares leave for the reducers."""
        assert self.e is not None and self.key is not None
        p = concat([s.reshape(s.size) for s in partials])
        ps, zs = handover_shares(self.e, p, self.key)
        self.sent += self._send(self.batch, ps, zs, list(layout))
        self.batch += 1

    def receive(self, shape: tuple[int, ...]) -> Secret:
        assert self.e is not None and self.key is not None
        c, z = self._wait(self.batch - 1)
        size = int(np.prod(shape))
        if c.shape[0] != size:
            raise JobError(f"the reducers re-shared {c.shape[0]} values, the script needs "
                           f"{size}")
        return accept_handover(self.e, c, z, self.key, shape)

    def next_batch(self) -> tuple[list[Secret], list[dict[str, Any]]]:
        raise JobError("a chunk quorum takes no partials")

    def reshare(self, value: Secret) -> None:
        raise JobError("a chunk quorum re-shares nothing")


class ReduceExchange:
    """A reducing member's side of `lang.reduction.Exchange`: takes later batches of the
    chunk quorums' partials (each re-authenticated and k-checked like the first) and
    re-shares secrets (the k-means centroids) to every chunk quorum."""

    def __init__(self, fetch: Callable[[int], tuple[tuple[np.ndarray, np.ndarray],
                                                    list[dict[str, Any]], int]],
                 send: Callable[[int, np.ndarray, np.ndarray], None]) -> None:
        self._fetch, self._send = fetch, send
        self.e: Engine | None = None
        self.key: Secret | None = None
        self.mpc: MpcBackend | None = None
        self.batch = 0

    def bind(self, e: Engine, key: Secret, mpc: MpcBackend) -> None:
        self.e, self.key, self.mpc = e, key, mpc

    def handover(self, partials: list[Secret], layout: list[dict[str, Any]]) -> None:
        raise JobError("a reducing quorum hands nothing over")

    def receive(self, shape: tuple[int, ...]) -> Secret:
        raise JobError("a reducing quorum receives no re-share")

    def next_batch(self) -> tuple[list[Secret], list[dict[str, Any]]]:
        assert self.e is not None and self.key is not None and self.mpc is not None
        self.batch += 1
        (p, z), layout, _ = self._fetch(self.batch)
        cm = p.shape[0]
        total = input_sum(self.e, np.concatenate([p, z]))
        return _reduce_batch(self.e, self.mpc, total[:cm], total[cm:], self.key, layout,
                             f"{CHECK_NAME}{self.batch}"), layout

    def reshare(self, value: Secret) -> None:
        """(c, k c) after the MAC check, split to every chunk quorum (`_send_reshare`)."""
        assert self.e is not None and self.key is not None
        c, z = handover_shares(self.e, value, self.key)
        self._send(self.batch, c, z)


def _reduce_batch(e: Engine, mpc: MpcBackend, P: Secret, Z: Secret, key: Secret,
                  layout: list[dict[str, Any]], name: str) -> list[Secret]:
    """One batch of re-authenticated partials: seal [k][P_c] - [Z_c] for the owner under
    `name` (never opened to the nodes) and return the statistics of each aggregate."""
    cm = P.shape[0]
    check_vector = e.mul(key.reshape(1).broadcast_to(cm), P) - Z
    m = sum(statistics_size(layout))
    if m == 0 or cm % m:
        raise JobError(f"the partials hold {cm} values, their layout {m} per chunk job")
    mpc.reveals.append((name, Fx(mpc, [check_vector], 0, 0.0, 0.0, 0.0, True, (cm,))))
    return batch_statistics(P.reshape(cm // m, m), layout)


def compute_map(e: Engine, script: Any, schema: Schema, shares: dict[str, np.ndarray],
                point: int, rows: int, key_share: np.ndarray, filename: str, total_rows: int,
                exchange: ChunkExchange, phases: dict[str, float] | None = None,
                budget: Budget | None = None, release: Release | None = None
                ) -> dict[str, Any]:
    """A chunk quorum member's part: exact partial aggregates P of its chunks, and [k P].

    1. `authenticate` the chunk's columns and the owner's key [k], as a whole job does;
    2. run the script on `SplitBackend("map")`: every aggregate of rows becomes its exact
       statistics (counts, sums of centred codes, sums of squares), nothing is revealed;
    3. hand the statistics over (`ChunkExchange.handover`): [Z] = [k][P] (one round) and
       the quorum's MAC check of everything opened, so P and Z leave the quorum only if no
       member deviated inside it; then this member's shares are split to the reducers.
       An iterative aggregate (k-means) hands over once per iteration and receives the
       reducers' centroids in between; what is left at the end goes as the last batch.
    Z is what makes the hand-over checkable: a member that adds d to its share of P must
    add k d to its share of Z without knowing k (see docs/reduction.md).
    Under a release policy (`release`) the run is tracked as on one quorum: the row counts
    its rules need are more statistics (docs/disclosure.md, "Split runs").
    """
    phases = {} if phases is None else phases
    t0 = time.perf_counter()
    columns, public, key = authenticate(e, schema, shares, point, rows, key_share,
                                        phases=phases)
    t1 = time.perf_counter()
    phases["authenticate"] = t1 - t0
    exchange.bind(e, key)
    mpc = MpcBackend(e, columns, public, rows, key, filename)
    split = SplitBackend("map", schema, script, total_rows, mpc=mpc, exchange=exchange)
    run(script, track(split, release), budget=budget)
    if split.partials:
        exchange.handover(split.partials, split.layout)
    phases["aggregate"] = time.perf_counter() - t1 - phases.get("send_partials", 0.0) - \
        phases.get("wait_reshare", 0.0)
    stats = dict(rounds=e.stats.rounds, bytes_sent=e.stats.bytes_sent, opened=e.stats.opened,
                 triples=e.stats.triples, mac_checks=e.stats.mac_checks)
    return {"stats": stats}


def compute_reduce(e: Engine, script: Any, schema: Schema,
                   parts: tuple[np.ndarray, np.ndarray], key_share: np.ndarray,
                   layout: list[dict[str, Any]], rows: int, filename: str,
                   exchange: ReduceExchange | None = None, budget: Budget | None = None,
                   release: Release | None = None) -> dict[str, Any]:
    """A reducing member's part: authenticate the summed partials, finish the script, seal.

    1. every member inputs, per chunk job, the sum of the parts it received (p_j, z_j)
       and its share of the owner's key (SPDZ input): [P_c], [Z_c] = k P_c, [k], all
       MAC'd under this quorum's key; additive statistics are summed over chunks (local),
       min/max keep one value per chunk;
    2. [C] = [k][P_c] - [Z_c] for every chunk, zero unless some partial changed on its
       way here; it is sealed for the owner with the results (`CHECK_NAME`), never
       opened to the nodes;
    3. the script runs on `SplitBackend("reduce")`, whose aggregates finish from [P];
       under `release`, tracked: the pass bits are opened and the noise drawn here.
       An iterative script takes later batches through `exchange` (each re-authenticated
       and sealed with its own check vector) and re-shares its centroids through it.
    """
    p, z = parts
    cm = p.shape[0]
    total = input_sum(e, np.concatenate([p, z, key_share.reshape(1, 2)]))
    P, Z, key = total[:cm], total[cm:2 * cm], total[2 * cm:]
    mpc = MpcBackend(e, {}, {}, rows, key, filename)
    stats = _reduce_batch(e, mpc, P, Z, key, layout, CHECK_NAME)
    if exchange is not None:
        exchange.bind(e, key, mpc)
    split = SplitBackend("reduce", schema, script, rows, mpc=mpc, stats=stats, layout=layout,
                         exchange=exchange)
    outcome = run(script, track(split, release), budget=budget)
    return member_reply(e, mpc, outcome.printed)
