"""Every path of the registry, datasets and jobs contracts, reverts included.

Runs against the embedded chain (served over JSON-RPC in a thread) and against anvil
(installed with npm into .cache/anvil by the fixture; skipped when that is impossible).
Per backend, the module deploys once; each test then runs on that deployment and is
rolled back afterwards (evm_snapshot/evm_revert), so tests share a chain but no state.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enigma.ledger import (
    AccusationStatus,
    JobStatus,
    Ledger,
    LedgerParams,
    Policy,
    draw_quorum,
    errors,
    personal_sign,
    script_hash,
    start_devchain,
)
from enigma.ledger.anvil import AnvilUnavailable, start_anvil
from enigma.ledger.devchain import advance_time

ETH = 10**18
PARAMS = LedgerParams(
    min_deposit=ETH,
    unbonding_period=1_000,
    storage_price=7,
    price_per_round=1_000_003,
    price_per_multiplication=17,
    job_timeout=500,
    challenge_period=100,
    voting_period=50,
    accusation_bond=ETH // 10 + 7,  # 7 wei: shares of it leave remainders
    committee_size=3,
)
DEPOSITS = [1 * ETH, 2 * ETH, 3 * ETH, 5 * ETH, 8 * ETH]  # distinct weights for the draw


@dataclass
class Chain:
    backend: str
    url: str
    accounts: list[str]


def _serve(request: pytest.FixtureRequest) -> Iterator[Chain]:
    if request.param == "eth-tester":
        with start_devchain() as server:
            yield Chain("eth-tester", server.url, server.accounts)
        return
    try:
        server = start_anvil()
    except AnvilUnavailable as exc:
        pytest.skip(f"anvil backend skipped: {exc}")
    with server:
        yield Chain("anvil", server.url, server.accounts)


@pytest.fixture(scope="module", params=["eth-tester", "anvil"])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """One chain per backend for the module; every test deploys its own contracts."""
    yield from _serve(request)


@pytest.fixture(params=["eth-tester", "anvil"])
def fresh_chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """A chain of one's own, for tests that audit everything on it."""
    yield from _serve(request)


@dataclass
class World:
    chain: Chain
    admin: Ledger
    nodes: list[Ledger]
    owner: Ledger
    analyst: Ledger
    outsider: Ledger
    author: LocalAccount
    dataset_id: int

    def node(self, address: str) -> Ledger:
        return next(n for n in self.nodes if n.address == address)

    def signed_script(self, source: bytes = b"mean(table.age)") -> tuple[bytes, bytes]:
        digest = script_hash(source)
        return digest, personal_sign(self.author.key, digest)

    def wide_dataset(self) -> int:
        """A dataset held by all five nodes (quorums are drawn among a dataset's holders)."""
        return self.owner.post_dataset(
            keccak(b"wide"), keccak(b"schema"), [n.address for n in self.nodes],
            [keccak(b"share set %d" % i) for i in range(5)], Policy.OWNER_ONLY, 10_000,
        )

    def post_job(self, poster: Ledger | None = None, quorum: int = 3, dataset: int | None = None,
                 **kw: int) -> int:
        digest, sig = self.signed_script()
        by = poster or self.owner
        job = by.post_job(
            self.dataset_id if dataset is None else dataset,
            digest,
            self.author.address,
            sig,
            quorum,
            rounds=kw.get("rounds", 12),
            multiplications=kw.get("multiplications", 4_000),
            reward=kw.get("reward", 999),
            fee=kw.get("fee"),
        )
        return job.job_id


@pytest.fixture(scope="module")
def base_world(chain: Chain) -> World:
    return make_world(chain)


@pytest.fixture
def world(base_world: World) -> Iterator[World]:
    """The module's world, rolled back after each test (evm_snapshot/evm_revert, clock too)."""
    provider = base_world.admin.w3.provider
    snapshot = provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield base_world
    reverted = provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    assert "error" not in reverted, reverted


def make_world(chain: Chain) -> World:
    """Fresh contracts, five staked nodes, and an owner-only dataset held by three of them."""
    acc = chain.accounts
    admin = Ledger.connect(chain.url, acc[0])
    deployment = admin.deploy(PARAMS)
    nodes = [Ledger.connect(chain.url, a, deployment) for a in acc[1:6]]
    for i, (node, deposit) in enumerate(zip(nodes, DEPOSITS, strict=True)):
        node.register_node(f"tcp://127.0.0.1:{7000 + i}", keccak(bytes([i])), deposit)
    owner, analyst, outsider = (Ledger.connect(chain.url, a, deployment) for a in acc[6:9])
    holders = [n.address for n in nodes[:3]]
    commitments = [keccak(b"share set %d" % i) for i in range(3)]
    dataset_id = owner.post_dataset(
        keccak(b"dht"), keccak(b"schema"), holders, commitments, Policy.OWNER_ONLY, 10_000
    )
    author = Account.from_key(keccak(b"analyst key"))
    return World(chain, admin, nodes, owner, analyst, outsider, author, dataset_id)


def books_balance(w: World, open_jobs: list[int]) -> None:
    """No wei created or lost: each contract holds exactly what it owes (escrows of open
    jobs and bonds of pending accusations included)."""
    d = w.admin.deployment
    people = [w.admin, *w.nodes, w.owner, w.analyst, w.outsider]
    addresses = [p.address for p in people] + [w.author.address]
    deposits = sum(w.admin.node(n.address).deposit for n in w.nodes)
    assert w.admin.balance(d.registry) == deposits
    owed = sum(w.admin.call("jobs", "balances", a) for a in addresses)
    escrow = sum(w.admin.job(j).escrow for j in open_jobs)
    bonds = sum(a.bond for a in map(w.admin.accusation, range(w.admin.accusation_count()))
                if a.status is AccusationStatus.PENDING)
    assert w.admin.balance(d.jobs) == owed + escrow + bonds
    stored = sum(w.admin.call("datasets", "balances", a) for a in addresses)
    assert w.admin.balance(d.datasets) == stored


