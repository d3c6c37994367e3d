"""The node's side of an accusation (app/disputes.py), in process on the embedded chain:
evidence files are stored only when an accusation names them and served intact; an
honest node's watcher disputes a false accusation; a juror votes on what the file proves,
waits for a file it cannot fetch yet, and then votes not guilty; settling is automatic.

The full path with real node processes (every fault kind disputed and convicted, a false
accusation acquitted) is in tests/test_app_faults.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from eth_account import Account
from eth_utils import keccak

from enigma.app.culprits import encode_bundle
from enigma.app.disputes import Watcher, proves
from enigma.app.evidence import EvidenceStore, evidence_ops
from enigma.app.service import ServiceError
from enigma.ledger import (
    AccusationStatus,
    Ledger,
    LedgerParams,
    Policy,
    personal_sign,
    script_hash,
    start_devchain,
)
from enigma.ledger.devchain import advance_time
from enigma.net.identity import Identity

PARAMS = LedgerParams(min_deposit=10**18, challenge_period=600, voting_period=400,
                      accusation_bond=10**17, committee_size=3)


@dataclass
class Net:
    url: str
    owner: Ledger
    nodes: list[Ledger]
    job_id: int
    quorum: list[str]


@pytest.fixture
def net() -> Iterator[Net]:
    """Five registered nodes (fake endpoints), a dataset held by two, a job on those two."""
    with start_devchain(accounts=8) as chain:
        owner = Ledger.connect(chain.url, chain.accounts[0])
        deployment = owner.deploy(PARAMS)
        nodes = [Ledger.connect(chain.url, a, deployment) for a in chain.accounts[1:6]]
        for i, node in enumerate(nodes):
            # nobody listens on these ports: fetching from them fails, as from a dead node
            node.register_node(f"127.0.0.1:{1 + i}", keccak(bytes([i])), 10**18)
        holders = [n.address for n in nodes[:2]]
        dataset = owner.post_dataset(keccak(b"dht"), keccak(b"schema"), holders,
                                     [keccak(b"c0"), keccak(b"c1")], Policy.OWNER_ONLY, 10_000)
        author = Account.from_key(keccak(b"author"))
        digest = script_hash(b"reveal(sum(data.a), 'total')")
        job = owner.post_job(dataset, digest, author.address, personal_sign(author.key, digest),
                             2, 10, 100)
        yield Net(chain.url, owner, nodes, job.job_id, job.quorum)


def _node(net: Net, ledger: Ledger, home: Path) -> SimpleNamespace:
    """What evidence_ops and Watcher use of a Node: home, rpc, ledger, identity, lock."""
    return SimpleNamespace(config=SimpleNamespace(home=home, rpc=net.url), ledger=ledger,
                           identity=Identity.generate(), ledger_lock=threading.Lock())


def _bogus(net: Net, culprit: str) -> bytes:
    """An evidence file in the right format, about the right job, proving nothing."""
    return encode_bundle({"job_id": net.job_id, "culprit": culprit, "party": 0,
                    "verdict": "deviation"}, b"no evidence at all", [])


def _accuse(net: Net, culprit: str, data: bytes) -> int:
    sig = net.owner.sign(net.owner.accusation_digest(net.job_id, culprit, keccak(data)))
    return net.owner.accuse(net.job_id, culprit, keccak(data), [sig])


def test_evidence_is_kept_only_when_an_accusation_names_it(net: Net, tmp_path: Path) -> None:
    victim = net.quorum[0]
    data = _bogus(net, victim)
    accusation_id = _accuse(net, victim, data)
    ops = evidence_ops(_node(net, net.nodes[4], tmp_path))  # type: ignore[arg-type]
    as_array = [np.frombuffer(data, dtype=np.uint8)]
    other = [np.frombuffer(data + b"!", dtype=np.uint8)]
    with pytest.raises(ServiceError, match="another evidence hash"):
        ops["evidence-put"](b"client", {"accusation_id": accusation_id}, other)
    with pytest.raises(ServiceError, match="no evidence file"):
        ops["evidence-get"](b"client", {"hash": keccak(data).hex()}, [])
    reply, _ = ops["evidence-put"](b"client", {"accusation_id": accusation_id}, as_array)
    assert reply["stored"] == keccak(data).hex()
    _, arrays = ops["evidence-get"](b"client", {"hash": keccak(data).hex()}, [])
    assert arrays[0].tobytes() == data
    # a file damaged on disk is never served: the store checks the hash on every read
    store = EvidenceStore(tmp_path / "evidence")
    store.path(keccak(data)).write_bytes(data[:-1] + b"?")
    assert store.get(keccak(data)) is None
    with pytest.raises(ServiceError, match="no evidence file"):
        ops["evidence-get"](b"client", {"hash": keccak(data).hex()}, [])


def test_proves_refuses_a_file_that_is_not_the_accusations(net: Net) -> None:
    victim = net.quorum[1]
    data = _bogus(net, victim)
    a = net.owner.accusation(_accuse(net, victim, data))
    assert proves(net.owner, None, a) == (False, "the evidence file could not be fetched")
    assert proves(net.owner, data + b"x", a)[1] == "the file is not the one the accusation names"
    ok, why = proves(net.owner, data, a)
    assert not ok and why.startswith("the file does not verify")


def test_the_watchers_dispute_judge_and_settle_a_false_accusation(net: Net,
                                                                  tmp_path: Path) -> None:
    """The victim's watcher disputes; a juror holding the file votes not guilty at once; a
    juror who cannot fetch it waits until half its period is left, then votes not guilty;
    after the voting deadline the victim's watcher finalizes: deposit kept, resumed, bond."""
    victim = net.quorum[0]
    data = _bogus(net, victim)
    accusation_id = _accuse(net, victim, data)
    lg = {n.address: n for n in net.nodes}
    homes = {a: tmp_path / a for a in lg}
    EvidenceStore(homes[victim] / "evidence").put(data)  # the owner pushed it to the quorum
    watchers = {a: Watcher(_node(net, lg[a], homes[a]), interval=0.1)  # type: ignore[arg-type]
                for a in lg}
    stake = net.owner.node(victim).deposit
    assert not net.owner.node(victim).active
    watchers[victim].step()
    a = net.owner.accusation(accusation_id)
    assert a.disputed and len(a.committee) == 3
    assert not set(a.committee) & {*net.quorum, net.owner.address}
    holder, *strangers = a.committee
    EvidenceStore(homes[holder] / "evidence").put(data)
    for juror in a.committee:
        watchers[juror].step()
    assert net.owner.ballot(accusation_id, holder) is False
    for juror in strangers:  # no file anywhere it can reach: not yet
        assert net.owner.ballot(accusation_id, juror) is None
    advance_time(net.owner.w3, PARAMS.voting_period // 2 + 1)
    for juror in strangers:
        watchers[juror].step()
        assert net.owner.ballot(accusation_id, juror) is False
    # every member voted: the matrix would finalize now; the nodes wait for the deadline
    before = net.owner.claimable(victim)
    watchers[victim].step()
    assert net.owner.accusation(accusation_id).status is AccusationStatus.PENDING
    advance_time(net.owner.w3, PARAMS.voting_period)
    watchers[victim].step()
    a = net.owner.accusation(accusation_id)
    assert a.status is AccusationStatus.ACQUITTED and a.innocent_votes == 3
    info = net.owner.node(victim)
    assert info.deposit == stake and info.active
    assert net.owner.claimable(victim) - before == a.bond - a.bond * 10 // 100


def test_a_cheaters_watcher_disputes_and_silent_jurors_acquit(net: Net,
                                                              tmp_path: Path) -> None:
    """`--misbehave` nodes dispute without looking; if no juror votes, an honest member of
    the job settles it after the voting deadline, and silence acquits (liveness, not
    safety: only a cheater can profit from absent jurors)."""
    lg = {n.address: n for n in net.nodes}
    culprit, member = net.quorum
    data = _bogus(net, culprit)
    first = _accuse(net, culprit, data)
    node = _node(net, lg[culprit], tmp_path / "c")
    cheater = Watcher(node, always_dispute=True)  # type: ignore[arg-type]
    cheater.step()
    assert net.owner.accusation(first).disputed
    # the member's watcher has nothing to do before the deadline; after it, it finalizes
    honest = Watcher(_node(net, lg[member], tmp_path / "m"))  # type: ignore[arg-type]
    honest.step()
    assert net.owner.accusation(first).status is AccusationStatus.PENDING
    advance_time(net.owner.w3, PARAMS.voting_period + 1)
    honest.step()
    a = net.owner.accusation(first)
    assert a.status is AccusationStatus.ACQUITTED  # nobody voted: presumption of innocence
    assert net.owner.node(culprit).active


def test_the_evidence_commands(net: Net, tmp_path: Path) -> None:
    """`enigma evidence list | fetch | finalize` against the chain (no node serves here)."""
    from click.testing import CliRunner

    from enigma.app.faults import evidence_group

    path = tmp_path / "deployment.json"
    net.owner.deployment.save(path)
    where = ["--rpc", net.url, "--deployment", str(path)]
    culprit = net.quorum[1]
    accusation_id = _accuse(net, culprit, _bogus(net, culprit))
    out = CliRunner().invoke(evidence_group, ["list", *where])
    assert out.exit_code == 0, out.output
    assert f"accusation {accusation_id}: job {net.job_id} culprit {culprit}" in out.output
    assert "pending, dispute until" in out.output
    out = CliRunner().invoke(evidence_group, ["fetch", str(accusation_id), *where])
    # the quorum (2), then every other active node (3; the accused is held)
    assert out.exit_code != 0 and "no node among 5 handed over the file" in out.output
    finalize = ["finalize", str(accusation_id), "--account", net.owner.address, *where]
    out = CliRunner().invoke(evidence_group, finalize)
    assert out.exit_code != 0 and "TooEarly" in out.output
    advance_time(net.owner.w3, PARAMS.challenge_period)
    out = CliRunner().invoke(evidence_group, finalize)
    assert out.exit_code == 0, out.output
    assert "guilty" in out.output and "(undisputed)" in out.output
    out = CliRunner().invoke(evidence_group, ["list", *where])
    assert "(undisputed, slashed)" in out.output
