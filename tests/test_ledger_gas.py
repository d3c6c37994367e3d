"""The job path's known gas limits (client.GAS_LIMITS): large enough at the contracts'
bounds, and what a failed transaction means without a gas estimate before it.

Why these tests: the calls of every job (post_job, start, commit_result, accept) go out
without `eth_estimateGas`, so a revert is no longer caught before sending. It is mined
as a failed transaction, and the client must still raise the contract's named reason; a
limit that turns out too small must cost one failed transaction, never a lost call.
Last, the other half of the chain's share of a job: a member's stock top-up waits until
the job is settled, so that it does not compete with the transactions the owner waits for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_utils import keccak

from enigma.ledger import Ledger, LedgerParams, Policy, errors, personal_sign, script_hash
from enigma.ledger import client as ledger_client
from enigma.ledger.devchain import start_devchain

REGISTRY_MAX_NODES = 128  # registry.vy MAX_NODES: the draw walks every listed node
MARGIN = 1.5  # each table entry must cover at least this multiple of the worst use seen


@dataclass
class Net:
    url: str
    admin: Ledger
    owner: Ledger
    nodes: list[Ledger]

    def by(self, address: str) -> Ledger:
        return next(n for n in self.nodes if n.address == address)


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    """32 staked nodes on a fresh chain: a pool as large as a dataset's holders may be."""
    with start_devchain(accounts=34) as chain:
        acc = chain.accounts
        admin = Ledger.connect(chain.url, acc[0])
        deployment = admin.deploy(LedgerParams(min_deposit=10**15))
        owner = Ledger.connect(chain.url, acc[1], deployment)
        nodes = [Ledger.connect(chain.url, a, deployment) for a in acc[2:34]]
        for i, node in enumerate(nodes):
            node.register_node(f"tcp://10.0.0.{i}:7000", keccak(bytes([i])), 10**15)
        yield Net(chain.url, admin, owner, nodes)


def _signed() -> tuple[bytes, str, bytes]:
    author = Account.from_key(keccak(b"gas test author"))
    digest = script_hash(b"reveal(mean(data.x), 'mean')")
    return digest, author.address, personal_sign(author.key, digest)


def _gas_used(ledger: Ledger) -> int:
    """Gas of the one transaction in the latest block (the embedded chain mines each alone)."""
    block = ledger.w3.eth.get_block("latest")
    assert len(block["transactions"]) == 1
    return int(block["gasUsed"])


def _dataset(net: Net, holders: list[Ledger], name: bytes) -> int:
    """A dataset held by `holders` with an ε budget, so posting a job also spends it."""
    ds = net.owner.post_dataset(keccak(name), keccak(b"schema"), [h.address for h in holders],
                                [keccak(b"c%d" % i) for i in range(len(holders))],
                                Policy.OWNER_ONLY, 10_000)
    net.owner.set_release(ds, n_min=1, epsilon_budget=100.0, delta_budget=0.5)
    return ds


def _job_gas(net: Net, dataset: int, quorum: int) -> dict[str, int]:
    """The gas each job-path call used, for one job of `quorum` members (the largest
    member's for start and commit)."""
    digest, author, sig = _signed()
    job = net.owner.post_job(dataset, digest, author, sig, quorum, 8, 1000,
                             epsilon=1.0, delta=0.01)
    used = {"jobs.post_job": _gas_used(net.owner), "jobs.start": 0, "jobs.commit_result": 0}
    for address in job.quorum:
        member = net.by(address)
        member.start(job.job_id)
        used["jobs.start"] = max(used["jobs.start"], _gas_used(member))
        member.commit_result(job.job_id, keccak(address.encode()), bytes(32), 8, 1000)
        used["jobs.commit_result"] = max(used["jobs.commit_result"], _gas_used(member))
    net.owner.accept(job.job_id)
    used["jobs.accept"] = _gas_used(net.owner)
    return used


def test_gas_table_covers_the_contract_bounds(net: Net) -> None:
    """At a quorum of 16 (MAX_QUORUM) every entry covers MARGIN × its use; post_job's draw
    grows with the listed nodes, so its use is measured at 16 and 32 listed holders and
    extrapolated to the registry's 128 (counting the holders' growth too: an upper bound)."""
    small = _job_gas(net, _dataset(net, net.nodes[:16], b"sixteen"), 16)
    large = _job_gas(net, _dataset(net, net.nodes, b"thirty-two"), 16)
    assert set(large) == set(ledger_client.GAS_LIMITS)
    per_node = max(0, large["jobs.post_job"] - small["jobs.post_job"]) / 16
    worst = {k: max(small[k], large[k]) for k in large}
    worst["jobs.post_job"] = int(large["jobs.post_job"] + per_node * (REGISTRY_MAX_NODES - 32))
    for where, used in worst.items():
        limit = ledger_client.GAS_LIMITS[where]
        assert used * MARGIN <= limit, f"{where}: uses up to {used} gas, limit {limit}"


