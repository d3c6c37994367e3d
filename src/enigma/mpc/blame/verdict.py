"""The verdict after an abort: who is named, on what grounds.

A deviation is proved (evidence.py). A party that stops (drop-out, stall) deviates in time,
not in content: nothing it signed is wrong. It is named `absent` from the signed abort
records of the parties that waited for it, unless its own replay shows it was itself
waiting: an attestation, not a proof. Only when nobody deviated or stopped are parties that
revealed no valid material named `withheld`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from enigma.net.errors import AuthenticationError

from .evidence import prove
from .records import ABSENCE, AbortRecord, Package
from .replay import Program, replay


@dataclass
class Verdict:
    """Who is named and why: `culprits[p]` is `deviation` (proved: `evidence[p]` checks with
    public keys), `absent` (attested by the signed abort records in `attested[p]`) or
    `withheld` (revealed no valid material after a failed check while all others replayed
    clean)."""

    culprits: dict[int, str]
    evidence: dict[int, bytes]
    attested: dict[int, list[AbortRecord]]
    notes: list[str]


def identify(program: Program, packages: Mapping[int, Package],
             public_keys: Sequence[bytes]) -> Verdict:
    """Name the culprits of an aborted run from the parties' packages.

    1. Every party with a package is replayed against what it signed: a deviation is proved
       (evidence). 2. Only if nobody deviated: parties that others' signed abort records name
       as timed out or disconnected are `absent`, unless their own replay shows they were
       waiting for someone else before the awaited message. 3. If still nobody is named,
       parties without a valid package are `withheld`. An honest party's replay reproduces its
       messages, and it always sends what it can, so steps 1 and 2 never name it.
    """
    verdict = Verdict({}, {}, {}, [])
    for p in range(program.parties):
        if p in packages:
            ev = prove(program, packages, public_keys, p)
            if ev is not None:
                verdict.culprits[p] = "deviation"
                verdict.evidence[p] = ev
    if verdict.culprits:
        return verdict
    records: dict[int, list[AbortRecord]] = {}
    for pkg in packages.values():
        rec = pkg.abort
        if rec is None or rec.party != pkg.party or rec.reason not in ABSENCE:
            continue
        try:
            rec.verify(public_keys[pkg.party])
        except AuthenticationError:
            continue
        records.setdefault(rec.peer, []).append(rec)
    for accused, recs in sorted(records.items()):
        if not _excused(program, packages.get(accused), recs):
            verdict.culprits[accused] = "absent"
            verdict.attested[accused] = recs
    if verdict.culprits:
        return verdict
    for p in range(program.parties):
        if not _opens(p, packages):
            verdict.culprits[p] = "withheld"
    if not verdict.culprits:
        verdict.notes.append("no party deviated, stopped or withheld: nothing to blame")
    return verdict


def _opens(party: int, packages: Mapping[int, Package]) -> bool:
    """Did `party` reveal material that opens the commitment it sent first (as peers got it)?"""
    pkg = packages.get(party)
    if pkg is None or pkg.material.party != party:
        return False
    want = (pkg.material.commitment(),)
    seen = [q.received[party][0] for q in packages.values()
            if q.party != party and q.received.get(party)]
    if not seen:
        seen = [msgs[0] for msgs in pkg.sent.values() if msgs]
    return bool(seen) and all(m == want for m in seen)


def _excused(program: Program, pkg: Package | None, recs: list[AbortRecord]) -> bool:
    """Was the accused itself waiting before every message the accusers waited for?"""
    if pkg is None:
        return False
    out = replay(program, pkg.material, pkg.received, None)
    if out.status == "bad-material":
        return False
    return all(out.produced.get(r.party, 0) <= r.index for r in recs)