# ---------------------------------------------------------------------- registry


def test_register_lists_node_with_its_keys_and_deposit(world: World) -> None:
    info = world.admin.node(world.nodes[2].address)
    assert (info.endpoint, info.transport_key) == ("tcp://127.0.0.1:7002", keccak(bytes([2])))
    assert info.deposit == DEPOSITS[2] and info.active and not info.slashed
    assert world.admin.active_nodes() == [n.address for n in world.nodes]
    registered = [args for name, args in world.admin.events() if name == "NodeRegistered"]
    assert [a["deposit"] for a in registered] == DEPOSITS


def test_register_reverts(world: World) -> None:
    with pytest.raises(errors.InsufficientDeposit, match=r"registry\.register"):
        world.outsider.register_node("tcp://x", bytes(32), ETH - 1)
    with pytest.raises(errors.AlreadyRegistered):
        world.nodes[0].register_node("tcp://x", bytes(32), ETH)
    with pytest.raises(ValueError, match="transport_key must be 32 bytes"):
        world.outsider.register_node("tcp://x", bytes(31), ETH)
    with pytest.raises(ValueError, match="longer than 128 bytes"):
        world.outsider.register_node("tcp://" + "x" * 130, bytes(32), ETH)


def test_top_up(world: World) -> None:
    assert world.nodes[0].top_up(12345) == DEPOSITS[0] + 12345
    with pytest.raises(errors.NotRegistered):
        world.outsider.top_up(1)
    with pytest.raises(errors.InsufficientDeposit):
        world.nodes[0].top_up(0)
    books_balance(world, [])


def test_withdrawal_waits_for_unbonding_and_leaves_quorums(world: World) -> None:
    node = world.nodes[4]
    with pytest.raises(errors.NotUnbonding):
        node.withdraw()
    node.request_withdrawal()
    assert node.address not in world.admin.active_nodes()
    with pytest.raises(errors.Unbonding, match="already requested"):
        node.request_withdrawal()
    with pytest.raises(errors.Unbonding):
        node.top_up(1)
    with pytest.raises(errors.Unbonding, match="not passed"):
        node.withdraw()
    advance_time(world.admin.w3, PARAMS.unbonding_period)
    before = world.admin.balance(world.admin.deployment.registry)
    assert node.withdraw() == DEPOSITS[4]
    assert world.admin.balance(world.admin.deployment.registry) == before - DEPOSITS[4]
    assert not world.admin.node(node.address).registered
    for seed in range(4):  # the four others, every time: the withdrawn node is never drawn
        drawn = world.admin.draw_view(keccak(bytes([seed])), 4)
        assert sorted(drawn) == sorted(n.address for n in world.nodes[:4])
    with pytest.raises(errors.NotRegistered):
        node.withdraw()


def test_node_in_open_job_cannot_withdraw(world: World) -> None:
    job = world.admin.job(world.post_job(quorum=5, dataset=world.wide_dataset()))
    node = world.nodes[0]
    assert node.address in job.quorum and world.admin.node(node.address).open_jobs == 1
    node.request_withdrawal()
    for member in job.quorum:
        world.node(member).commit_result(job.job_id, keccak(member.encode()), bytes(32), 1, 1)
    advance_time(world.admin.w3, PARAMS.unbonding_period)
    with pytest.raises(errors.InJob):
        node.withdraw()
    world.owner.accept(job.job_id)
    assert node.withdraw() == DEPOSITS[0]


def test_local_key_signs_its_own_transactions(world: World) -> None:
    """The real-chain path: a private key held by the client, not an unlocked node account."""
    key = keccak(b"operator key of a node on a public chain")
    local = Account.from_key(key)
    w3 = world.admin.w3
    funding = {"from": world.admin.address, "to": local.address, "value": 3 * ETH}
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(funding))  # type: ignore[arg-type]
    node = world.admin.as_account(key)
    assert node.address == local.address
    node.register_node("tcp://203.0.113.9:7000", keccak(b"ed25519 public key"), 2 * ETH)
    assert world.admin.node(local.address).deposit == 2 * ETH
    digest = keccak(b"anything")
    assert node.sign(digest) == personal_sign(key, digest)
    with pytest.raises(errors.InsufficientDeposit):
        node.top_up(0)


def test_only_jobs_contract_draws_releases_slashes(world: World) -> None:
    with pytest.raises(errors.ContractRevert, match="NotJobs"):
        world.outsider.transact("registry", "draw", bytes(32), 2, [])
    for only_jobs in ("hold", "suspend"):
        with pytest.raises(errors.ContractRevert, match="NotJobs"):
            world.outsider.transact("registry", only_jobs, world.nodes[0].address)
    with pytest.raises(errors.ContractRevert, match="NotJobs"):
        world.outsider.transact("registry", "unhold", world.nodes[0].address, True)
    with pytest.raises(errors.ContractRevert, match="NotJobs"):
        world.outsider.transact("registry", "release", world.nodes[0].address)
    with pytest.raises(errors.ContractRevert, match="NotJobs"):
        world.outsider.transact("registry", "slash", world.nodes[0].address)
    with pytest.raises(errors.ContractRevert, match="NotAdmin"):
        world.outsider.transact("registry", "set_jobs", world.outsider.address)
    with pytest.raises(errors.ContractRevert, match="AlreadySet"):
        world.admin.transact("registry", "set_jobs", world.outsider.address)


