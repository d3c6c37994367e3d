"""A release policy on a local network: the ledger's budget decides, the members enforce it.

A chain, three node processes and the owner (`localnet.cluster`) on a few dozen rows of
data/benefits.csv, preprocessed by the test dealer to stay fast. The owner sets a policy
with an ε budget; a job that would overrun it is refused before anything is posted;
`enigma dataset budget` shows what is left; a member refuses a request whose ε is not
the job's record on the ledger; an analyst who paid for a job reads exactly the cells the
owner got (suppressed ones absent), and a stranger's key reads nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from enigma.app.cli import main
from enigma.app.disclosure import member_release, set_release
from enigma.app.job_facts import JobError
from enigma.app.localnet import cluster
from enigma.app.orchestration import run_job, sign_script, submit_job
from enigma.app.recipient import (
    ResultError,
    fetch_sealed,
    public_bytes,
    read_result,
    result_key,
    unseal,
)
from enigma.app.service import Connection, ServiceError
from enigma.lang.release import Release, ReleasePolicy
from enigma.lang.schema import Schema
from enigma.ledger import JobStatus, Policy, script_hash
from enigma.ledger.records import to_fixed

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ROWS = 60
SOURCE = "reveal(count(data.age, where=data.ui), 'claimed')\n"
GROUPS = ("reveal(group_by(data.state), 'workers')\n"  # 50 states, 60 rows: most too small
          "reveal(group_by(data.sex), 'by_sex')\n")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Three nodes; `people` shared 2-of-3 onto them, with an ε budget of 1 on the ledger."""
    root = tmp_path_factory.mktemp("release")
    lines = (ROOT / "data" / "benefits.csv").read_text().splitlines()[:ROWS + 1]
    (root / "people.csv").write_text("\n".join(lines) + "\n")
    body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
    body.pop("rows", None)
    with cluster(root, 3) as net:
        net.owner.share(root / "people.csv", Schema.from_dict(body), "people", t=2, n=3)
        dataset = net.owner.state("people").ledger_id
        set_release(net.owner.ledger, dataset, ReleasePolicy(n_min=5, epsilon_budget=1.0,
                                                             delta_budget=1e-6))
        yield net


def _cli(net: Any, *args: str, dht: bool = True) -> Any:
    """An owner's command as the owner of `net` (`enigma run` takes no DHT peers)."""
    chain = net.chain
    peers = ["--bootstrap", f"127.0.0.1:{net.nodes[0].dht_port}"] if dht else []
    return CliRunner().invoke(main, [
        *args, "--home", str(net.owner.home), "--rpc", chain.url, "--deployment",
        str(net.deployment), "--account", chain.accounts[0], *peers])


def _jobs(net: Any) -> int:
    return int(net.owner.ledger.call("jobs", "job_count"))


def test_the_budget_refuses_a_job_before_anything_is_posted(net: Any) -> None:
    author, sig = sign_script(net.analyst, SOURCE)
    before = _jobs(net)
    with pytest.raises(JobError, match=r"dataset people has ε 1 left; this job asks 1\.5"):
        run_job(net.owner, "people", SOURCE, author=author, signature=sig, epsilon=1.5,
                dealer_seed=os.urandom(32))
    with pytest.raises(JobError, match="is differentially private: say the ε this job spends"):
        run_job(net.owner, "people", SOURCE, author=author, signature=sig,
                dealer_seed=os.urandom(32))
    with pytest.raises(JobError, match=r"dataset 0 has ε 1 left; this job asks 3"):
        submit_job(net.analyst, net.owner.state("people").ledger_id, SOURCE, epsilon=3.0)
    assert _jobs(net) == before  # nothing posted, nothing paid
    said = _cli(net, "run", str(_script(net)), "--dataset", "people", "--epsilon", "2",
                "--author", author, "--signature", sig.hex(), "--insecure-dealer",
                "--time-limit", "60", dht=False)
    assert said.exit_code == 1 and "dataset people has ε 1 left; this job asks 2" in said.output
    assert _jobs(net) == before


def _script(net: Any) -> Path:
    path = net.root / "claimed.py"
    path.write_text(SOURCE)
    return path


def test_enigma_dataset_budget_and_release_show_the_ledger(net: Any) -> None:
    shown = _cli(net, "dataset", "budget", "people", "--json")
    assert shown.exit_code == 0, shown.output
    got = json.loads(shown.stdout)
    assert got["private"] and got["epsilon"]["total"] == 1.0
    assert got["epsilon"]["left"] == got["epsilon"]["total"] - got["epsilon"]["spent"]
    text = _cli(net, "dataset", "budget", "people")
    assert text.exit_code == 0 and "ε" in text.stdout and "left" in text.stdout
    policy = _cli(net, "dataset", "release", "people", "--json")
    assert json.loads(policy.stdout)["policy"]["n_min"] == 5
    tighter = _cli(net, "dataset", "release", "people", "--n-min", "6", "--json")
    assert tighter.exit_code == 0, tighter.output
    got = json.loads(tighter.stdout)["policy"]
    assert (got["n_min"], got["epsilon_budget"], got["dominance_k"]) == (6, 1.0, None)
    looser = _cli(net, "dataset", "release", "people", "--epsilon", "3")
    assert looser.exit_code == 1 and "Loosening" in looser.output
    assert "never be raised" in looser.output


