"""End to end: a chain, node processes, the DHT, an owner, an analyst; jobs through real nodes.

The flow of a job (`app/orchestration.py`, `app/node_jobs.py`) on a few hundred rows of
data/benefits.csv: the owner shares the table t-of-n onto every node, the analyst signs
scripts, the owner posts them as jobs, the drawn quorum computes, the owner checks each
result against numpy and accepts, and the ledger pays the nodes and the author.
"""

import contextlib
import os
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from enigma.app.job_facts import FAULT_ENV, JobError, result_commitment, result_meta
from enigma.app.localnet import cluster
from enigma.app.orchestration import run_job, sign_script, submit_job
from enigma.app.service import Connection, ServiceError
from enigma.lang.schema import Schema
from enigma.ledger import JobStatus, Policy, script_hash
from enigma.ledger.errors import AccessDenied
from enigma.net.identity import Identity

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ROWS = 240
#: The nodes of `net` top their quorum's HE stock up to this many triples after each job.
PREP_AHEAD = 16384


def _people_csv(path: Path, rows: int) -> None:
    """The first `rows` rows of data/benefits.csv (the header kept) at `path`."""
    lines = (ROOT / "data" / "benefits.csv").read_text().splitlines()[:rows + 1]
    path.write_text("\n".join(lines) + "\n")


def _people_schema() -> Schema:
    """examples/benefits.yaml without its row count (the tests share fewer rows)."""
    body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
    body.pop("rows", None)
    return Schema.from_dict(body)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """Three nodes; `people` shared 2-of-3 onto them."""
    root = tmp_path_factory.mktemp("e2e")
    _people_csv(root / "people.csv", ROWS)
    with cluster(root, 3, extra=["--prep-ahead", str(PREP_AHEAD)]) as net:
        net.owner.share(root / "people.csv", _people_schema(), "people", t=2, n=3)
        yield net


@pytest.fixture(scope="module")
def table(net):
    """The rows `people` holds, as the owner read them."""
    return pacsv.read_csv(net.root / "people.csv",
                          convert_options=pacsv.ConvertOptions(strings_can_be_null=False))


def test_a_job_runs_on_the_quorum_and_the_owner_gets_the_checked_result(net, table):
    owner, analyst = net.owner, net.analyst
    source = ("reveal(mean(data.age), 'mean_age')\n"
              "reveal(count(data.age, where=data.ui), 'claimed')\n"
              "reveal(mean(data.rr, where=data.ui), 'rr_of_claimants')\n"
              "reveal(proportion(data.ui), 'share_claimed')\n")
    author, sig = sign_script(analyst, source)
    before = owner.ledger.claimable(author)
    out = run_job(owner, "people", source, author=author, signature=sig, reward=10**15)
    assert not out.insecure_dealer and out.stats["prep"]["provider"] == "he"
    age = table.column("age").to_numpy()
    ui = table.column("ui").to_numpy(zero_copy_only=False) == "yes"
    rr = table.column("rr").to_numpy()
    assert abs(out.results["mean_age"].value - age.mean()) <= out.results["mean_age"].error
    assert out.results["claimed"].value == ui.sum()
    assert abs(out.results["rr_of_claimants"].value - rr[ui].mean()) <= (
        out.results["rr_of_claimants"].error + 2.0**-16)
    share = out.results["share_claimed"]  # a test: the owner adds its interval
    assert share.test == "proportion" and (share.detail["count"], share.detail["n"]) == \
        (ui.sum(), len(ui))
    assert share.detail["ci_low"] < ui.mean() < share.detail["ci_high"]
    job = owner.ledger.job(out.job_id)
    assert job.status is JobStatus.ACCEPTED
    assert out.payout["to_nodes"] > 0 and out.payout["reward"] == 10**15
    assert owner.ledger.claimable(author) - before == 10**15
    for address in out.quorum:
        assert owner.ledger.commit_of(out.job_id, address).commitment.hex() == \
            out.commitments[address]
        assert owner.ledger.claimable(address) > 0