# ---------------------------------------------------------------------- quorum draw


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.binary(min_size=32, max_size=32), size=st.integers(min_value=1, max_value=4))
def test_draw_matches_reference_and_skips_ineligible(world: World, seed: bytes, size: int) -> None:
    if not world.admin.node(world.nodes[1].address).unbond_at:
        world.nodes[1].request_withdrawal()  # unbonding: weight 0, never drawn
    candidates = world.admin.candidates()
    drawn = world.admin.draw_view(seed, size)
    assert drawn == draw_quorum(seed, candidates, size)
    assert drawn == world.admin.draw_view(seed, size)
    assert len(set(drawn)) == size
    assert world.nodes[1].address not in drawn
    assert set(drawn) <= set(world.admin.active_nodes())


def test_draw_reverts_when_quorum_exceeds_active_nodes(world: World) -> None:
    with pytest.raises(errors.NotEnoughNodes):
        world.admin.draw_view(bytes(32), 6)
    with pytest.raises(ValueError, match="not enough staked"):
        draw_quorum(bytes(32), world.admin.candidates(), 6)
    with pytest.raises(errors.NotEnoughNodes):
        world.post_job(quorum=6)


def test_job_quorum_is_reproducible_from_its_seed(world: World) -> None:
    """A job's quorum is the draw among its dataset's holders: all three of a 3-holder
    dataset; for a dataset every node holds, the same draw as among all active nodes."""
    holders = world.admin.dataset(world.dataset_id).holders
    job = world.admin.job(world.post_job(quorum=3))
    assert job.quorum == draw_quorum(job.seed, world.admin.candidates(pool=holders), 3)
    assert sorted(job.quorum) == sorted(holders)
    wide = world.wide_dataset()
    for _ in range(3):
        job = world.admin.job(world.post_job(quorum=3, dataset=wide))
        assert job.quorum == draw_quorum(job.seed, world.admin.candidates(), 3)
        assert job.quorum == world.admin.draw_view(job.seed, 3)


# ---------------------------------------------------------------------- datasets


def test_post_dataset_pays_holders_exactly(world: World) -> None:
    holders = [n.address for n in world.nodes[:3]]
    fee = world.owner.storage_fee(3, 100) + 2  # 2 wei extra: the first holder gets the remainder
    before = [world.admin.claimable(h) for h in holders]
    ds = world.owner.post_dataset(
        keccak(b"k2"), keccak(b"s2"), holders, [keccak(b"c")] * 3, Policy.OPEN, 100, fee=fee
    )
    gained = [world.admin.claimable(h) - b for h, b in zip(holders, before, strict=True)]
    assert sum(gained) == fee and gained[0] == gained[1] + 2 == gained[2] + 2
    info = world.admin.dataset(ds)
    assert (info.owner, info.holders, info.policy) == (world.owner.address, holders, Policy.OPEN)
    books_balance(world, [])
    owed = world.admin.claimable(holders[0])
    assert world.nodes[0].claim() == owed
    assert world.admin.claimable(holders[0]) == 0
    books_balance(world, [])
    with pytest.raises(errors.NothingToClaim):
        world.nodes[0].transact("datasets", "claim")


POST_DATASET_REVERTS = [
    # holders (node indexes; 9 = not a node), commitments, policy, duration, fee delta, kind
    ([], [], 0, 10, 0, "NoHolders"),
    ([0, 1], [0], 0, 10, 0, "BadCommitments"),
    ([0], [0], 3, 10, 0, "BadPolicy"),
    ([0], [0], 0, 0, 0, "BadDuration"),
    ([0, 1], [0, 1], 0, 10, -1, "InsufficientFee"),
    ([0, 9], [0, 1], 0, 10, 0, "NotActiveNode"),
    ([0, 0], [0, 1], 0, 10, 0, "DuplicateHolder"),
]


def test_post_dataset_reverts(world: World) -> None:
    for holders, commitments, policy, duration, fee_delta, kind in POST_DATASET_REVERTS:
        addresses = [world.nodes[i].address if i < 5 else world.outsider.address for i in holders]
        fee = world.owner.storage_fee(len(holders), duration) + fee_delta
        with pytest.raises(errors.ContractRevert) as caught:
            world.owner.post_dataset(
                keccak(b"k"),
                keccak(b"s"),
                addresses,
                [keccak(bytes([c])) for c in commitments],
                policy,  # type: ignore[arg-type]
                duration,
                fee=fee,
            )
        assert (caught.value.kind, caught.value.where) == (kind, "datasets.post_dataset")


def test_renew_extends_expiry_and_only_owner_may(world: World) -> None:
    expires = world.admin.dataset(world.dataset_id).expires_at
    assert world.owner.renew(world.dataset_id, 50) == expires + 50
    with pytest.raises(errors.NotOwner):
        world.outsider.renew(world.dataset_id, 50)
    with pytest.raises(errors.InsufficientFee):
        world.owner.renew(world.dataset_id, 50, fee=1)
    with pytest.raises(errors.UnknownDataset):
        world.owner.transact("datasets", "renew", 99, 50, value=10**9)
    books_balance(world, [])


def test_expired_dataset_takes_no_jobs(world: World) -> None:
    advance_time(world.admin.w3, 10_001)
    assert not world.admin.call("datasets", "is_live", world.dataset_id)
    with pytest.raises(errors.DatasetExpired):
        world.post_job()
    world.owner.renew(world.dataset_id, 100)
    assert world.admin.job(world.post_job()).status is JobStatus.OPEN


