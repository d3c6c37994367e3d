"""`enigma up` / `enigma down` (app/network.py) on one home: the network resumes whole.

Issue 14, "restart forgets": `down` then `up` on the same home lost every dataset, job,
deposit and balance (the chain lived in memory), and a node restarted on a new port broke
`collect`, `repair` and `recover` (they used the ports saved in the progress file). One
network for the module: shared and used before the restart, resumed by the same code
`enigma up` runs; jobs use the test dealer to stay fast.
"""

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from enigma.app.localnet import spawn_node
from enigma.app.network import LocalNetwork, down
from enigma.app.orchestration import run_job, sign_script
from enigma.app.owner import Owner
from enigma.app.service import parse_endpoint
from enigma.lang.schema import Schema
from enigma.ledger import JobStatus, Ledger

pytestmark = pytest.mark.slow

SCHEMA = Schema.from_dict({"name": "people", "columns": [
    {"name": "age", "type": "int", "min": 0, "max": 130},
    {"name": "score", "type": "fixed", "min": -100, "max": 100},
]})
ROWS = 60
SOURCE = "reveal(sum(data.age), 'total_age')\n"


def _ledger_view(ledger: Ledger, nodes: list[str], accounts: list[str]) -> dict[str, object]:
    """What a restart must not forget: records, jobs, deposits, earnings and balances (not
    the nodes' own: each pays gas at restart to record its new endpoint)."""
    events = ledger.events()
    datasets = [ledger.dataset(int(a["dataset_id"])) for n, a in events if n == "DatasetPosted"]
    jobs = [ledger.job(int(a["job_id"])) for n, a in events if n == "JobPosted"]
    return {"datasets": [(d.dataset_id, d.owner, d.holders, d.expires_at) for d in datasets],
            "jobs": [(j.job_id, j.status, j.escrow, j.quorum) for j in jobs],
            "deposits": [ledger.node(a).deposit for a in nodes],
            "claimable": [ledger.claimable(a) for a in nodes],
            "balances": [ledger.balance(a) for a in accounts if a not in nodes]}