def test_members_log_a_jobs_phases_and_count_it_on_their_metrics(net):
    """What an operator sees of a job: its phases at INFO in node.log, the job, its phase
    latencies, the bytes sent and the preprocessing stock on /metrics (app/logs.py,
    app/metrics.py); never a value."""
    owner, analyst = net.owner, net.analyst
    source = "reveal(sum(data.age), 'total_age')\n"
    author, sig = sign_script(analyst, source)
    out = run_job(owner, "people", source, author=author, signature=sig,
                  dealer_seed=os.urandom(32))
    total = int(out.results["total_age"].value)
    members = [n for n in net.nodes if n.address in out.quorum]
    assert len(members) == 3
    for node in members:
        log = (node.home / "node.log").read_text()
        for phase in ("read_shares", "mesh", "connect", "commit"):
            assert f"job {out.job_id}: {phase} took" in log
        assert f"job {out.job_id} done in" in log and " INFO enigma.app.node_jobs: " in log
        assert str(total) not in log
        metrics = urllib.request.urlopen(
            f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10).read().decode()
        ok = _metric(metrics, 'enigma_node_jobs_total{outcome="ok",role="single"}')
        assert ok >= 1
        assert _metric(metrics, 'enigma_node_job_phase_seconds_count{phase="read_shares"}') >= ok
        assert _metric(metrics, "enigma_node_mpc_sent_bytes_total") > 0
        assert _metric(metrics, 'enigma_node_prep_stock{kind="triples"}') >= 0


def _metric(text: str, name: str) -> float:
    """The value of one sample in Prometheus' text format."""
    return float(next(line for line in text.splitlines()
                      if line.startswith(name + " ")).split()[-1])


def test_a_script_changed_after_signing_is_refused_before_posting(net):
    owner, analyst = net.owner, net.analyst
    author, sig = sign_script(analyst, "reveal(mean(data.age), 'mean_age')\n")
    jobs_before = len(owner.ledger.events())
    with pytest.raises(JobError, match="signature"):
        run_job(owner, "people", "reveal(sum(data.age), 'total_age')\n", author=author,
                signature=sig)
    assert len(owner.ledger.events()) == jobs_before


def test_only_the_datasets_owner_may_start_a_job_on_it(net):
    owner, analyst, node = net.owner, net.analyst, net.nodes[0]
    source = "reveal(mean(data.age), 'mean_age')\n"
    author, sig = sign_script(analyst, source)
    state = owner.state("people")
    job = owner.ledger.post_job(state.ledger_id, script_hash(source.encode()), author, sig, 3,
                                100, 10**6)
    stranger = Identity.generate()
    with Connection.open("127.0.0.1", node.port, stranger, node.node_id) as conn, \
            pytest.raises(ServiceError, match="only a dataset's owner"):
        conn.request("job-open", job_id=job.job_id, dataset="people", gen=state.gen)