def test_access_policies(world: World) -> None:
    ds, analyst = world.dataset_id, world.analyst
    digest, _ = world.signed_script()
    with pytest.raises(errors.AccessDenied):
        world.post_job(poster=analyst)
    with pytest.raises(errors.NotOwner):
        analyst.set_policy(ds, Policy.OPEN)
    world.owner.set_policy(ds, Policy.ALLOW_LIST)
    with pytest.raises(errors.AccessDenied):
        world.post_job(poster=analyst)
    world.owner.allow_analyst(ds, analyst.address)
    assert world.admin.may_run(ds, analyst.address, keccak(b"any script"))
    world.owner.allow_analyst(ds, analyst.address, False)
    world.owner.allow_script(ds, digest)
    assert world.admin.may_run(ds, world.outsider.address, digest)
    assert not world.admin.may_run(ds, world.outsider.address, keccak(b"other"))
    world.post_job(poster=world.outsider)
    with pytest.raises(errors.NotOwner):
        world.outsider.allow_script(ds, digest)
    world.owner.set_policy(ds, Policy.OPEN)
    job = world.admin.job(world.post_job(poster=world.outsider))
    assert (job.owner, job.poster) == (world.owner.address, world.outsider.address)
    assert not world.admin.may_run(99, world.owner.address, digest)


# ---------------------------------------------------------------------- jobs


def test_post_job_reverts(world: World) -> None:
    digest, sig = world.signed_script()
    wrong = personal_sign(keccak(b"someone else"), digest)
    with pytest.raises(errors.BadSignature):
        world.owner.post_job(world.dataset_id, digest, world.author.address, wrong, 3, 1, 1)
    with pytest.raises(errors.BadSignature):
        world.owner.post_job(world.dataset_id, digest, world.author.address, sig[:64], 3, 1, 1)
    for size in (1, 17):
        with pytest.raises(errors.ContractRevert, match="BadQuorum"):
            world.owner.post_job(world.dataset_id, digest, world.author.address, sig, size, 1, 1)
    price = world.owner.job_price(3, 12, 4_000, 999)
    assert (
        price == 3 * (12 * PARAMS.price_per_round + 4_000 * PARAMS.price_per_multiplication) + 999
    )
    with pytest.raises(errors.InsufficientFee):
        world.post_job(fee=price - 1)
    with pytest.raises(errors.UnknownDataset):
        world.owner.post_job(99, digest, world.author.address, sig, 3, 1, 1)
    with pytest.raises(errors.UnknownJob):
        world.admin.job(0)


def test_nodes_find_their_open_jobs(world: World) -> None:
    first = world.admin.job(world.post_job(quorum=2))
    second = world.admin.job(world.post_job(quorum=3))
    for node in world.nodes:
        found = [j.job_id for j in node.jobs_for()]
        expected = [j.job_id for j in (first, second) if node.address in j.quorum]
        assert found == expected
    advance_time(world.admin.w3, PARAMS.job_timeout)
    world.outsider.timeout(first.job_id)
    assert [j.job_id for j in world.admin.jobs_for(second.quorum[0])] == [second.job_id]


def test_commit_reverts(world: World) -> None:
    job = world.admin.job(world.post_job(quorum=2))
    outsider = next(n for n in world.nodes if n.address not in job.quorum)
    member = world.node(job.quorum[0])
    with pytest.raises(errors.NotInQuorum):
        outsider.commit_result(job.job_id, keccak(b"c"), bytes(32), 1, 1)
    with pytest.raises(errors.ContractRevert, match="BadCommitment"):
        member.commit_result(job.job_id, bytes(32), bytes(32), 1, 1)
    with pytest.raises(errors.WorkOverBudget):
        member.commit_result(job.job_id, keccak(b"c"), bytes(32), 13, 1)
    with pytest.raises(errors.WorkOverBudget):
        member.commit_result(job.job_id, keccak(b"c"), bytes(32), 1, 4_001)
    member.commit_result(job.job_id, keccak(b"c"), keccak(b"ptr"), 12, 4_000)
    assert world.admin.commit_of(job.job_id, member.address).pointer == keccak(b"ptr")
    with pytest.raises(errors.AlreadyCommitted):
        member.commit_result(job.job_id, keccak(b"c"), bytes(32), 1, 1)
    with pytest.raises(errors.ResultsMissing):
        world.owner.accept(job.job_id)
    advance_time(world.admin.w3, PARAMS.job_timeout)
    with pytest.raises(errors.JobClosed, match="deadline"):
        world.node(job.quorum[1]).commit_result(job.job_id, keccak(b"c"), bytes(32), 1, 1)


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    work=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 4_000)), min_size=3, max_size=3),
    extra=st.integers(0, 10**6),
)
def test_accept_pays_work_reward_and_refund_exactly(
    world: World, work: list[tuple[int, int]], extra: int
) -> None:
    base = world.owner.job_price(3, 12, 4_000, 999)
    job = world.admin.job(world.post_job(fee=base + extra))
    before = {a: world.admin.claimable(a) for a in [*job.quorum, job.author, job.poster]}
    for member, (rounds, muls) in zip(job.quorum, work, strict=True):
        world.node(member).commit_result(job.job_id, keccak(os.urandom(8)), bytes(32), rounds, muls)
    with pytest.raises(errors.NotOwner):
        world.analyst.accept(job.job_id)
    paid = world.owner.accept(job.job_id)
    gained = {a: world.admin.claimable(a) - b for a, b in before.items()}
    for member, (rounds, muls) in zip(job.quorum, work, strict=True):
        price = rounds * PARAMS.price_per_round + muls * PARAMS.price_per_multiplication
        assert gained[member] == price
    assert gained[job.author] == paid["reward"] == 999
    assert gained[job.poster] == paid["refund"]
    assert paid["to_nodes"] + paid["reward"] + paid["refund"] == base + extra
    assert world.admin.job(job.job_id).status is JobStatus.ACCEPTED
    assert all(world.admin.node(m).open_jobs == 0 for m in job.quorum)
    with pytest.raises(errors.JobClosed):
        world.owner.accept(job.job_id)
    books_balance(world, [])


