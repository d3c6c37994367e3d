"""End to end: a chain, node processes, the DHT, an owner, an analyst; jobs through real nodes.

The flow of `app/jobs.py` on a few hundred rows of data/benefits.csv: the owner shares
the table t-of-n onto every node, the analyst signs scripts, the owner posts them as
jobs, the drawn quorum computes, the owner checks each result against numpy and
accepts, and the ledger pays the nodes and the author.
"""

import os
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from enigma.app.jobs import FAULT_ENV, JobError, result_commitment, run_job, sign_script
from enigma.app.localnet import deploy, spawn_node
from enigma.app.owner import Owner
from enigma.app.service import Connection, ServiceError
from enigma.lang.schema import Schema
from enigma.ledger import JobStatus, Ledger, script_hash, start_devchain
from enigma.net.identity import Identity

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ROWS = 240


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    lines = (ROOT / "data" / "benefits.csv").read_text().splitlines()[:ROWS + 1]
    (root / "people.csv").write_text("\n".join(lines) + "\n")
    body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
    body.pop("rows", None)
    schema = Schema.from_dict(body)
    chain = start_devchain(accounts=8)
    deployment = root / "deployment.json"
    deploy(chain.url, chain.accounts[0], deployment)
    nodes = []
    try:
        for i in range(3):
            nodes.append(spawn_node(root / f"node{i}", chain.url, deployment,
                                    chain.accounts[1 + i],
                                    ("127.0.0.1", nodes[0].dht_port) if nodes else None))
        owner = Owner.open(root / "owner", chain.url, deployment, chain.accounts[0],
                           [("127.0.0.1", nodes[0].dht_port)])
        owner.share(root / "people.csv", schema, "people", t=1, n=3)
        analyst = Ledger.connect(chain.url, chain.accounts[6], owner.ledger.deployment)
        table = pacsv.read_csv(root / "people.csv",
                               convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
        yield {"root": root, "chain": chain, "nodes": nodes, "owner": owner,
               "analyst": analyst, "table": table}
        owner.close()
    finally:
        for node in nodes:
            node.terminate()
        chain.stop()


def test_a_job_runs_on_the_quorum_and_the_owner_gets_the_checked_result(net):
    owner, analyst, table = net["owner"], net["analyst"], net["table"]
    source = ("reveal(mean(data.age), 'mean_age')\n"
              "reveal(count(data.age, where=data.ui), 'claimed')\n"
              "reveal(mean(data.rr, where=data.ui), 'rr_of_claimants')\n")
    author, sig = sign_script(analyst, source)
    before = owner.ledger.claimable(author)
    out = run_job(owner, "people", source, author=author, signature=sig, reward=10**15,
                  dealer_seed=os.urandom(32))
    age = table.column("age").to_numpy()
    ui = table.column("ui").to_numpy(zero_copy_only=False) == "yes"
    rr = table.column("rr").to_numpy()
    assert abs(out.results["mean_age"].value - age.mean()) <= out.results["mean_age"].error
    assert out.results["claimed"].value == ui.sum()
    assert abs(out.results["rr_of_claimants"].value - rr[ui].mean()) <= (
        out.results["rr_of_claimants"].error + 2.0**-16)
    job = owner.ledger.job(out.job_id)
    assert job.status is JobStatus.ACCEPTED
    assert out.payout["to_nodes"] > 0 and out.payout["reward"] == 10**15
    assert owner.ledger.claimable(author) - before == 10**15
    for address in out.quorum:
        assert owner.ledger.commit_of(out.job_id, address).commitment.hex() == \
            out.commitments[address]
        assert owner.ledger.claimable(address) > 0


def test_a_script_changed_after_signing_is_refused_before_posting(net):
    owner, analyst = net["owner"], net["analyst"]
    author, sig = sign_script(analyst, "reveal(mean(data.age), 'mean_age')\n")
    jobs_before = len(owner.ledger.events())
    with pytest.raises(JobError, match="signature"):
        run_job(owner, "people", "reveal(sum(data.age), 'total_age')\n", author=author,
                signature=sig, dealer_seed=os.urandom(32))
    assert len(owner.ledger.events()) == jobs_before


def test_only_the_datasets_owner_may_start_a_job_on_it(net):
    owner, analyst, node = net["owner"], net["analyst"], net["nodes"][0]
    source = "reveal(mean(data.age), 'mean_age')\n"
    author, sig = sign_script(analyst, source)
    state = owner.state("people")
    job = owner.ledger.post_job(state.ledger_id, script_hash(source.encode()), author, sig, 3,
                                100, 10**6)
    stranger = Identity.generate()
    with Connection.open("127.0.0.1", node.port, stranger, node.node_id) as conn, \
            pytest.raises(ServiceError, match="only a dataset's owner"):
        conn.request("job-open", job_id=job.job_id, dataset="people", gen=state.gen)


def test_the_commitment_binds_every_share_and_the_job():
    x = np.arange(8, dtype=np.uint64).reshape(4, 2)
    z = x + np.uint64(1)
    c = result_commitment(7, x, z)
    assert c != result_commitment(8, x, z)
    assert c != result_commitment(7, z, x)
    y = x.copy()
    y[3, 1] ^= np.uint64(1)
    assert c != result_commitment(7, y, z)


def test_the_notebook_api_runs_a_script_file_and_lists_the_jobs(net, tmp_path):
    from enigma.app.api import Network, values

    owner, table = net["owner"], net["table"]
    api = Network(owner, net["chain"].url, net["root"] / "deployment.json")
    script = tmp_path / "tenure.py"
    script.write_text("reveal(sum(data.tenure), 'total_tenure')\n")
    out = api.run(script, "people", analyst=net["analyst"], insecure_dealer=True)
    assert values(out)["total_tenure"] == table.column("tenure").to_numpy().sum()
    listed = api.jobs()
    assert out.job_id in [j.job_id for j in listed]
    assert next(j for j in listed if j.job_id == out.job_id).status is JobStatus.ACCEPTED


REDUCE_SOURCE = ("reveal(mean(data.age), 'mean_age')\n"
                 "reveal(variance(data.age), 'var_age')\n"
                 "reveal(count(data.age, where=data.ui), 'claimed')\n"
                 "reveal(mean(data.rr, where=data.ui), 'rr_of_claimants')\n"
                 "reveal(std(data.tenure) * 2, 'two_sd_tenure')\n"
                 "reveal(histogram(data.sex), 'by_sex')\n"
                 "reveal(max(data.age, where=data.ui), 'oldest_claimant')\n")


@pytest.fixture(scope="module")
def chunked(net):
    """The same rows shared again in chunks of 64 rows (4 chunks), for split jobs."""
    owner = net["owner"]
    body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
    body.pop("rows", None)
    owner.share(net["root"] / "people.csv", Schema.from_dict(body), "chunked", t=1, n=3,
                chunk_rows=64)
    return "chunked"


def test_network_reduction_chunk_quorums_and_a_reducing_quorum_give_the_plain_result(
        net, chunked):
    owner, analyst, table = net["owner"], net["analyst"], net["table"]
    author, sig = sign_script(analyst, REDUCE_SOURCE)
    out = run_job(owner, chunked, REDUCE_SOURCE, author=author, signature=sig,
                  dealer_seed=os.urandom(32), chunk_quorums=2)
    assert len(out.sub_jobs) == 2 and out.reduction.startswith("2 chunk quorums")
    age = table.column("age").to_numpy().astype(float)
    tenure = table.column("tenure").to_numpy().astype(float)
    ui = table.column("ui").to_numpy(zero_copy_only=False) == "yes"
    rr = table.column("rr").to_numpy()
    sex = table.column("sex").to_numpy(zero_copy_only=False)
    r = out.results
    assert abs(r["mean_age"].value - age.mean()) <= r["mean_age"].error
    assert abs(r["var_age"].value - age.var()) <= r["var_age"].error
    assert r["claimed"].value == ui.sum()
    assert abs(r["rr_of_claimants"].value - rr[ui].mean()) <= (
        r["rr_of_claimants"].error + 2.0**-16)
    assert abs(r["two_sd_tenure"].value - 2 * tenure.std()) <= r["two_sd_tenure"].error
    levels = Schema.load(ROOT / "examples" / "benefits.yaml").column("sex").levels
    assert r["by_sex"].value.tolist() == [float((sex == lv).sum()) for lv in levels]
    assert r["oldest_claimant"].value == age[ui].max()
    for job_id in [out.job_id, *out.sub_jobs]:
        assert owner.ledger.job(job_id).status is JobStatus.ACCEPTED
    for sub in out.sub_jobs:
        for address in owner.ledger.job(sub).quorum:
            assert int.from_bytes(owner.ledger.commit_of(sub, address).pointer, "big") == \
                out.job_id
    # a reducer takes partials only from the sub-job member whose ledger key opened the channel
    node, member = net["nodes"][0], owner.ledger.job(out.sub_jobs[0]).quorum[1]
    part = np.zeros((3, 2), np.uint64)
    with Connection.open("127.0.0.1", node.port, Identity.generate(), node.node_id) as conn, \
            pytest.raises(ServiceError, match="the sender is not"):
        conn.request("job-partial", [part, part], parent=out.job_id, sub_job=out.sub_jobs[0],
                     sender=member, layout=[], rows=1)


def test_a_script_that_does_not_split_runs_on_one_quorum(net, chunked):
    owner, analyst = net["owner"], net["analyst"]
    source = "reveal(mean(data.age - mean(data.age)), 'centred')\n"
    author, sig = sign_script(analyst, source)
    out = run_job(owner, chunked, source, author=author, signature=sig,
                  dealer_seed=os.urandom(32), chunk_quorums=2)
    assert out.sub_jobs == [] and "meets an aggregate" in out.reduction
    assert abs(out.results["centred"].value) <= out.results["centred"].error + 1e-3


def test_a_chunk_quorum_that_refuses_stops_the_reducers_at_once(net, chunked):
    """plan() lets variance of a computed column through; the chunk quorums refuse it (its
    rounding error has no bound there): the owner hears why, without waiting the reducers'
    timeout, and accepts nothing."""
    import time

    owner, analyst = net["owner"], net["analyst"]
    source = "reveal(variance(data.rr * 1.5), 'v')\n"
    author, sig = sign_script(analyst, source)
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(ServiceError, match="computed column"):
        run_job(owner, chunked, source, author=author, signature=sig, timeout=120.0,
                dealer_seed=os.urandom(32), chunk_quorums=2, progress=said.append)
    assert time.monotonic() - started < 60
    parent = int(next(s for s in said if s.startswith("job ")).split()[1].rstrip(":"))
    assert owner.ledger.job(parent).status is JobStatus.OPEN


def test_a_chunk_member_that_tampers_with_its_partial_is_caught(tmp_path, monkeypatch):
    """A node that changes what it re-shares (fault injection: +1 on its part of P) makes
    the sealed check k P - Z non-zero: the owner refuses the result and accepts no job."""
    lines = (ROOT / "data" / "benefits.csv").read_text().splitlines()[:129]
    (tmp_path / "people.csv").write_text("\n".join(lines) + "\n")
    body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
    body.pop("rows", None)
    chain = start_devchain(accounts=6)
    deployment = tmp_path / "deployment.json"
    deploy(chain.url, chain.accounts[0], deployment)
    nodes = []
    try:
        for i in range(3):
            if i == 2:
                monkeypatch.setenv(FAULT_ENV, "tamper-partial")
            nodes.append(spawn_node(tmp_path / f"node{i}", chain.url, deployment,
                                    chain.accounts[1 + i],
                                    ("127.0.0.1", nodes[0].dht_port) if nodes else None))
        monkeypatch.delenv(FAULT_ENV)
        with Owner.open(tmp_path / "owner", chain.url, deployment, chain.accounts[0],
                        [("127.0.0.1", nodes[0].dht_port)]) as owner:
            owner.share(tmp_path / "people.csv", Schema.from_dict(body), "people", t=1, n=3,
                        chunk_rows=64)
            analyst = Ledger.connect(chain.url, chain.accounts[5], owner.ledger.deployment)
            source = "reveal(mean(data.age), 'mean_age')\n"
            author, sig = sign_script(analyst, source)
            said: list[str] = []
            with pytest.raises(JobError, match="changed between a chunk quorum"):
                run_job(owner, "people", source, author=author, signature=sig,
                        dealer_seed=os.urandom(32), chunk_quorums=2, progress=said.append)
            parent = int(next(s for s in said if s.startswith("job ")).split()[1].rstrip(":"))
            assert owner.ledger.job(parent).status is JobStatus.OPEN  # never accepted
        assert "FAULT INJECTION" in nodes[2].log()
    finally:
        for node in nodes:
            node.terminate()
        chain.stop()