def test_an_analyst_pays_for_a_job_on_an_open_dataset_and_only_the_owner_reads_it(net, table):
    """Open policy: the analyst's account posts and pays; the owner runs the posted job
    (nodes take job-open from the owner alone) and reads the result; the escrow is paid
    out to the nodes, the reward to the author and the rest back to the analyst."""
    owner, analyst, node = net.owner, net.analyst, net.nodes[0]
    state = owner.state("people")
    source = "reveal(mean(data.age), 'mean_age')\nreveal(sum(data.tenure), 'total_tenure')\n"
    owner.ledger.set_policy(state.ledger_id, Policy.OPEN)
    try:
        wallet, owner_wallet = analyst.balance(), owner.ledger.balance()
        owner_credit = owner.ledger.claimable(owner.ledger.address)
        job = submit_job(analyst, state.ledger_id, source, reward=10**15,
                         schema=Schema.from_dict(state.schema))
        assert (job.poster, job.owner, job.author) == (analyst.address, owner.ledger.address,
                                                       analyst.address)
        assert wallet - analyst.balance() >= job.escrow > 0  # the fee left the analyst's wallet
        assert owner.ledger.balance() == owner_wallet
        # the analyst holds the job id but cannot start it on the nodes: only the owner can
        with Connection.open("127.0.0.1", node.port, Identity.generate(), node.node_id) as conn, \
                pytest.raises(ServiceError, match="only a dataset's owner"):
            conn.request("job-open", job_id=job.job_id, dataset="people", gen=state.gen)
        credit = owner.ledger.claimable(analyst.address)
        out = run_job(owner, "people", source, posted_job=job.job_id, author=analyst.address)
    finally:
        owner.ledger.set_policy(state.ledger_id, Policy.OWNER_ONLY)
    age, tenure = table.column("age").to_numpy(), table.column("tenure").to_numpy()
    assert abs(out.results["mean_age"].value - age.mean()) <= out.results["mean_age"].error
    assert out.results["total_tenure"].value == tenure.sum()
    assert out.job_id == job.job_id and out.poster == analyst.address
    assert owner.ledger.job(job.job_id).status is JobStatus.ACCEPTED
    events = owner.ledger.events()
    [posted] = [a for n, a in events if n == "JobPosted" and a["job_id"] == job.job_id]
    assert posted["poster"] == analyst.address and posted["escrow"] == job.escrow
    credited: dict[str, int] = {}
    for name, a in events:
        if name == "Credited" and a.get("job_id") == job.job_id:  # jobs.vy, not datasets.vy
            credited[a["account"]] = credited.get(a["account"], 0) + a["amount"]
    assert sum(credited.values()) == job.escrow  # nothing created or lost
    assert credited[analyst.address] == out.payout["reward"] + out.payout["refund"]
    assert out.payout["reward"] == 10**15 and out.payout["refund"] > 0
    assert owner.ledger.address not in credited
    assert set(credited) - {analyst.address} == set(out.quorum)
    assert owner.ledger.claimable(analyst.address) - credit == credited[analyst.address]
    assert owner.ledger.claimable(owner.ledger.address) == owner_credit


def test_an_analyst_may_not_post_a_job_on_an_owner_only_dataset(net):
    owner, analyst = net.owner, net.analyst
    state = owner.state("people")
    assert owner.ledger.dataset(state.ledger_id).policy is Policy.OWNER_ONLY
    posted = sum(1 for n, _ in owner.ledger.events() if n == "JobPosted")
    with pytest.raises(JobError, match="owner-only: its policy does not let") as refused:
        submit_job(analyst, state.ledger_id, "reveal(mean(data.age), 'mean_age')\n")
    assert isinstance(refused.value.__cause__, AccessDenied)  # the contract's own refusal
    assert sum(1 for n, _ in owner.ledger.events() if n == "JobPosted") == posted
    from click.testing import CliRunner

    from enigma.app.cli import main

    script = net.root / "analyst_mean.py"
    script.write_text("reveal(mean(data.age), 'mean_age')\n")
    got = CliRunner().invoke(main, ["job", "post", str(script), "--dataset",
                                    str(state.ledger_id), "--rpc", net.rpc,
                                    "--deployment", str(net.deployment),
                                    "--account", analyst.address])
    assert got.exit_code == 1 and "its policy does not let" in got.output
    assert sum(1 for n, _ in owner.ledger.events() if n == "JobPosted") == posted


def test_a_posted_job_whose_script_is_not_the_owners_text_is_refused_before_any_node(net, table):
    owner, analyst, nodes = net.owner, net.analyst, net.nodes
    state = owner.state("people")
    posted_source = "reveal(sum(data.tenure), 'total_tenure')\n"
    owner.ledger.set_policy(state.ledger_id, Policy.OPEN)
    try:
        job = submit_job(analyst, state.ledger_id, posted_source)
    finally:
        owner.ledger.set_policy(state.ledger_id, Policy.OWNER_ONLY)
    said: list[str] = []
    with pytest.raises(JobError, match="posted for another script"):
        run_job(owner, "people", "reveal(mean(data.tenure), 'mean_tenure')\n",
                posted_job=job.job_id, progress=said.append)
    assert not any("computing" in s for s in said)
    record = owner.ledger.job(job.job_id)
    assert record.status is JobStatus.OPEN and record.commits == 0
    assert not any(f"job {job.job_id} " in n.log() for n in nodes)  # no node heard of it
    with pytest.raises(JobError, match="names author"):  # nor one by another author
        run_job(owner, "people", posted_source, posted_job=job.job_id,
                author=owner.ledger.address)
    # the text it was posted for runs (and the policy may have closed since: it was paid)
    out = run_job(owner, "people", posted_source, posted_job=job.job_id)
    assert out.results["total_tenure"].value == table.column("tenure").to_numpy().sum()


