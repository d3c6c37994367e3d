"""The ledger's records as Python values: what the contracts store, typed.

The contracts' getters return tuples; the client (client.py) turns them into these frozen
dataclasses and enums, so that code above the ledger reads fields by name and compares
statuses by member, and a change in a contract's struct shows up in one place. `Deployment`
and `LedgerParams` are the records of a deployment itself: where the contracts live and the
economic parameters fixed when they were deployed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from pathlib import Path
from typing import Any

from enigma.files import write_atomic

from .errors import LedgerError


class Policy(IntEnum):
    """Who may post a job on a dataset (the owner always may)."""

    OWNER_ONLY = 0
    ALLOW_LIST = 1
    OPEN = 2


class JobStatus(IntEnum):
    OPEN = 1
    ACCEPTED = 2
    TIMED_OUT = 3
    ABORTED = 4
    CANCELLED = 5


class AccusationStatus(IntEnum):
    PENDING = 1
    GUILTY = 2
    ACQUITTED = 3



PROOF_SIGNED = 1  # the first proof type: an accusation signed by the owner or the quorum

FIXED = 10**18
"""ε, δ and the dominance percentage are integers × 10^18 on chain (datasets.vy `FIXED`):
the EVM has no floats, and 18 decimals hold any δ a person would choose."""


def to_fixed(value: float, what: str) -> int:
    """`value` as the chain's fixed-point integer, exactly (through its decimal text, so
    0.1 + 0.2 on chain is 0.3); a value finer than 10^-18 is refused, not rounded."""
    try:
        scaled = Decimal(repr(float(value))) * FIXED
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ValueError(f"{what} must be a number, not {value!r}") from exc
    if not scaled.is_finite() or scaled < 0:
        raise ValueError(f"{what} must be a finite number ≥ 0, not {value!r}")
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{what} {value!r} is finer than the ledger's resolution of 1e-18")
    return int(scaled)


def from_fixed(raw: int) -> float:
    """The chain's fixed-point integer as a float (for display and for the run)."""
    return float(Decimal(raw) / FIXED)


@dataclass(frozen=True)
class LedgerParams:
    """Economic parameters fixed at deployment; the defaults suit a local network."""

    min_deposit: int = 10**18
    unbonding_period: int = 7 * 24 * 3600
    storage_price: int = 1_000  # wei per holder per second
    price_per_round: int = 10**12
    price_per_multiplication: int = 10**6
    job_timeout: int = 3600
    challenge_period: int = 3600
    """Seconds (block time) the accused has to dispute an accusation; then it slashes."""
    voting_period: int = 3600
    """Seconds (block time) a disputed accusation's committee has to vote."""
    accusation_bond: int = 10**17
    """Wei an accuser locks; an acquitted node gets it (less the jurors' tenth)."""
    committee_size: int = 5
    """Nodes drawn to judge a dispute (fewer if fewer uninvolved nodes are active)."""


@dataclass(frozen=True)
class Deployment:
    """Where the three contracts live; saved as JSON so other processes can find them."""

    chain_id: int
    registry: str
    datasets: str
    jobs: str

    def save(self, path: Path) -> None:
        write_atomic(path, [(json.dumps(asdict(self), indent=1) + "\n").encode()])

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            raw = json.loads(path.read_text())
            return cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise LedgerError(
                f"cannot read the deployment file {path}: {exc}; "
                "run `enigma ledger deploy` to write one"
            ) from exc


@dataclass(frozen=True)
class NodeInfo:
    address: str
    endpoint: str
    transport_key: bytes
    deposit: int
    registered: bool
    active: bool
    slashed: bool
    open_jobs: int
    unbond_at: int


@dataclass(frozen=True)
class DatasetInfo:
    dataset_id: int
    owner: str
    schema_hash: bytes
    dht_key: bytes
    expires_at: int
    policy: Policy
    holders: list[str]
    commitments: list[bytes]


@dataclass(frozen=True)
class JobInfo:
    job_id: int
    dataset_id: int
    owner: str
    poster: str
    script_hash: bytes
    author: str
    escrow: int
    reward: int
    rounds: int
    multiplications: int
    quorum: list[str]
    seed: bytes
    deadline: int
    status: JobStatus
    commits: int
    epsilon: int = 0
    """The ε this job spends of its dataset's budget, × 10^18 (0: none)."""
    delta: int = 0
    started: bool = False
    """A member began computing (`jobs.start`): the spend is final."""
    recipient: bytes = bytes(32)
    """The poster's X25519 key for released results (all zero: the owner's alone)."""


@dataclass(frozen=True)
class ReleaseRecord:
    """A dataset's release policy on the ledger and its privacy budget's account.

    Fixed-point fields (× 10^18, `FIXED`) as the contract keeps them (`n_min` 0: no
    policy is set). The app turns it into the language layer's `ReleasePolicy`, which the
    run enforces (`app.disclosure.policy_of`); the ledger only carries it."""

    dataset_id: int
    n_min: int
    dominance_k: int
    dominance_p: int
    epsilon_budget: int
    delta_budget: int
    epsilon_spent: int
    delta_spent: int

    @property
    def private(self) -> bool:
        """True when jobs on the dataset spend ε (differential privacy is on)."""
        return self.epsilon_budget > 0

    @property
    def epsilon_left(self) -> int:
        return self.epsilon_budget - self.epsilon_spent

    @property
    def delta_left(self) -> int:
        return self.delta_budget - self.delta_spent

    @property
    def is_set(self) -> bool:
        return self.n_min > 0

    def budget(self) -> dict[str, Any]:
        """Total, spent and left, in ε and δ (what `enigma dataset budget` prints)."""
        return {"private": self.private,
                "epsilon": {"total": from_fixed(self.epsilon_budget),
                            "spent": from_fixed(self.epsilon_spent),
                            "left": from_fixed(self.epsilon_left)},
                "delta": {"total": from_fixed(self.delta_budget),
                          "spent": from_fixed(self.delta_spent),
                          "left": from_fixed(self.delta_left)}}


@dataclass(frozen=True)
class AccusationInfo:
    """A signed accusation and where its challenge stands (jobs.vy `Accusation`)."""

    accusation_id: int
    job_id: int
    culprit: str
    accuser: str
    evidence_hash: bytes
    bond: int
    seed: bytes
    deadline: int
    """Until then (block time) the culprit may dispute; then, undisputed, it is guilty."""
    disputed: bool
    committee: list[str]
    voting_deadline: int
    guilty_votes: int
    innocent_votes: int
    status: AccusationStatus

    def finalizable(self, now: int) -> bool:
        """Would `finalize` pass at block time `now` (the contract's rule, read off chain)?"""
        if self.status is not AccusationStatus.PENDING:
            return False
        if not self.disputed:
            return now >= self.deadline
        votes = self.guilty_votes + self.innocent_votes
        return now >= self.voting_deadline or votes == len(self.committee)


@dataclass(frozen=True)
class CommitInfo:
    commitment: bytes
    pointer: bytes
    rounds: int
    multiplications: int