def test_a_reverting_job_call_is_mined_as_failed_and_named(net: Net) -> None:
    """Without an estimate a revert is mined (status 0, its gas paid); the client replays
    the call on that block's state and raises the contract's reason as before."""
    ds = _dataset(net, net.nodes[:3], b"three")
    digest, author, sig = _signed()
    job = net.owner.post_job(ds, digest, author, sig, 3, 8, 1000, epsilon=1.0)
    outsider = next(n for n in net.nodes if n.address not in job.quorum)
    head = net.owner.w3.eth.block_number
    with pytest.raises(errors.NotInQuorum, match=r"jobs\.commit_result reverted"):
        outsider.commit_result(job.job_id, keccak(b"x"), bytes(32), 8, 1000)
    member = net.by(job.quorum[0])
    with pytest.raises(errors.WorkOverBudget):
        member.commit_result(job.job_id, keccak(b"x"), bytes(32), 9, 1000)
    with pytest.raises(errors.ResultsMissing, match=r"jobs\.accept"):
        net.owner.accept(job.job_id)
    failed = [net.owner.w3.eth.get_transaction_receipt(tx)
              for b in range(head + 1, net.owner.w3.eth.block_number + 1)
              for tx in net.owner.w3.eth.get_block(b)["transactions"]]
    assert [r["status"] for r in failed] == [0, 0, 0]
    assert [r["from"] for r in failed] == [outsider.address, member.address,
                                            net.owner.address]
    assert net.owner.job(job.job_id).commits == 0  # nothing of the failures took effect


def test_a_limit_too_small_costs_one_failed_transaction_then_the_call_goes_through(
        net: Net, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A table entry below the call's use: the transaction runs out of gas, the replay
    passes, and the client resends it once with an estimate; the commitment lands."""
    ds = _dataset(net, net.nodes[:3], b"three again")
    digest, author, sig = _signed()
    job = net.owner.post_job(ds, digest, author, sig, 3, 8, 1000, epsilon=1.0)
    member = net.by(job.quorum[0])
    monkeypatch.setitem(ledger_client.GAS_LIMITS, "jobs.commit_result", 30_000)
    head = net.owner.w3.eth.block_number
    with caplog.at_level(logging.WARNING, logger="enigma.ledger.client"):
        member.commit_result(job.job_id, keccak(b"mine"), bytes(32), 8, 1000)
    receipts = [net.owner.w3.eth.get_transaction_receipt(tx)
                for b in range(head + 1, net.owner.w3.eth.block_number + 1)
                for tx in net.owner.w3.eth.get_block(b)["transactions"]]
    assert [(r["status"], r["gasUsed"] == 30_000) for r in receipts] == [(0, True), (1, False)]
    assert net.owner.commit_of(job.job_id, member.address).commitment == keccak(b"mine")
    assert "resending it with a gas estimate" in caplog.text


# ------------------------------------- a member's stock top-up waits for the job's settlement


def test_a_members_top_up_waits_for_its_commit_and_the_owners_accept(net: Net) -> None:
    """`NodeJobs._until_settled` (run in the top-up's thread) returns only once the member's
    commit is mined and the owner has settled the job; with no ledger answer, at once.

    Why: the top-up's CPU-bound production must not compete with the transactions the
    owner waits for (docs/ledger.md, "The chain's share of a job")."""
    import threading
    import time
    from types import SimpleNamespace

    from enigma.app.node_jobs import NodeJobs

    ds = _dataset(net, net.nodes[:3], b"top-up")
    digest, author, sig = _signed()
    job = net.owner.post_job(ds, digest, author, sig, 3, 8, 1000, epsilon=1.0)
    members = [net.by(a) for a in job.quorum]
    host = SimpleNamespace(ledger=members[0], ledger_lock=threading.Lock())
    jobs = NodeJobs(host)  # type: ignore[arg-type]  # the two parts it reads here
    committed, returned = threading.Event(), threading.Event()
    waiter = threading.Thread(target=lambda: (jobs._until_settled(job.job_id, committed, 30.0),
                                              returned.set()))
    waiter.start()
    assert not returned.wait(0.3)  # the member has not committed
    for m in members:
        m.commit_result(job.job_id, keccak(m.address.encode()), bytes(32), 8, 1000)
    committed.set()
    assert not returned.wait(0.3)  # committed, but the owner has not settled
    net.owner.accept(job.job_id)
    t0 = time.monotonic()
    assert returned.wait(5.0)
    assert time.monotonic() - t0 < 1.0
    waiter.join()

    host.ledger = Ledger.connect(net.url, None, net.owner.deployment)
    host.ledger.w3.provider.endpoint_uri = "http://127.0.0.1:9"  # nobody answers there
    t0 = time.monotonic()
    NodeJobs(host)._until_settled(job.job_id, threading.Event(), 0.0)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 2.0