def test_quorum_commits_concurrently(world: World) -> None:
    """Nodes are separate processes that commit at the same moment; the chain serialises them."""
    job = world.admin.job(world.post_job(quorum=5, dataset=world.wide_dataset()))
    with ThreadPoolExecutor(max_workers=5) as pool:
        done = pool.map(
            lambda m: world.node(m).commit_result(job.job_id, keccak(m.encode()), bytes(32), 3, 30),
            job.quorum,
        )
        list(done)
    assert world.admin.job(job.job_id).commits == 5
    assert world.owner.accept(job.job_id)["to_nodes"] == 5 * (
        3 * PARAMS.price_per_round + 30 * PARAMS.price_per_multiplication
    )


def test_timeout_refunds_the_poster(world: World) -> None:
    job = world.admin.job(world.post_job())
    with pytest.raises(errors.TooEarly):
        world.outsider.timeout(job.job_id)
    advance_time(world.admin.w3, PARAMS.job_timeout)
    before = world.admin.claimable(job.poster)
    assert world.outsider.timeout(job.job_id) == job.escrow
    assert world.admin.claimable(job.poster) - before == job.escrow
    assert world.admin.job(job.job_id).status is JobStatus.TIMED_OUT
    assert all(world.admin.node(m).open_jobs == 0 for m in job.quorum)
    with pytest.raises(errors.JobClosed):
        world.outsider.timeout(job.job_id)
    books_balance(world, [])
    claimed = world.owner.claim()
    assert claimed >= job.escrow and world.admin.claimable(job.poster) == 0
    books_balance(world, [])


def test_cancel_refunds_the_poster_and_suspends_nobody(world: World) -> None:
    job = world.admin.job(world.post_job())
    with pytest.raises(errors.NotPoster):
        world.outsider.cancel(job.job_id)
    before = world.admin.claimable(job.poster)
    assert world.owner.cancel(job.job_id) == job.escrow
    assert world.admin.claimable(job.poster) - before == job.escrow
    assert world.admin.job(job.job_id).status is JobStatus.CANCELLED
    assert all(world.admin.node(m).open_jobs == 0 and world.admin.node(m).active
               for m in job.quorum)
    with pytest.raises(errors.JobClosed):
        world.owner.cancel(job.job_id)
    books_balance(world, [])


def test_jobs_contract_refuses_plain_payments(world: World) -> None:
    w3 = world.admin.w3
    with pytest.raises(Exception, match="NoPayments"):
        w3.eth.send_transaction(
            {"from": world.admin.address, "to": world.admin.deployment.jobs, "value": 1}
        )


# ---------------------------------------------------------------------- blame and slashing


def _accuse(world: World, job_id: int, culprit: str, evidence: bytes,
            by: Ledger | None = None, signed_by: str = "owner") -> int:
    """A signed accusation, sent (with the bond) by `by` (default the owner)."""
    job = world.admin.job(job_id)
    digest = world.admin.accusation_digest(job_id, culprit, evidence)
    if signed_by == "owner":
        signatures = [world.owner.sign(digest)]
    else:
        signatures = [world.node(m).sign(digest) for m in job.quorum if m != culprit]
    return (by or world.owner).accuse(job_id, culprit, evidence, signatures)


@pytest.mark.parametrize("signed_by", ["owner", "quorum"])
def test_undisputed_accusation_slashes_after_the_deadline_and_shares_exactly(
        world: World, signed_by: str) -> None:
    job = world.admin.job(world.post_job(quorum=4, dataset=world.wide_dataset()))
    culprit = job.quorum[2]
    evidence = keccak(b"mac check transcript")
    honest = [m for m in job.quorum if m != culprit]
    stake = world.admin.node(culprit).deposit
    before = {a: world.admin.claimable(a) for a in [*honest, job.poster, world.outsider.address]}
    accusation_id = _accuse(world, job.job_id, culprit, evidence, world.outsider, signed_by)
    # the job aborts at once (the owner re-posts), the culprit is held, nothing is slashed yet
    a = world.admin.accusation(accusation_id)
    assert (a.job_id, a.culprit, a.accuser, a.evidence_hash, a.bond) == (
        job.job_id, culprit, world.outsider.address, evidence, PARAMS.accusation_bond)
    assert a.status is AccusationStatus.PENDING and not a.disputed
    assert world.admin.accusation_of_job(job.job_id) == accusation_id
    assert world.admin.job(job.job_id).status is JobStatus.ABORTED
    assert world.admin.claimable(job.poster) - before[job.poster] == job.escrow
    info = world.admin.node(culprit)
    assert info.deposit == stake and not info.slashed and not info.active
    assert world.admin.pending_accusations(culprit) == 1
    books_balance(world, [])
    bad = world.node(culprit)
    with pytest.raises(errors.UnderAccusation):
        bad.resume()
    with pytest.raises(errors.TooEarly):
        world.outsider.finalize(accusation_id)
    advance_time(world.admin.w3, PARAMS.challenge_period - 10)
    with pytest.raises(errors.TooEarly):  # not a second before the deadline
        world.outsider.finalize(accusation_id)
    advance_time(world.admin.w3, 10)
    with pytest.raises(errors.TooLate):
        bad.dispute(accusation_id)
    out = world.analyst.finalize(accusation_id)  # anyone settles
    assert out["guilty"] and not out["disputed"] and out["slashed"] == stake
    gained = {a: world.admin.claimable(a) - b for a, b in before.items()}
    assert sum(gained[h] for h in honest) == stake
    assert max(gained[h] for h in honest) - min(gained[h] for h in honest) <= stake % 3
    assert gained[job.poster] == job.escrow
    assert gained[world.outsider.address] == PARAMS.accusation_bond  # the bond comes back
    info = world.admin.node(culprit)
    assert info.slashed and info.deposit == 0 and not info.active
    assert culprit not in world.admin.active_nodes()
    assert world.admin.accusation(accusation_id).status is AccusationStatus.GUILTY
    assert world.admin.pending_accusations(culprit) == 0
    books_balance(world, [])
    for seed in range(8):
        assert culprit not in world.admin.draw_view(keccak(bytes([seed])), 4)
    with pytest.raises(errors.Slashed):
        bad.top_up(ETH)
    with pytest.raises(errors.Slashed):
        bad.request_withdrawal()
    with pytest.raises(errors.Slashed):
        bad.withdraw()
    with pytest.raises(errors.AlreadyRegistered):
        bad.register_node("tcp://again", bytes(32), ETH)
    with pytest.raises(errors.JobClosed):
        _accuse(world, job.job_id, culprit, evidence)
    with pytest.raises(errors.Settled):
        world.outsider.finalize(accusation_id)