def test_the_commitment_binds_every_share_and_the_job():
    x = np.arange(8, dtype=np.uint64).reshape(4, 2)
    z = x + np.uint64(1)
    meta = result_meta({"layout": [["m", [], 16, 1e-5, 0.0, 1.0]], "exact": {},
                        "printed": []})
    c = result_commitment(7, x, z, meta)
    assert c != result_commitment(8, x, z, meta)
    assert c != result_commitment(7, z, x, meta)
    y = x.copy()
    y[3, 1] ^= np.uint64(1)
    assert c != result_commitment(7, y, z, meta)
    # the public facts too: a scale, a bound or an exact value changed is another commitment
    for other in ({"layout": [["m", [], 15, 1e-5, 0.0, 1.0]], "exact": {}, "printed": []},
                  {"layout": [["m", [], 16, 1e-5, 0.0, 1.0]], "exact": {"n": 3.0},
                   "printed": []}):
        assert c != result_commitment(7, x, z, result_meta(other))


def test_the_notebook_api_runs_a_script_file_and_lists_the_jobs(net, tmp_path, table):
    from enigma.app.api import Network, values

    owner = net.owner
    api = Network(owner, net.rpc, net.deployment)
    script = tmp_path / "tenure.py"
    script.write_text("reveal(sum(data.tenure), 'total_tenure')\n")
    out = api.run(script, "people", analyst=net.analyst)
    assert values(out)["total_tenure"] == table.column("tenure").to_numpy().sum()
    listed = api.jobs()
    assert out.job_id in [j.job_id for j in listed]
    assert next(j for j in listed if j.job_id == out.job_id).status is JobStatus.ACCEPTED


def test_the_notebook_api_lets_an_analyst_pay_and_the_owner_read(net, tmp_path, table):
    from enigma.app.api import Network, submit, values

    owner = net.owner
    api = Network(owner, net.rpc, net.deployment)
    script = tmp_path / "tenure.py"
    script.write_text("reveal(max(data.tenure), 'longest')\n")
    with pytest.raises(JobError, match="owner-only"):
        submit(net.analyst, script, api.dataset_id("people"))
    api.set_policy("people", Policy.ALLOW_LIST, analysts=[net.analyst.address])
    try:
        with pytest.raises(JobError, match="digest differs"):  # the shared one has no `rows`
            submit(net.analyst, script, api.dataset_id("people"),
                   schema=ROOT / "examples" / "benefits.yaml")
        job = submit(net.analyst, script, api.dataset_id("people"),
                     schema=Schema.from_dict(owner.state("people").schema))
    finally:
        api.set_policy("people", Policy.OWNER_ONLY)
    out = api.run(script, "people", posted_job=job.job_id)
    assert values(out)["longest"] == table.column("tenure").to_numpy().max()
    assert out.poster == net.analyst.address != owner.ledger.address


