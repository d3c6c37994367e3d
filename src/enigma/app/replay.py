"""A job replayed from its members' committed inputs: the owner's and anyone's check.

The owner replays a member in blame mode (`attempt.blame_attempt`); anyone checks a
published evidence file the same way (`verify_evidence_file`, used by the nodes that
vote on an accusation).
"""


from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from enigma.field import Field
from enigma.lang.budget import Budget
from enigma.lang.checker import check
from enigma.lang.release import Release
from enigma.lang.schema import Schema
from enigma.ledger import (
    Ledger,
    script_hash,
)
from enigma.mpc.blame import Program
from enigma.mpc.engine import Engine
from enigma.prep.dealer import DealerFactory
from enigma.prep.served import SliceFactory

from .culprits import bundle_release, verify_bundle
from .job_facts import (
    HE_DIGIT_BITS,
    JobError,
    MemberInputs,
    inputs_digest,
    result_commitment,
    result_meta,
)
from .member import compute

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ReplaySpec:
    """The public job (script, schema, the release it ran under) and the members'
    committed inputs, for a replay."""

    script: Any
    schema: Schema
    filename: str
    inputs: dict[int, MemberInputs]
    release: Release | None = None


def _replay_member(e: Engine, spec: _ReplaySpec) -> tuple[np.ndarray, np.ndarray, bytes]:
    """One member's run of a job, as the owner replays it: `compute` on its inputs; what
    its result commitment covers (sealed shares and public facts)."""
    mine = spec.inputs[e.party]
    out = compute(e, spec.script, spec.schema, dict(mine.shares), mine.point, mine.rows,
                  mine.key_share, spec.filename, budget=Budget.unlimited(),
                  release=spec.release)
    return (*out["sealed"], result_meta(out))


def verify_evidence_file(ledger: Ledger, bundle: bytes) -> tuple[str, str]:
    """Check an owner's published evidence file against the ledger, as anyone can
    (`culprits.verify_bundle`): returns (culprit address, verdict)."""

    def make_program(meta: Any, inputs: Any) -> Any:
        schema = Schema.from_dict(meta["schema"], "the evidence file")
        script = check(str(meta["script"]), schema, str(meta["filename"]))
        job = ledger.job(int(meta["job_id"]))
        if script_hash(str(meta["script"]).encode()) != job.script_hash:
            raise JobError("the evidence file's script is not the job's (script hash differs)")
        seed = meta.get("dealer_seed")
        return replay_program(script, schema, str(meta["filename"]), inputs,
                              bytes.fromhex(seed) if seed else None, len(job.quorum),
                              Field().p, bundle_release(meta, job))

    return verify_bundle(ledger, bundle, make_program, inputs_digest, result_commitment)


def replay_program(script: Any, schema: Schema, filename: str, inputs: Mapping[int, MemberInputs],
                   seed: bytes | None, parties: int, modulus: int,
                   release: Release | None = None) -> Any:
    """The public program a replay re-runs: the script on the members' committed inputs,
    under the `release` they ran under (its pass bits and noise come from the
    preprocessing's random bits, so they replay exactly), with the dealer of `seed`, or
    (on HE, `seed` None) the slices those members committed to, and the engine options
    their run used."""
    spec = _ReplaySpec(script, schema, filename, dict(inputs), release)
    if seed is not None:
        return Program(_replay_member, (spec,), DealerFactory(seed, insecure=True), parties,
                       modulus)
    return Program(_replay_member, (spec,), SliceFactory({p: m.prep for p, m in inputs.items()}),
                   parties, modulus, {"digit_bits": HE_DIGIT_BITS})


