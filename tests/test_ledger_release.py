"""A dataset's release policy and privacy budget on the ledger (datasets.vy, jobs.vy).

Only the owner sets the policy; once set it only tightens; each job's ε and δ are booked
at post_job, a job that would overrun the budget reverts, and a job closed before any
member started it gives its spend back (one that started never does). Runs on the
embedded chain; each test is rolled back afterwards (evm_snapshot/evm_revert).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enigma.app.disclosure import policy_of, set_release
from enigma.lang.release import ReleasePolicy
from enigma.ledger import JobStatus, Ledger, errors, start_devchain
from enigma.ledger.devchain import advance_time
from enigma.ledger.records import FIXED, from_fixed, to_fixed

from .test_ledger_contracts import PARAMS, Chain, World, books_balance, make_world

DP = ReleasePolicy(n_min=5, dominance_k=2, dominance_p=80.0, epsilon_budget=1.0,
                   delta_budget=1e-6)


@pytest.fixture(scope="module")
def base_world() -> Iterator[World]:
    with start_devchain() as server:
        yield make_world(Chain("eth-tester", server.url, server.accounts))


def _snapshot(lg: Ledger) -> str:
    return str(lg.w3.provider.make_request("evm_snapshot", [])["result"])  # type: ignore[arg-type]


def _revert(lg: Ledger, snapshot: str) -> None:
    reverted = lg.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    assert "error" not in reverted, reverted


@pytest.fixture
def world(base_world: World) -> Iterator[World]:
    snapshot = _snapshot(base_world.admin)
    yield base_world
    _revert(base_world.admin, snapshot)


def post(w: World, epsilon: float = 0.0, delta: float = 0.0, poster: Ledger | None = None
         ) -> int:
    digest, sig = w.signed_script()
    return (poster or w.owner).post_job(w.dataset_id, digest, w.author.address, sig, 2, 3, 50,
                                        epsilon=epsilon, delta=delta).job_id


def events(w: World, name: str) -> list[dict]:
    return [args for n, args in w.admin.events() if n == name]


def test_fixed_point_is_exact_and_refuses_what_it_cannot_hold() -> None:
    assert to_fixed(0.1, "ε") + to_fixed(0.2, "ε") == to_fixed(0.3, "ε") == 3 * FIXED // 10
    assert to_fixed(1e-18, "δ") == 1 and from_fixed(to_fixed(0.25, "ε")) == 0.25
    with pytest.raises(ValueError, match="finer than the ledger's resolution"):
        to_fixed(1e-19, "the δ budget")
    with pytest.raises(ValueError, match="finite number"):
        to_fixed(float("nan"), "the job's ε")


def test_only_the_owner_sets_a_release_policy_and_it_is_logged(world: World) -> None:
    assert policy_of(world.admin.release(world.dataset_id)) is None
    with pytest.raises(errors.NotOwner, match=r"datasets\.set_release"):
        set_release(world.outsider, world.dataset_id, DP)
    with pytest.raises(errors.UnknownDataset):
        set_release(world.owner, 99, DP)
    record = set_release(world.owner, world.dataset_id, DP)
    assert policy_of(record) == DP and record.epsilon_spent == 0
    assert policy_of(world.outsider.release(world.dataset_id)) == DP  # public: anyone reads
    (logged,) = events(world, "ReleaseSet")
    assert (logged["dataset_id"], logged["n_min"], logged["dominance_k"]) == (
        world.dataset_id, 5, 2)
    assert (logged["dominance_p"], logged["epsilon_budget"], logged["delta_budget"]) == (
        80 * FIXED, FIXED, 10**12)


def test_a_policy_only_tightens(world: World) -> None:
    owner, ds = world.owner, world.dataset_id
    set_release(owner, ds, ReleasePolicy(n_min=5))
    set_release(owner, ds, ReleasePolicy(n_min=5, epsilon_budget=2.0))  # DP on: tighter
    looser = [
        (ReleasePolicy(n_min=4, epsilon_budget=2.0), "n_min can only be raised"),
        (ReleasePolicy(n_min=5, epsilon_budget=2.5), "never be raised or removed"),
        (ReleasePolicy(n_min=5), "never be raised or removed"),
        (ReleasePolicy(n_min=5, epsilon_budget=2.0, delta_budget=1e-9), "delta budget can never"),
    ]
    for policy, why in looser:
        with pytest.raises(errors.Loosening, match=why):
            set_release(owner, ds, policy)
    set_release(owner, ds, ReleasePolicy(n_min=7, dominance_k=2, dominance_p=90.0,
                                        epsilon_budget=1.5))
    for policy in (ReleasePolicy(n_min=7, dominance_k=1, dominance_p=90.0, epsilon_budget=1.5),
                   ReleasePolicy(n_min=7, dominance_k=2, dominance_p=95.0, epsilon_budget=1.5),
                   ReleasePolicy(n_min=7, epsilon_budget=1.5)):
        with pytest.raises(errors.Loosening, match="dominance rule can only tighten"):
            set_release(owner, ds, policy)
    final = ReleasePolicy(n_min=9, dominance_k=3, dominance_p=70.0, epsilon_budget=0.5)
    assert policy_of(set_release(owner, ds, final)) == final
    assert len(events(world, "ReleaseSet")) == 4


def test_the_budget_books_jobs_and_refuses_an_overrun(world: World) -> None:
    set_release(world.owner, world.dataset_id, DP)
    first, second = post(world, 0.3), post(world, 0.3, 4e-7)
    assert world.admin.job(second).epsilon == to_fixed(0.3, "ε")
    record = world.admin.release(world.dataset_id)
    assert record.budget()["epsilon"] == {"total": 1.0, "spent": 0.6, "left": 0.4}
    assert record.delta_spent == to_fixed(4e-7, "δ")
    with pytest.raises(errors.BudgetExceeded, match="more epsilon than the dataset has left"):
        post(world, 0.5)
    with pytest.raises(errors.BudgetExceeded, match="more delta"):
        post(world, 0.1, 7e-7)
    with pytest.raises(errors.EpsilonMissing):
        post(world)
    last = post(world, 0.4)  # exactly what is left
    assert world.admin.release(world.dataset_id).epsilon_left == 0
    spent = events(world, "BudgetSpent")
    assert [(e["job_id"], e["epsilon"]) for e in spent] == [
        (first, to_fixed(0.3, "ε")), (second, to_fixed(0.3, "ε")), (last, to_fixed(0.4, "ε"))]
    assert spent[-1]["epsilon_spent"] == FIXED
    # the budget may shrink to what was spent, never below
    set_release(world.owner, world.dataset_id, DP)
    with pytest.raises(errors.Loosening, match="below what jobs spent"):
        set_release(world.owner, world.dataset_id, ReleasePolicy(
            n_min=5, dominance_k=2, dominance_p=80.0, epsilon_budget=0.9, delta_budget=1e-6))


def test_a_dataset_without_an_epsilon_budget_takes_no_spend(world: World) -> None:
    with pytest.raises(errors.NotPrivate):
        post(world, 0.1)
    set_release(world.owner, world.dataset_id, ReleasePolicy(n_min=5))
    with pytest.raises(errors.NotPrivate):
        post(world, 0.1)
    assert world.admin.job(post(world)).epsilon == 0


def test_a_job_closed_before_it_started_gives_its_spend_back(world: World) -> None:
    set_release(world.owner, world.dataset_id, DP)
    cancelled, timed_out, started = post(world, 0.2), post(world, 0.2), post(world, 0.2)
    world.owner.cancel(cancelled)
    job = world.admin.job(started)
    member = world.node(job.quorum[0])
    with pytest.raises(errors.NotInQuorum):
        world.outsider.start(started)
    member.start(started)
    member.start(started)  # idempotent: every member may say so
    assert world.admin.job(started).started
    assert len(events(world, "JobStarted")) == 1
    world.owner.cancel(started)  # started: the spend is final
    advance_time(world.admin.w3, PARAMS.job_timeout)
    world.outsider.timeout(timed_out)
    refunded = events(world, "BudgetRefunded")
    assert sorted(e["job_id"] for e in refunded) == [cancelled, timed_out]
    assert world.admin.release(world.dataset_id).epsilon_spent == to_fixed(0.2, "ε")
    with pytest.raises(errors.JobClosed):
        member.start(started)
    books_balance(world, [])


def test_a_commit_makes_the_spend_final(world: World) -> None:
    set_release(world.owner, world.dataset_id, DP)
    job = world.admin.job(post(world, 0.5))
    world.node(job.quorum[0]).commit_result(job.job_id, keccak(b"c"), keccak(b"p"), 1, 1)
    assert world.admin.job(job.job_id).started
    world.owner.cancel(job.job_id)
    assert world.admin.job(job.job_id).status is JobStatus.CANCELLED
    assert world.admin.release(world.dataset_id).epsilon_spent == to_fixed(0.5, "ε")


def test_only_the_jobs_contract_spends_and_it_is_wired_once(world: World) -> None:
    with pytest.raises(errors.ContractRevert, match="NotJobs"):
        world.owner.transact("datasets", "spend_budget", world.dataset_id, 0, 0, 0)
    with pytest.raises(errors.ContractRevert, match="NotJobs"):
        world.owner.transact("datasets", "refund_budget", world.dataset_id, 0, 1, 0)
    with pytest.raises(errors.ContractRevert, match="AlreadySet"):
        world.admin.transact("datasets", "set_jobs", world.owner.address)
    assert world.admin.call("datasets", "jobs") == world.admin.deployment.jobs


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asks=st.lists(st.integers(1, 6), min_size=1, max_size=5))
def test_spent_never_exceeds_the_budget(world: World, asks: list[int]) -> None:
    """Jobs asking k/10 of an ε budget of 1: exactly those that fit are booked, in order."""
    snapshot = _snapshot(world.admin)
    try:
        set_release(world.owner, world.dataset_id, ReleasePolicy(n_min=1, epsilon_budget=1.0))
        spent = 0
        for k in asks:
            if spent + k <= 10:
                post(world, k / 10)
                spent += k
            else:
                with pytest.raises(errors.BudgetExceeded):
                    post(world, k / 10)
            assert world.admin.release(world.dataset_id).epsilon_spent == spent * FIXED // 10
    finally:
        _revert(world.admin, snapshot)