def test_a_member_refuses_an_epsilon_other_than_the_ledgers(net: Any) -> None:
    owner = net.owner
    author, sig = sign_script(net.analyst, SOURCE)
    state = owner.state("people")
    spent = owner.ledger.release(state.ledger_id).epsilon_spent
    job = owner.ledger.post_job(state.ledger_id, script_hash(SOURCE.encode()), author, sig,
                                3, 100, 10_000, epsilon=0.125)
    member = next(n for n in net.nodes if n.address == job.quorum[0])
    try:
        with Connection.open("127.0.0.1", member.port, owner.identity, member.node_id) as conn, \
                pytest.raises(ServiceError, match=r"the ledger records \(0\.125, 0\)"):
            conn.request("job-open", job_id=job.job_id, dataset="people", gen=state.gen,
                         epsilon=to_fixed(0.1, "ε"), delta=0)
    finally:
        owner.ledger.cancel(job.job_id)  # never started: the 0.125 comes back
    assert not owner.ledger.job(job.job_id).started
    assert owner.ledger.release(state.ledger_id).epsilon_spent == spent


def test_a_member_refuses_a_release_other_than_the_ledgers(net: Any) -> None:
    """The owner states in `job-run` the release its replays would run under; a member
    refuses one that is not the ledger's (here: the policy loosened to n_min 1) before it
    computes or marks the job started, with a record that names nobody but the owner."""
    owner = net.owner
    author, sig = sign_script(net.analyst, SOURCE)
    state = owner.state("people")
    job = owner.ledger.post_job(state.ledger_id, script_hash(SOURCE.encode()), author, sig,
                                3, 100, 10_000, epsilon=0.125)
    ours = member_release(owner.ledger.release(state.ledger_id), job)
    assert ours is not None
    loose = Release(replace(ours.policy, n_min=1), ours.epsilon, ours.delta)
    member = next(n for n in net.nodes if n.address == job.quorum[0])
    try:
        with Connection.open("127.0.0.1", member.port, owner.identity, member.node_id) as conn:
            conn.request("job-open", job_id=job.job_id, dataset="people", gen=state.gen,
                         epsilon=job.epsilon, delta=job.delta)
            with pytest.raises(ServiceError, match="the owner states the release") as refused:
                conn.request("job-run", [np.zeros(4, np.uint64)], job_id=job.job_id,
                             source=SOURCE, filename="<script>", schema=state.schema,
                             timeout=5.0, budget={"steps": 10**6, "elements": 10**6,
                                                  "seconds": 5.0, "memory_mb": 100},
                             dealer_seed=None, blame=True, release=loose.as_dict(),
                             peers=[])
        assert refused.value.kind == "bad-request" and refused.value.abort
    finally:
        owner.ledger.cancel(job.job_id)
    assert not owner.ledger.job(job.job_id).started  # refused before any computation


def test_an_analyst_receives_exactly_the_released_cells(net: Any) -> None:
    owner, analyst = net.owner, net.analyst
    state = owner.state("people")
    owner.ledger.set_policy(state.ledger_id, Policy.OPEN)
    spent = owner.ledger.release(state.ledger_id).epsilon_spent
    # δ: the jointly drawn noise's distance from its exact law (docs/disclosure.md)
    posted = submit_job(analyst, state.ledger_id, GROUPS, epsilon=0.25, delta=1e-9)
    assert posted.recipient == public_bytes(result_key(analyst))
    with pytest.raises(ResultError, match="members hand out released results once"):
        read_result(analyst, posted.job_id)  # not run, not accepted: nothing to read yet
    out = run_job(owner, "people", GROUPS, posted_job=posted.job_id,
                  dealer_seed=os.urandom(32))
    job = owner.ledger.job(posted.job_id)
    assert not out.incidents, [i.error for i in out.incidents]
    assert job.started and job.status is JobStatus.ACCEPTED
    assert owner.ledger.release(state.ledger_id).epsilon_spent == spent + to_fixed(0.25, "ε")
    cells = read_result(analyst, posted.job_id)
    assert set(cells) == set(out.results) == {"workers", "by_sex"}
    for name, r in out.results.items():  # the owner's cells, NaN where suppressed
        np.testing.assert_array_equal(cells[name].value, r.value)
    workers = cells["workers"].value
    assert np.isnan(workers).any() and not np.isnan(cells["by_sex"].value).any()
    shown = CliRunner().invoke(main, [
        "job", "result", str(posted.job_id), "--json", "--rpc", net.chain.url,
        "--deployment", str(net.deployment), "--account", analyst.address])
    assert shown.exit_code == 0, shown.output
    assert set(json.loads(shown.stdout)["results"]) == {"workers", "by_sex"}
    stranger = net.ledger(net.chain.accounts[-1])
    with pytest.raises(ResultError, match="seals its results to another key"):
        read_result(stranger, posted.job_id)
    blobs = fetch_sealed(stranger, posted.job_id)  # anyone may fetch the sealed copies ...
    for party, blob in enumerate(blobs):  # ... and open none of them
        with pytest.raises(ResultError, match="not sealed to this key"):
            unseal(result_key(stranger), posted.job_id, party, blob)


@pytest.mark.parametrize("epsilon, delta, says", [
    (-1.0, 0.0, "the job's ε must be a finite number ≥ 0"),
    (float("nan"), 0.0, "the job's ε must be a finite number ≥ 0"),
    (None, 1e-30, "the job's δ 1e-30 is finer than the ledger's resolution"),
    (0.5, 0.0, "spends ε 1 on the ledger, not 0.5"),
])
def test_a_posted_jobs_spend_stated_wrongly_is_a_job_error(epsilon: float | None, delta: float,
                                                           says: str) -> None:
    from enigma.app.disclosure import posted_spend
    from enigma.ledger.records import JobInfo

    job = JobInfo(7, 1, "0x" + "1" * 40, "0x" + "2" * 40, bytes(32), "0x" + "2" * 40, 0, 0,
                  1, 1, [], bytes(32), 0, JobStatus.OPEN, 0, epsilon=to_fixed(1.0, "ε"))
    with pytest.raises(JobError, match=says):
        posted_spend(job, epsilon, delta)