def test_false_accusation_is_disputed_and_the_committee_acquits(world: World) -> None:
    """The owner signs an accusation of an honest node with bogus evidence: the node
    disputes, the committee (nodes outside the job, not the owner) votes not guilty, the
    node keeps its deposit, is resumed and gets the bond less the jurors' tenth."""
    job = world.admin.job(world.post_job(quorum=3))
    victim = job.quorum[1]
    outsiders = sorted(n.address for n in world.nodes if n.address not in job.quorum)
    stake = world.admin.node(victim).deposit
    before = {a: world.admin.claimable(a) for a in [victim, *outsiders]}
    accusation_id = _accuse(world, job.job_id, victim, keccak(b"bogus evidence"))
    assert world.owner.balance() > 0
    with pytest.raises(errors.NotAccused):
        world.owner.dispute(accusation_id)
    with pytest.raises(errors.NotAccused):
        world.node(job.quorum[0]).dispute(accusation_id)
    with pytest.raises(errors.NotCommittee):  # nobody votes before a dispute
        world.node(outsiders[0]).vote(accusation_id, False)
    excluded = [*job.quorum, world.owner.address]
    candidates = world.admin.candidates(exclude=excluded)
    committee = world.node(victim).dispute(accusation_id)
    # committee_size is 3, but only the two nodes outside the job are uninvolved
    assert sorted(committee) == outsiders
    # anyone re-derives it: the accusation's seed mixed with the dispute block's parent hash
    w3 = world.admin.w3
    parent = w3.eth.get_block(w3.eth.get_block("latest")["number"] - 1)["hash"]
    seed = keccak(world.admin.accusation(accusation_id).seed + bytes(parent))
    assert committee == draw_quorum(seed, candidates, PARAMS.committee_size, strict=False)
    a = world.admin.accusation(accusation_id)
    assert a.disputed and a.committee == committee and a.voting_deadline > 0
    with pytest.raises(errors.AlreadyDisputed):
        world.node(victim).dispute(accusation_id)
    with pytest.raises(errors.NotCommittee):
        world.node(job.quorum[0]).vote(accusation_id, True)
    with pytest.raises(errors.NotCommittee):
        world.owner.vote(accusation_id, True)
    world.node(committee[0]).vote(accusation_id, False)
    with pytest.raises(errors.AlreadyVoted):
        world.node(committee[0]).vote(accusation_id, True)
    with pytest.raises(errors.TooEarly):  # one member has yet to vote
        world.outsider.finalize(accusation_id)
    world.node(committee[1]).vote(accusation_id, False)
    assert world.admin.ballot(accusation_id, committee[1]) is False
    out = world.outsider.finalize(accusation_id)  # every member voted: no need to wait
    assert not out["guilty"] and out["disputed"] and out["slashed"] == 0
    assert (out["guilty_votes"], out["innocent_votes"]) == (0, 2)
    info = world.admin.node(victim)
    assert info.deposit == stake and info.active and not info.slashed
    assert world.admin.pending_accusations(victim) == 0
    gained = {a: world.admin.claimable(a) - b for a, b in before.items()}
    jurors = PARAMS.accusation_bond * 10 // 100
    assert gained[victim] == PARAMS.accusation_bond - jurors
    assert sum(gained[j] for j in committee) == jurors
    assert world.admin.accusation(accusation_id).status is AccusationStatus.ACQUITTED
    books_balance(world, [])
    with pytest.raises(errors.Settled):
        world.node(victim).dispute(accusation_id)
    with pytest.raises(errors.Settled):
        world.node(committee[0]).vote(accusation_id, True)


def test_anyone_re_derives_the_committee(world: World) -> None:
    """The committee is the registry's draw among active nodes outside the job's quorum,
    owner and accuser, seeded by keccak256(accusation seed ++ dispute block's parent hash)."""
    job = world.admin.job(world.post_job(quorum=2, dataset=world.wide_dataset()))
    accusation_id = _accuse(world, job.job_id, job.quorum[0], keccak(b"e"), world.analyst)
    candidates = world.admin.candidates(
        exclude=[*job.quorum, world.owner.address, world.analyst.address])
    committee = world.node(job.quorum[0]).dispute(accusation_id)
    w3 = world.admin.w3
    parent = w3.eth.get_block(w3.eth.get_block("latest")["number"] - 1)["hash"]
    seed = keccak(world.admin.accusation(accusation_id).seed + bytes(parent))
    assert len(committee) == 3 and not set(committee) & set(job.quorum)
    assert committee == draw_quorum(seed, candidates, PARAMS.committee_size, strict=False)


