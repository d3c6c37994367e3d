"""A dataset's release policy as the app uses it (docs/disclosure.md, "On the ledger").

The policy and its privacy budget live on the ledger (datasets.vy), so that nobody's word
but the chain's decides what a job may let out: the owner's and the analyst's tools check
a job's ε against what is left *before* anything is posted or run (`job_spend`), the
contract refuses an overrun anyway, and every member reads the policy and the job's ε
from the ledger itself when it starts the job (`member_release`), never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enigma.lang.release import PolicyError, Release, ReleasePolicy
from enigma.ledger import JobInfo, Ledger, ReleaseRecord
from enigma.ledger.records import from_fixed, to_fixed

from .job_facts import JobError


def policy_of(record: ReleaseRecord) -> ReleasePolicy | None:
    """The ledger's record as the policy the run enforces (None: the owner set none)."""
    if not record.is_set:
        return None
    return ReleasePolicy(
        n_min=record.n_min,
        dominance_k=record.dominance_k or None,
        dominance_p=from_fixed(record.dominance_p) if record.dominance_k else None,
        epsilon_budget=from_fixed(record.epsilon_budget) if record.private else None,
        delta_budget=from_fixed(record.delta_budget))


def set_release(ledger: Ledger, dataset_id: int, policy: ReleasePolicy) -> ReleaseRecord:
    """Put `policy` on the ledger as the dataset's (owner only; once set, only tighter)."""
    try:
        return ledger.set_release(dataset_id, policy.n_min, policy.dominance_k or 0,
                                  policy.dominance_p or 0.0, policy.epsilon_budget or 0.0,
                                  policy.delta_budget)
    except ValueError as exc:  # a value finer than the ledger's fixed point
        raise PolicyError(str(exc)) from exc


@dataclass(frozen=True)
class Spend:
    """The privacy a job spends of its dataset's budget (0 and 0: the dataset has none)."""

    epsilon: float = 0.0
    delta: float = 0.0


def _fixed(value: float, what: str) -> int:
    """`value` in the ledger's fixed point, or a JobError naming `what` is wrong with it."""
    try:
        return to_fixed(value, what)
    except ValueError as exc:
        raise JobError(str(exc)) from exc


def job_spend(record: ReleaseRecord, name: str, epsilon: float | None,
              delta: float = 0.0) -> Spend:
    """Check a job's ε and δ against the dataset's budget on the ledger (`record`, read
    just now with `Ledger.release`), before posting.

    On a differentially private dataset ε is required and must fit in what is left; on
    any other dataset a job spends nothing and giving ε is a mistake worth saying. The
    contract makes the same checks (and is what counts); this says why in one line before
    a fee is paid or a member is asked.
    """
    if not record.private:
        if epsilon or delta:
            raise JobError(f"dataset {name} has no ε budget (no differential privacy): "
                           "a job on it spends no ε; drop --epsilon/--delta")
        return Spend()
    if epsilon is None:
        raise JobError(f"dataset {name} is differentially private: say the ε this job "
                       f"spends (--epsilon); ε {from_fixed(record.epsilon_left):g} of "
                       f"{from_fixed(record.epsilon_budget):g} is left")
    ask, ask_delta = _fixed(epsilon, "the job's ε"), _fixed(delta, "the job's δ")
    if ask <= 0:
        raise JobError(f"a job's ε must be a positive number, not {epsilon!r}")
    if ask > record.epsilon_left:
        raise JobError(f"dataset {name} has ε {from_fixed(record.epsilon_left):g} left; "
                       f"this job asks {epsilon:g}")
    if ask_delta > record.delta_left:
        raise JobError(f"dataset {name} has δ {from_fixed(record.delta_left):g} left; "
                       f"this job asks {delta:g}")
    return Spend(epsilon, delta)


def posted_spend(job: JobInfo, epsilon: float | None, delta: float = 0.0) -> Spend:
    """A posted job's spend is the one on its record: a different ε stated here is refused
    (the analyst paid for that job, and members enforce the record anyway)."""
    spend = Spend(from_fixed(job.epsilon), from_fixed(job.delta))
    if epsilon is not None and _fixed(epsilon, "the job's ε") != job.epsilon:
        raise JobError(f"posted job {job.job_id} spends ε {spend.epsilon:g} on the ledger, "
                       f"not {epsilon:g}")
    if delta and _fixed(delta, "the job's δ") != job.delta:
        raise JobError(f"posted job {job.job_id} spends δ {spend.delta:g} on the ledger, "
                       f"not {delta:g}")
    return spend


def member_release(record: ReleaseRecord, job: JobInfo) -> Release | None:
    """What a member enforces in a job: the dataset's policy and the job's ε, both as the
    ledger has them (None: the dataset has no release policy, results go out as they
    are). A record that does not fit the policy (no ε on a private dataset) is refused."""
    policy = policy_of(record)
    if policy is None:
        return None
    try:
        return Release(policy, from_fixed(job.epsilon) if policy.private else None,
                       from_fixed(job.delta))
    except PolicyError as exc:
        raise JobError(f"job {job.job_id}: {exc}") from exc


def policy_json(name: str, record: ReleaseRecord) -> dict[str, Any]:
    """`enigma dataset release NAME --json`: the policy as the ledger holds it."""
    policy = policy_of(record)
    return {"dataset": name, "ledger_id": record.dataset_id,
            "policy": None if policy is None else policy.as_dict(),
            "budget": record.budget() if record.private else None}


def policy_text(name: str, record: ReleaseRecord) -> list[str]:
    """The same in lines a person reads."""
    policy = policy_of(record)
    if policy is None:
        return [f"dataset {name} (ledger dataset {record.dataset_id}): no release policy; "
                "results go to the owner alone, as computed"]
    lines = [f"dataset {name} (ledger dataset {record.dataset_id}): release policy",
             f"  n_min      {policy.n_min} (smaller cells are suppressed)"]
    lines.append(f"  dominance  k={policy.dominance_k}, p={policy.dominance_p:g} %"
                 if policy.dominance_k else "  dominance  off")
    lines.extend(budget_text(record) if record.private
                 else ["  privacy    off (no ε budget)"])
    return lines


def budget_text(record: ReleaseRecord) -> list[str]:
    """`enigma dataset budget NAME`: total, spent and left, for ε and δ."""
    b = record.budget()
    return [f"  {sym:<10} total {b[key]['total']:g}, spent {b[key]['spent']:g}, "
            f"left {b[key]['left']:g}" for sym, key in (("ε", "epsilon"), ("δ", "delta"))]