def test_a_quorum_larger_than_t_plus_1_is_refused_and_status_marks_weak_data(net, tmp_path):
    """`people` is shared 3-of-3 for quorums of 3 (t = 2): a quorum of 4 would be meant to
    resist 3 colluders while any 3 holders read the data, so it is refused before posting.
    A table shared weak (t = 1 for quorums of 3) is marked WEAK by `enigma status`, from the
    owner's progress file or else from its DHT record."""
    from click.testing import CliRunner

    from enigma.app.network import NetworkState, status, status_command

    owner, chain = net.owner, net.chain
    state = owner.state("people")
    assert (state.t, len(state.holders), state.quorum, state.weak) == (2, 3, 3, False)
    source = "reveal(mean(data.age), 'mean_age')\n"
    author, sig = sign_script(net.analyst, source)
    posted = sum(1 for n, _ in owner.ledger.events() if n == "JobPosted")
    with pytest.raises(JobError, match=r"any 3 of its 3 holders can read 'people' \(t = 2\), "
                                       "fewer than this quorum of 4"):
        run_job(owner, "people", source, author=author, signature=sig, quorum_size=4)
    assert sum(1 for n, _ in owner.ledger.events() if n == "JobPosted") == posted
    weak = owner.share(net.root / "people.csv", _people_schema(), "weakly", t=1, weak=True)
    assert (weak.threshold.t, weak.threshold.n, weak.threshold.weak) == (1, 3, True)
    nodes = [{"pid": 0, "home": str(n.home), "address": n.address, "port": n.port,
              "dht_port": n.dht_port, "metrics_port": n.metrics_port} for n in net.nodes]
    for home, source_of in ((tmp_path / "with-owner", "progress file"),
                            (tmp_path / "dht-only", "dht")):
        home.mkdir()
        NetworkState(str(home), chain.url, str(net.deployment), 0,
                     chain.accounts, nodes).save()
        if source_of == "progress file":
            (home / "owner").symlink_to(net.root / "owner")
        report = {d["name"]: d for d in status(home)["datasets"]}
        assert {k: report["weakly"][k] for k in ("t", "n", "quorum", "weak")} == {
            "t": 1, "n": 3, "quorum": 3, "weak": True}
        assert report["people"]["weak"] is False
        assert report["weakly"]["threshold_from"] == source_of
    text = CliRunner().invoke(status_command, ["--home", str(tmp_path / "with-owner")]).output
    [line] = [x for x in text.splitlines() if "weakly:" in x]
    assert "WEAK: any t+1 = 2 holders can read it, fewer than a quorum of 3" in line
    [line] = [x for x in text.splitlines() if "people:" in x]
    assert "t=2 n=3 for quorums of 3" in line and "WEAK" not in line


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
    owner = net.owner
    owner.share(net.root / "people.csv", _people_schema(), "chunked", t=2, n=3,
                chunk_rows=64)
    return "chunked"


def test_network_reduction_chunk_quorums_and_a_reducing_quorum_give_the_plain_result(
        net, chunked, table):
    owner, analyst = net.owner, net.analyst
    author, sig = sign_script(analyst, REDUCE_SOURCE)
    out = run_job(owner, chunked, REDUCE_SOURCE, author=author, signature=sig, chunk_quorums=2)
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
    # (a key that is no ledger node is refused before that, by the node's admission)
    node, member = net.nodes[0], owner.ledger.job(out.sub_jobs[0]).quorum[1]
    part = np.zeros((3, 2), np.uint64)
    with Connection.open("127.0.0.1", node.port, Identity.generate(), node.node_id) as conn, \
            pytest.raises(ServiceError, match="is for registered nodes and owners"):
        conn.request("job-partial", [part, part], parent=out.job_id, sub_job=out.sub_jobs[0],
                     sender=member, layout=[], rows=1)
    other = next(n for n in net.nodes[1:] if n.address != member)
    with Connection.open("127.0.0.1", node.port, Identity.load(other.home / "node.key"),
                         node.node_id) as conn, \
            pytest.raises(ServiceError, match="the sender is not"):
        conn.request("job-partial", [part, part], parent=out.job_id, sub_job=out.sub_jobs[0],
                     sender=member, layout=[], rows=1)


KMEANS_SOURCE = ("reveal(count(data.age, where=data.ui), 'claimed')\n"
                 "reveal(kmeans([data.age, data.tenure], k=2, iters=2), 'centers')\n"
                 "reveal(mean(data.age), 'mean_age')\n")
"""A k-means with a count before it (first batch) and a mean after (a last batch). Small
(k = 2, 2 iterations, 2 features): on HE preprocessing each row and iteration costs
k - 1 comparisons, about 35 ms of production here (examples/clusters.py would take
minutes)."""


def _plain(source: str, table_path: Path) -> dict:
    """The plaintext reference (float64, the same start and iterations as the engine)."""
    from enigma.lang.checker import check
    from enigma.lang.plain import run_plain

    schema = _people_schema()
    return run_plain(check(source, schema), schema, schema.read_csv(table_path)).results