def _owner(net: LocalNetwork) -> Owner:
    """The owner as the CLI opens it: DHT joined through the endpoints on the ledger."""
    s = net.state
    return Owner.open(Path(s.home) / "owner", s.rpc, Path(s.deployment), s.owner_account)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A 2-node network that shared `people` 2-of-2 (so every holder must be reached) and
    ran a job, then went down and up again."""
    home = tmp_path_factory.mktemp("net")
    rng = np.random.default_rng(14)
    table = {"age": rng.integers(0, 131, ROWS), "score": rng.uniform(-100, 100, ROWS).round(2)}
    csv = home / "people.csv"
    csv.write_text("age,score\n" + "".join(f"{a},{s}\n" for a, s in zip(*table.values(),
                                                                        strict=True)))
    net = LocalNetwork.start(home, nodes=2)
    try:
        nodes = [n["address"] for n in net.state.nodes]
        with _owner(net) as owner:
            owner.share(csv, SCHEMA, "people", quorum=2, n=2)
            analyst = Ledger.connect(net.state.rpc, net.state.analyst_account,
                                     owner.ledger.deployment)
            author, sig = sign_script(analyst, SOURCE)
            first = run_job(owner, "people", SOURCE, author=author, signature=sig,
                            quorum_size=2, dealer_seed=os.urandom(32))
            before = _ledger_view(owner.ledger, nodes, net.state.accounts)
        deployment = Path(net.state.deployment).read_text()
        old_ports = {n["address"]: n["port"] for n in net.state.nodes}
    except BaseException:
        net.stop()
        raise
    down(home)
    net = LocalNetwork.start(home, nodes=2)
    try:
        yield {"net": net, "home": home, "table": table, "before": before, "first": first,
               "deployment": deployment, "old_ports": old_ports, "nodes": nodes}
    finally:
        net.stop()


def test_down_then_up_keeps_datasets_jobs_deposits_and_balances(resumed):
    """Every record of before the restart is there, at the same contract addresses; the
    owner reaches its holders (new ports) and a job runs on the data shared before."""
    net, home = resumed["net"], resumed["home"]
    assert Path(net.state.deployment).read_text() == resumed["deployment"]
    assert "resumed" in (home / "logs" / "chain.log").read_text()
    with _owner(net) as owner:
        after = _ledger_view(owner.ledger, resumed["nodes"], net.state.accounts)
        assert after == resumed["before"]
        assert after["datasets"] and after["jobs"][0][1] is JobStatus.ACCEPTED
        assert all(c > 0 for c in after["claimable"])  # the first job's earnings
        for n in net.state.nodes:  # each node told the ledger where it listens now
            assert parse_endpoint(owner.ledger.node(n["address"]).endpoint)[1:] == (
                n["port"], n["dht_port"])
        analyst = Ledger.connect(net.state.rpc, net.state.analyst_account,
                                 owner.ledger.deployment)
        author, sig = sign_script(analyst, SOURCE)
        out = run_job(owner, "people", SOURCE, author=author, signature=sig,
                      quorum_size=2, dealer_seed=os.urandom(32))
        assert out.job_id == resumed["first"].job_id + 1
        assert out.results["total_age"].value == resumed["table"]["age"].sum()
        assert owner.ledger.job(out.job_id).status is JobStatus.ACCEPTED


def test_up_writes_the_context_of_the_resumed_network(resumed):
    """`up` names the network it started (new chain port, new DHT port) in its context,
    and the API reaches it from there as the owner who shared `people` (issue 18)."""
    from enigma.app.api import connect_local
    from enigma.app.context import Context

    net, home = resumed["net"], resumed["home"]
    context = Context.load(Path(home) / "context.json")
    assert (context.rpc, context.deployment) == (net.state.rpc, net.state.deployment)
    assert context.owner_account == net.state.owner_account
    assert context.analyst_account == net.state.analyst_account
    assert context.node_accounts == resumed["nodes"]
    assert context.bootstrap == [f"127.0.0.1:{net.nodes[0].dht_port}"]
    assert context.owner_home == str(Path(home) / "owner")
    with connect_local(home) as api:
        assert api.owner.home == Path(home) / "owner"
        assert api.dataset_id("people") == api.owner.ledger.job(resumed["first"].job_id).dataset_id


def test_a_holder_restarted_on_a_new_port_is_still_reached(resumed):
    """The progress file keeps the port a holder had at `share`; collect, repair and
    refresh (a recover) find it where it listens now, from the DHT and the ledger."""
    net = resumed["net"]
    moved = net.nodes[0]
    saved = json.loads((Path(net.state.home) / "owner" / "datasets" / "people.json")
                       .read_text())
    saved_port = next(h["port"] for h in saved["holders"] if h["address"] == moved.address)
    moved.terminate()
    with socket.socket() as s:  # a port that is neither the saved nor the current one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert port not in (saved_port, moved.port)  # its DHT port stays: no dead DHT contact
    account = net.state.accounts[1]
    net.nodes[0] = spawn_node(moved.home, net.state.rpc, Path(net.state.deployment), account,
                              ("127.0.0.1", net.nodes[1].dht_port),
                              extra=["--port", str(port), "--dht-port", str(moved.dht_port)])
    assert net.nodes[0].port == port and net.nodes[0].address == moved.address
    with _owner(net) as owner:
        got = owner.collect("people")
        assert (got["age"] == resumed["table"]["age"]).all()
        assert np.abs(got["score"] - resumed["table"]["score"]).max() <= 2.0**-15
        assert owner.repair("people").healthy
        assert owner.refresh("people").gen == saved["gen"] + 1
        assert (owner.collect("people")["age"] == resumed["table"]["age"]).all()