def test_disputed_accusation_slashes_when_the_committee_finds_guilt(world: World) -> None:
    job = world.admin.job(world.post_job(quorum=3))
    culprit = job.quorum[0]
    honest = [m for m in job.quorum if m != culprit]
    stake = world.admin.node(culprit).deposit
    accusation_id = _accuse(world, job.job_id, culprit, keccak(b"real evidence"))
    committee = world.node(culprit).dispute(accusation_id)
    before = {a: world.admin.claimable(a) for a in [*honest, *committee, world.owner.address]}
    world.node(committee[0]).vote(accusation_id, True)
    world.node(committee[1]).vote(accusation_id, True)
    out = world.outsider.finalize(accusation_id)
    assert out["guilty"] and out["slashed"] == stake
    gained = {a: world.admin.claimable(a) - b for a, b in before.items()}
    jurors = stake * 10 // 100
    assert sum(gained[j] for j in committee) == jurors
    assert sum(gained[h] for h in honest) == stake - jurors
    assert gained[world.owner.address] == PARAMS.accusation_bond
    assert world.admin.node(culprit).slashed
    books_balance(world, [])


@pytest.mark.parametrize("votes", [(True,), (True, False)])
def test_a_minority_of_the_committee_cannot_convict(world: World, votes: tuple[bool, ...]) -> None:
    """Guilty needs more than half of the drawn committee: one guilty vote of two, with the
    other absent or voting not guilty, acquits once the voting period is over."""
    job = world.admin.job(world.post_job(quorum=3))
    victim = job.quorum[2]
    accusation_id = _accuse(world, job.job_id, victim, keccak(b"e"))
    committee = world.node(victim).dispute(accusation_id)
    for juror, guilty in zip(committee, votes, strict=False):
        world.node(juror).vote(accusation_id, guilty)
    if len(votes) < len(committee):
        with pytest.raises(errors.TooEarly):
            world.outsider.finalize(accusation_id)
        advance_time(world.admin.w3, PARAMS.voting_period)
        with pytest.raises(errors.TooLate):
            world.node(committee[-1]).vote(accusation_id, True)
    out = world.outsider.finalize(accusation_id)
    assert not out["guilty"] and out["guilty_votes"] == 1
    assert world.admin.node(victim).active and not world.admin.node(victim).slashed
    books_balance(world, [])


def test_an_accused_node_cannot_take_its_deposit_out(world: World) -> None:
    """While held, a node can neither resume nor withdraw, even after its unbonding period;
    the accusation then slashes what it staked."""
    job = world.admin.job(world.post_job(quorum=3))
    culprit = world.node(job.quorum[2])
    accusation_id = _accuse(world, job.job_id, culprit.address, keccak(b"e"))
    culprit.request_withdrawal()
    advance_time(world.admin.w3, PARAMS.unbonding_period)
    with pytest.raises(errors.UnderAccusation):
        culprit.withdraw()
    stake = world.admin.node(culprit.address).deposit
    assert world.outsider.finalize(accusation_id)["slashed"] == stake
    with pytest.raises(errors.Slashed):
        culprit.withdraw()
    books_balance(world, [])


def test_accusation_reverts_without_proof(world: World) -> None:
    job = world.admin.job(world.post_job(quorum=3))
    culprit = job.quorum[0]
    evidence = keccak(b"e")
    digest = world.admin.accusation_digest(job.job_id, culprit, evidence)
    partial = [world.node(job.quorum[1]).sign(digest)]
    with pytest.raises(errors.BadProof):
        world.outsider.accuse(job.job_id, culprit, evidence, partial)
    stranger = [personal_sign(keccak(b"stranger"), digest)]
    with pytest.raises(errors.BadProof):
        world.outsider.accuse(job.job_id, culprit, evidence, stranger)
    owner_sig = [world.owner.sign(digest)]
    with pytest.raises(errors.BadProof):  # signed for another culprit
        world.outsider.accuse(job.job_id, job.quorum[1], evidence, owner_sig)
    with pytest.raises(errors.BadProof, match="proof type"):
        world.outsider.transact("jobs", "accuse", job.job_id, culprit, 2, evidence, owner_sig,
                                value=PARAMS.accusation_bond)
    with pytest.raises(errors.InsufficientBond):
        world.outsider.accuse(job.job_id, culprit, evidence, owner_sig,
                              bond=PARAMS.accusation_bond - 1)
    outside = next(n.address for n in world.nodes if n.address not in job.quorum)
    with pytest.raises(errors.NotInQuorum):
        world.outsider.accuse(job.job_id, outside, evidence, owner_sig)
    with pytest.raises(errors.UnknownAccusation):
        world.outsider.finalize(99)
    assert world.admin.job(job.job_id).status is JobStatus.OPEN
    assert world.admin.accusation_of_job(job.job_id) is None