def test_network_reduction_of_kmeans_re_shares_the_centroids_every_iteration(net, chunked):
    """A k-means (k = 2, 2 iterations) over 2 chunk quorums, HE preprocessing: each
    iteration's counts and sums come from the chunks, the reducers' centroids go back to
    them with k-MACs; the centroids match plaintext Lloyd within their stated bound."""
    owner, analyst = net.owner, net.analyst
    author, sig = sign_script(analyst, KMEANS_SOURCE)
    out = run_job(owner, chunked, KMEANS_SOURCE, author=author, signature=sig, chunk_quorums=2)
    assert len(out.sub_jobs) == 2 and out.reduction.startswith("2 chunk quorums")
    want = _plain(KMEANS_SOURCE, net.root / "people.csv")
    got = out.results["centers"]
    assert got.value.shape == (2, 2)
    assert np.all(np.abs(got.value - want["centers"].value) <= got.error), (
        got.value, want["centers"].value, got.error)
    assert abs(out.results["mean_age"].value - want["mean_age"].value) <= \
        out.results["mean_age"].error
    assert out.results["claimed"].value == want["claimed"].value
    for job_id in [out.job_id, *out.sub_jobs]:
        assert owner.ledger.job(job_id).status is JobStatus.ACCEPTED
    assert out.timings["chunk.wait_reshare"] > 0  # the chunk quorums waited for centroids


def test_the_owner_expects_one_sealed_check_per_hand_over_batch():
    from enigma.app.split_jobs import check_names
    from enigma.lang.reduction import CHECK_NAME

    km = [{"func": "kmeans", "iteration": i} for i in range(3)]
    assert check_names([{"func": "mean"}, {"func": "sum"}]) == {CHECK_NAME}
    assert check_names([{"func": "count"}, *km]) == {CHECK_NAME, CHECK_NAME + "1",
                                                      CHECK_NAME + "2"}
    assert check_names([*km, {"func": "sum"}]) == {CHECK_NAME} | {
        f"{CHECK_NAME}{b}" for b in (1, 2, 3)}


def test_a_script_that_does_not_split_runs_on_one_quorum(net, chunked):
    owner, analyst = net.owner, net.analyst
    source = "reveal(mean(data.age - mean(data.age)), 'centred')\n"
    author, sig = sign_script(analyst, source)
    out = run_job(owner, chunked, source, author=author, signature=sig, chunk_quorums=2)
    assert out.sub_jobs == [] and "meets an aggregate" in out.reduction
    assert abs(out.results["centred"].value) <= out.results["centred"].error + 1e-3


def test_a_chunk_quorum_that_refuses_stops_the_reducers_at_once(net, chunked):
    """plan() lets variance of a computed column through; the chunk quorums refuse it (its
    rounding error has no bound there): the owner hears why, without waiting the reducers'
    timeout, and accepts nothing."""
    import time

    owner, analyst = net.owner, net.analyst
    source = "reveal(variance(data.rr * 1.5), 'v')\n"
    author, sig = sign_script(analyst, source)
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(ServiceError, match="computed column"):
        run_job(owner, chunked, source, author=author, signature=sig, timeout=120.0,
                chunk_quorums=2, progress=said.append)
    assert time.monotonic() - started < 60
    parent = int(next(s for s in said if s.startswith("job ")).split()[1].rstrip(":"))
    assert owner.ledger.job(parent).status is JobStatus.CANCELLED


# ---------------------------------------------------------------- preprocessing stock per quorum

STOCK_SOURCE = "reveal(mean(data.age), 'mean_age')\nreveal(mean(data.tenure), 'mean_tenure')\n"


def _stock_counts(net, quorum: list[str], timeout: float = 120.0) -> list[dict[str, int]]:
    """Each node's stock counts for `quorum`, once every node has saved it (the save after a
    job runs in the background while the owner settles)."""
    import time

    from enigma.app.stock import QuorumStocks, quorum_id
    from enigma.field import Field

    qid = quorum_id(quorum, Field().p)
    stocks = [QuorumStocks(n.home, Field()) for n in net.nodes]
    deadline = time.monotonic() + timeout
    while not all(s.path(qid).exists() for s in stocks):
        assert time.monotonic() < deadline, "a node did not save its stock"
        time.sleep(0.2)
    return [s.counts(qid) for s in stocks]


