"""Issue 9's acceptance on a real local network: every fault kind is detected, the culprit
named (a drop-out or stall as absent), slashed where the evidence is a proof (after the
challenge period: each culprit disputes, and a committee of three juror nodes replays the
evidence and votes guilty), the honest nodes lose nothing, and the job finishes correctly
on a re-drawn quorum. A false accusation of an honest node is disputed by its software
and acquitted by the committee.

One network (chain, two honest node processes, the owner) serves every kind; each kind adds
one misbehaving node process (`enigma node --misbehave KIND --insecure-test-faults`), a
tiny dataset on the three, and a job in blame mode on the test dealer (app/faults.py).
A member's lies about its inputs, its store and the result's facts run on HE, on a network
of their own: test_app_faults_he.py (a unit the parallel run schedules apart).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_utils import keccak

from enigma.app.faults import Row, evidence_group, format_table, matrix
from enigma.app.job_commands import run_command
from enigma.app.job_facts import FAULT_ENV, JobError
from enigma.app.node import node_command
from enigma.app.replay import verify_evidence_file
from enigma.ledger import AccusationStatus, JobStatus
from enigma.mpc.blame import EvidenceError
from enigma.mpc.faults import INPUT_KINDS, KINDS, RELEASE_KINDS, REPLY_KINDS, STORE_KINDS

from .fault_rows import ABSENCE, caught

# the module fixture runs the whole matrix (~75 s here) inside the first test's setup
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MEMBER_KINDS = INPUT_KINDS + REPLY_KINDS + STORE_KINDS
"""A member's lies about its inputs, its store and the result's facts: test_app_faults_he."""
ENGINE_KINDS = tuple(k for k in KINDS if k not in MEMBER_KINDS + RELEASE_KINDS)
"""(A lie about the release policy needs a dataset with one: test_app_blame_release.)"""


def test_misbehave_is_refused_without_the_test_flag(tmp_path: Path) -> None:
    deployment = tmp_path / "deployment.json"
    deployment.write_text("{}")
    out = CliRunner().invoke(node_command, ["--home", str(tmp_path / "node"), "--account",
                                            "0x" + "1" * 40, "--deployment", str(deployment),
                                            "--misbehave", "bitflip"])
    assert out.exit_code != 0
    assert "--insecure-test-faults" in out.output
    assert not (tmp_path / "node").exists()  # refused before anything started


def test_blame_mode_is_refused_with_chunk_quorums(tmp_path: Path) -> None:
    """Blame mode runs on one quorum (on HE or the test dealer); a split job is refused
    before anything is posted."""
    script = tmp_path / "s.py"
    script.write_text("reveal(sum(data.a), 'total')\n")
    deployment = tmp_path / "deployment.json"
    deployment.write_text("{}")
    someone = "0x" + "1" * 40
    out = CliRunner().invoke(run_command, [str(script), "--dataset", "d", "--author", someone,
                                           "--signature", "00" * 65, "--account", someone,
                                           "--deployment", str(deployment), "--blame",
                                           "--chunk-quorums", "2"])
    assert out.exit_code != 0 and "one quorum" in out.output


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every kind on one shared network, then what the ledger recorded about them."""
    rows: dict[str, Row] = {}
    with matrix(tmp_path_factory.mktemp("faults"), [*ENGINE_KINDS, "refund", "tamper"],
                timeout=8.0) as m:
        for kind in ENGINE_KINDS:
            rows[kind] = m.run(kind)
        lg = m.owner.ledger
        # the refund path: no second attempt allowed, so the poster gets its escrow back
        before = lg.claimable(m.owner.ledger.address)
        refund_row = m.run("garbage", attempts=1)
        assert m.last is not None
        refund = {"row": refund_row, "gained": lg.claimable(m.owner.ledger.address) - before,
                  "jobs": [lg.job(i.job_id) for i in m.last.incidents]}
        # a node that hands the owner other shares than it committed to: not provable (the
        # owner's channel is not signed), so named withheld and suspended, never slashed
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(FAULT_ENV, "tamper-result")
            tamper_row = m.run("tamper-result", misbehave=False)
        events = lg.events()
        blamed = [a for n, a in events if n in ("Accused", "AbsenceReported")]
        status = {a["job_id"]: lg.job(a["job_id"]).status for a in blamed}
        honest = [n.address for n in m.nodes]
        nodes = {a: lg.node(a) for a in honest}
        evidence = sorted((m.home / "owner" / "evidence").glob("*.bin"))
        checked = {f.name: verify_evidence_file(lg, f.read_bytes()) for f in evidence}
        refused = {}
        for f in evidence:  # one flipped byte past the facts, and the file proves nothing
            bad = bytearray(f.read_bytes())
            bad[len(bad) // 2] ^= 1
            try:
                refused[f.name] = verify_evidence_file(lg, bytes(bad))
            except (EvidenceError, JobError) as exc:
                refused[f.name] = type(exc).__name__
        settled = list(m.settled)
        jurors = [j.address for j in m.jurors]
        # anyone fetches an accusation's file from the nodes that keep it, and checks it
        where = ["--rpc", m.net.rpc, "--deployment", str(m.net.deployment)]
        fetched = m.home / "fetched.bin"
        fetch = CliRunner().invoke(evidence_group, ["fetch", str(settled[0].accusation_id),
                                                    "--out", str(fetched), *where])
        verify = CliRunner().invoke(evidence_group, ["verify", str(fetched), *where])
        false = m.false_accusation()
    print(format_table(list(rows.values())))
    return {"rows": rows, "blamed": blamed, "status": status, "nodes": nodes,
            "evidence": evidence, "checked": checked, "refused": refused, "refund": refund,
            "tamper": tamper_row, "settled": settled, "jurors": jurors, "false": false,
            "fetch": (fetch.exit_code, fetch.output, fetched.read_bytes()
                      if fetched.exists() else b""), "verify": (verify.exit_code, verify.output)}


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_every_kind_is_caught_and_the_job_finishes(run, kind: str) -> None:
    caught(run["rows"][kind], kind)


def test_the_ledger_holds_the_hash_of_each_published_evidence_file(run) -> None:
    """One accusation or absence report per kind, each naming the keccak256 of a file the
    owner wrote; the jobs are aborted; the honest nodes are active, unslashed."""
    blamed = run["blamed"]
    assert len(blamed) == len(ENGINE_KINDS) + 2  # and the refund and tamper runs'
    assert sum(1 for a in blamed if "accusation_id" in a) == len(ENGINE_KINDS) + 1 - len(ABSENCE)
    assert {keccak(f.read_bytes()) for f in run["evidence"]} == \
        {bytes(a["evidence_hash"]) for a in blamed}
    assert set(run["status"].values()) == {JobStatus.ABORTED}
    for info in run["nodes"].values():
        assert info.active and not info.slashed


def test_anyone_can_check_the_published_evidence_against_the_ledger(run) -> None:
    """`enigma evidence verify`: each file's hash is on chain and it proves what it claims;
    a file changed by one byte is refused."""
    by_kind = {}
    for name, (culprit, verdict) in run["checked"].items():
        assert culprit.lower() in name and f"-{verdict}-" in name
        by_kind[verdict] = by_kind.get(verdict, 0) + 1
    assert by_kind == {"deviation": 7, "result": 1, "absent": 2, "withheld": 1}
    assert set(run["refused"].values()) <= {"EvidenceError", "JobError"}


def test_a_job_that_cannot_be_re_run_is_refunded(run) -> None:
    """With no attempt left, the culprit is still slashed and the poster gets the escrow."""
    row, jobs = run["refund"]["row"], run["refund"]["jobs"]
    assert row.detected and row.identified and row.slashed and row.honest_loss_wei == 0
    assert row.refunded and not row.result_correct
    assert [j.status for j in jobs] == [JobStatus.ABORTED]
    # the escrow at once, and the accuser's bond back once the accusation was finalized
    assert run["refund"]["gained"] == jobs[0].escrow + lg_bond(run)


def lg_bond(run: dict) -> int:
    return next(a.bond for a in run["settled"] if a.job_id == run["refund"]["jobs"][0].job_id)


def test_shares_other_than_the_committed_ones_are_named_but_not_slashed(run) -> None:
    row = run["tamper"]
    assert row.detected and row.identified and row.verdict == "withheld"
    assert not row.slashed and row.honest_loss_wei == 0 and row.result_correct


def test_every_accusation_was_disputed_and_judged_guilty_by_the_committee(run) -> None:
    """Each culprit's software disputed; the three jurors (never in a job's quorum: they
    hold no data) each replayed the evidence and voted guilty; only then was it slashed."""
    settled = run["settled"]
    assert len(settled) == len(ENGINE_KINDS) + 1 - len(ABSENCE)
    for a in settled:
        assert a.status is AccusationStatus.GUILTY and a.disputed
        assert sorted(a.committee) == sorted(run["jurors"])
        assert (a.guilty_votes, a.innocent_votes) == (len(run["jurors"]), 0)
    for kind, row in run["rows"].items():
        assert row.challenge == ("-" if kind in ABSENCE else f"guilty {len(run['jurors'])}-0") \
            or (kind in ABSENCE and row.challenge == "")


def test_a_false_accusation_is_disputed_and_the_committee_acquits(run) -> None:
    """The owner accuses an honest node with a bogus evidence file: the node's software
    disputes, every juror votes not guilty, the node keeps its deposit, is resumed and
    gets the bond less the jurors' tenth."""
    false = run["false"]
    a = false["accusation"]
    assert false["suspended_meanwhile"]
    assert a.disputed and a.status is AccusationStatus.ACQUITTED
    assert set(false["votes"].values()) == {False}
    assert sorted(a.committee) == sorted(run["jurors"])
    assert false["kept_deposit"] and false["active"]
    assert false["gained"] == a.bond - a.bond * 10 // 100


def test_anyone_fetches_an_accusations_file_from_the_nodes_and_verifies_it(run) -> None:
    """`enigma evidence fetch`: the job's quorum serves the file by hash; it is the one on
    chain, and `enigma evidence verify` accepts it."""
    code, output, data = run["fetch"]
    assert code == 0, output
    assert keccak(data) == run["settled"][0].evidence_hash
    code, output = run["verify"]
    assert code == 0 and "verifies" in output and "deviation" in output, output