def test_absence_suspends_without_slashing_and_refunds(world: World) -> None:
    job = world.admin.job(world.post_job(quorum=3))
    absent = job.quorum[1]
    evidence = keccak(b"signed abort records")
    digest = world.admin.absence_digest(job.job_id, absent, evidence)
    assert digest != world.admin.accusation_digest(job.job_id, absent, evidence)
    accusation_sig = [world.owner.sign(world.admin.accusation_digest(job.job_id, absent, evidence))]
    with pytest.raises(errors.BadProof):  # an accusation's signature is not a report's
        world.outsider.report_absent(job.job_id, absent, evidence, accusation_sig)
    with pytest.raises(errors.BadProof):
        world.outsider.report_absent(job.job_id, absent, evidence,
                                     [world.node(job.quorum[0]).sign(digest)])
    deposits = {m: world.admin.node(m).deposit for m in job.quorum}
    before = {a: world.admin.claimable(a) for a in [*job.quorum, job.poster]}
    refund = world.outsider.report_absent(job.job_id, absent, evidence,
                                          [world.node(m).sign(digest)
                                           for m in job.quorum if m != absent])
    assert refund == job.escrow
    assert world.admin.claimable(job.poster) - before[job.poster] == job.escrow
    for m in job.quorum:  # nobody's deposit moves, nobody is paid
        assert world.admin.node(m).deposit == deposits[m]
        assert world.admin.claimable(m) == before[m]
    info = world.admin.node(absent)
    assert not info.active and not info.slashed and info.open_jobs == 0
    assert world.admin.job(job.job_id).status is JobStatus.ABORTED
    for seed in range(8):
        assert absent not in world.admin.draw_view(keccak(bytes([seed])), 3)
    with pytest.raises(errors.JobClosed):
        world.outsider.report_absent(job.job_id, absent, evidence, [world.owner.sign(digest)])
    with pytest.raises(errors.NotSuspended):
        world.node(job.quorum[0]).resume()
    world.node(absent).resume()
    assert world.admin.node(absent).active
    books_balance(world, [])


def test_absence_report_reverts_for_a_stranger(world: World) -> None:
    job = world.admin.job(world.post_job(quorum=3))
    evidence = keccak(b"e")
    outside = next(n.address for n in world.nodes if n.address not in job.quorum)
    digest = world.admin.absence_digest(job.job_id, outside, evidence)
    with pytest.raises(errors.NotInQuorum):
        world.outsider.report_absent(job.job_id, outside, evidence, [world.owner.sign(digest)])
    with pytest.raises(errors.BadProof):
        world.outsider.report_absent(job.job_id, job.quorum[0], evidence,
                                     [personal_sign(keccak(b"stranger"), digest)])
    with pytest.raises(Exception, match="NotJobs"):
        world.outsider.transact("registry", "suspend", job.quorum[0])
    assert world.admin.job(job.job_id).status is JobStatus.OPEN


# ---------------------------------------------------------------------- acceptance: no leaks

P = 2**127 - 1  # the field modulus of the MPC layer; shares and values are elements of F_p


def _share(value: int, parties: int, rng: random.Random) -> list[int]:
    """Additive shares of `value` mod P, as the sharing layer produces them."""
    shares = [rng.randrange(P) for _ in range(parties - 1)]
    return [*shares, (value - sum(shares)) % P]


def _le(x: int) -> bytes:
    return x.to_bytes(16, "little")


def _chain_bytes(w: World) -> tuple[list[bytes], list[bytes]]:
    """Every log's topics and data, and every transaction's input, on the whole chain."""
    logs = [
        b"".join(bytes(t) for t in log["topics"]) + bytes(log["data"])
        for log in w.admin.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"})
    ]
    inputs = []
    for number in range(w.admin.w3.eth.block_number + 1):
        block = w.admin.w3.eth.get_block(number, full_transactions=True)
        inputs.extend(bytes(tx["input"]) for tx in block["transactions"])
    return logs, inputs


def test_job_life_cycle_puts_no_share_or_value_on_chain(fresh_chain: Chain) -> None:
    """
    The acceptance test: an owner shares a table over three holders, an analyst's signed
    script runs as a job, the quorum commits to result shares, the owner accepts and
    everybody claims; a second job is aborted by an accusation.  Then every event and
    every transaction input on the chain is searched for each plaintext, each share,
    the result and each result share (16 bytes, little- and big-endian): none is there.
    """
    world = make_world(fresh_chain)
    rng = random.Random(20251125)
    rows, holders = 24, [n.address for n in world.nodes[:3]]
    table = [[rng.randrange(P) for _ in range(3)] for _ in range(rows)]
    shares = [[_share(v, 3, rng) for v in row] for row in table]  # [row][col][holder]
    share_sets = [
        b"".join(_le(shares[r][c][h]) for r in range(rows) for c in range(3)) for h in range(3)
    ]
    commitments = [keccak(s) for s in share_sets]
    owner = world.owner
    ds = owner.post_dataset(
        keccak(b"dht:census"),
        keccak(b'{"age": "int"}'),
        holders,
        commitments,
        Policy.ALLOW_LIST,
        3600,
    )
    owner.allow_analyst(ds, world.analyst.address)
    world.dataset_id = ds
    job = world.admin.job(world.post_job(poster=world.analyst, quorum=3))
    result = sum(row[0] for row in table) % P
    result_shares = _share(result, 3, rng)
    for member, rs in zip(job.quorum, result_shares, strict=True):
        pointer = keccak(b"dht:result:" + member.encode())
        world.node(member).commit_result(job.job_id, keccak(_le(rs)), pointer, 10, 3_000)
    owner.accept(job.job_id)
    for member in job.quorum:
        world.node(member).claim()
    world.analyst.claim()
    second = world.admin.job(world.post_job(quorum=3))
    evidence = keccak(b"transcript of the failed MAC check")
    digest = world.admin.accusation_digest(second.job_id, second.quorum[1], evidence)
    world.outsider.accuse(second.job_id, second.quorum[1], evidence, [owner.sign(digest)])

    logs, inputs = _chain_bytes(world)
    haystack = b"\n".join(logs + inputs)
    assert commitments[0] in b"".join(inputs) and commitments[0] in b"".join(logs)  # scan sees
    secrets = [v for row in table for v in row]
    secrets += [s for row in shares for col in row for s in col]
    secrets += [result, *result_shares]
    found = [v for v in secrets if _le(v) in haystack or v.to_bytes(16, "big") in haystack]
    assert not found, f"{len(found)} private values appear on the public chain"
    names = {name for name, _ in world.admin.events()}
    assert {"DatasetPosted", "JobPosted", "ResultCommitted", "JobAccepted", "Accused"} <= names