def _qid(members: list[str]) -> str:
    from enigma.app.stock import quorum_id
    from enigma.field import Field

    return quorum_id(members, Field().p)


def _prep(net, *args: str):
    from click.testing import CliRunner

    from enigma.app.node import node_command

    return CliRunner().invoke(node_command, ["prep", "--home", str(net.nodes[0].home),
                                             *args])


def test_node_prep_fills_the_quorums_stock_and_jobs_consume_it_without_producing(net, table):
    """`enigma node prep` makes the quorum's stock; a job on that quorum takes its triples
    and bits from it (nothing produced), and the members top it up (--prep-ahead) and save
    it after the job; a second job runs on that stock, again producing no triple or bit;
    `enigma node prep` without peers finds the quorum again."""
    import json

    owner, analyst, nodes = net.owner, net.analyst, net.nodes
    members = sorted(n.address for n in nodes)
    people = owner.state("people").ledger_id
    if any(owner.ledger.job(a["job_id"]).dataset_id == people
           for name, a in owner.ledger.events() if name == "JobAccepted"):
        _stock_counts(net, members)  # earlier jobs here: their saves are done
    for node in nodes:  # start fresh
        (node.home / "prep" / f"{_qid(members)}.stock").unlink(missing_ok=True)
    peers = [f"--with={n.address}" for n in nodes[1:]]
    got = _prep(net, "--triples", "16384", "--bits", "4096", *peers)
    assert got.exit_code == 0, got.output
    made = json.loads(got.output)
    assert made["resumed"] == {"triples": 0, "bits": 0, "inputs": 0}
    assert made["in_stock"] == {"triples": 16384, "bits": 16384, "inputs": 0}  # whole batches
    assert _stock_counts(net, members) == [made["in_stock"]] * 3
    author, sig = sign_script(analyst, STOCK_SOURCE)
    age, tenure = table.column("age").to_numpy(), table.column("tenure").to_numpy()
    left = made["in_stock"]
    jobs = []
    for _ in range(2):
        out = run_job(owner, "people", STOCK_SOURCE, author=author, signature=sig)
        jobs.append(out.job_id)
        prep = out.stats["prep"]
        assert prep["provider"] == "he" and not prep["discarded"]
        assert prep["resumed"] == left
        assert prep["produced"]["triples"] == 0 and prep["produced"]["bits"] == 0
        assert prep["in_stock"]["triples"] < left["triples"]  # the job consumed some
        assert abs(out.results["mean_age"].value - age.mean()) <= out.results["mean_age"].error
        assert abs(out.results["mean_tenure"].value - tenure.mean()) <= \
            out.results["mean_tenure"].error
        saved = _stock_counts(net, out.quorum)
        assert saved[0] == saved[1] == saved[2]
        assert saved[0]["triples"] >= PREP_AHEAD  # topped up after the job if it fell below
        if not jobs[1:]:  # the first job left less than PREP_AHEAD: the members made more
            assert prep["in_stock"]["triples"] < PREP_AHEAD < saved[0]["triples"]
        assert saved[0]["bits"] == prep["in_stock"]["bits"]  # no bits asked ahead
        left = saved[0]
    # without --with, the node refills every quorum it has saved a stock for
    got = _prep(net, "--triples", str(PREP_AHEAD))
    assert got.exit_code == 0, got.output
    [again] = [json.loads(line) for line in got.output.splitlines()]
    assert again["members"] == [a.lower() for a in members]
    assert again["resumed"] == left and again["produced"]["triples"] == 0


def test_stock_out_of_step_among_the_members_is_discarded_and_the_job_runs(net, table):
    owner, analyst, nodes = net.owner, net.analyst, net.nodes
    author, sig = sign_script(analyst, STOCK_SOURCE)
    first = run_job(owner, "people", STOCK_SOURCE, author=author, signature=sig)
    _stock_counts(net, first.quorum)  # every member saved the quorum's stock
    (nodes[0].home / "prep" / f"{_qid(first.quorum)}.stock").unlink()
    out = run_job(owner, "people", STOCK_SOURCE, author=author, signature=sig)
    prep = out.stats["prep"]
    assert prep["discarded"] and prep["resumed"] == {"triples": 0, "bits": 0, "inputs": 0}
    assert prep["produced"]["triples"] > 0
    age = table.column("age").to_numpy()
    assert abs(out.results["mean_age"].value - age.mean()) <= out.results["mean_age"].error
    assert "peers resume a preprocessing stock this node does not have" in nodes[0].log()
    assert all("out of step with its peers'; discarded" in n.log() for n in nodes[1:])
    saved = _stock_counts(net, out.quorum)
    assert saved[0] == saved[1] == saved[2] and saved[0]["triples"] >= PREP_AHEAD  # in step


def test_node_prep_refuses_a_peer_that_is_not_a_registered_node(net):
    got = _prep(net, "--with", "0x000000000000000000000000000000000000dEaD")
    assert got.exit_code == 1
    assert "unknown peers ['0x000000000000000000000000000000000000dead']" in got.output
    assert "not active nodes registered on the ledger" in got.output


@contextlib.contextmanager
def _faulty_network(tmp_path: Path, fault: str):
    """A chain, 3 nodes (the third runs with fault injection `fault`), an owner who shared
    128 rows in chunks of 64, and an analyst: (owner, analyst ledger, nodes)."""
    _people_csv(tmp_path / "people.csv", 128)
    with cluster(tmp_path, 3, env={2: {FAULT_ENV: fault}}) as net:
        net.owner.share(tmp_path / "people.csv", _people_schema(), "people", t=2, n=3,
                        chunk_rows=64)
        yield net.owner, net.analyst, net.nodes


def test_a_chunk_member_that_tampers_with_its_partial_is_caught(tmp_path):
    """A node that changes what it re-shares (fault injection: +1 on its part of P) makes
    the sealed check k P - Z non-zero: the owner refuses the result and accepts no job."""
    with _faulty_network(tmp_path, "tamper-partial") as (owner, analyst, nodes):
        source = "reveal(mean(data.age), 'mean_age')\n"
        author, sig = sign_script(analyst, source)
        said: list[str] = []
        with pytest.raises(JobError, match="changed between a chunk quorum"):
            run_job(owner, "people", source, author=author, signature=sig,
                    dealer_seed=os.urandom(32), chunk_quorums=2, progress=said.append)
        parent = int(next(s for s in said if s.startswith("job ")).split()[1].rstrip(":"))
        assert owner.ledger.job(parent).status is JobStatus.CANCELLED  # never accepted
        assert "FAULT INJECTION" in nodes[2].log()


def test_a_reducer_that_tampers_with_the_re_shared_centroids_is_caught(tmp_path):
    """A reducing member that changes its part of the k-means centroids it re-shares to a
    chunk quorum (fault injection: +1 on c) makes that quorum's opened k c - z non-zero:
    the chunk quorum stops before computing on them, the owner hears why at once, every
    quorum is cancelled and no job is accepted."""
    import time

    with _faulty_network(tmp_path, "tamper-reshare") as (owner, analyst, nodes):
        source = "reveal(kmeans([data.age, data.tenure], k=2, iters=2), 'centers')\n"
        author, sig = sign_script(analyst, source)
        said: list[str] = []
        started = time.monotonic()
        with pytest.raises(ServiceError, match="HandoverError: a value re-shared by the "
                           "reducing quorum failed its check"):
            run_job(owner, "people", source, author=author, signature=sig, timeout=120.0,
                    dealer_seed=os.urandom(32), chunk_quorums=2, progress=said.append)
        assert time.monotonic() - started < 60
        parent = int(next(s for s in said if s.startswith("job ")).split()[1].rstrip(":"))
        for job_id in range(parent, parent + 3):  # the job and its two chunk jobs
            assert owner.ledger.job(job_id).status is JobStatus.CANCELLED
        assert "FAULT INJECTION" in nodes[2].log()
