"""Issue 9's acceptance on a real local network: every fault kind is detected, the culprit
named (a drop-out or stall as absent), slashed where the evidence is a proof (after the
challenge period: each culprit disputes, and a committee of three juror nodes replays the
evidence and votes guilty), the honest nodes lose nothing, and the job finishes correctly
on a re-drawn quorum. A false accusation of an honest node is disputed by its software
and acquitted by the committee.

One network (chain, two honest node processes, the owner) serves every kind; each kind adds
one misbehaving node process (`enigma node --misbehave KIND --insecure-test-faults`), a
tiny dataset on the three, and a job in blame mode on the test dealer (app/faults.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_utils import keccak

from enigma.app.culprits import read_bundle
from enigma.app.faults import KEYS, Row, evidence_group, format_table, matrix
from enigma.app.job_commands import run_command
from enigma.app.job_facts import FAULT_ENV, JobError
from enigma.app.node import node_command
from enigma.app.replay import verify_evidence_file
from enigma.app.stock import quorum_id
from enigma.ledger import AccusationStatus, JobStatus
from enigma.mpc.blame import EvidenceError
from enigma.mpc.faults import INPUT_KINDS, KINDS, REPLY_KINDS, STORE_KINDS

# the module fixture runs the whole matrix (~75 s here) inside the first test's setup
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ABSENCE = ("dropout", "stall")
MEMBER_KINDS = INPUT_KINDS + REPLY_KINDS + STORE_KINDS
"""A member's lies about its inputs from storage, what it stores and the result's public
facts: run on HE
(the `he` fixture), where a production quorum meets them."""
ENGINE_KINDS = tuple(k for k in KINDS if k not in MEMBER_KINDS)


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


def _caught(row: Row, kind: str) -> None:
    """Detected, the culprit named, the honest nodes whole, the re-run's result right."""
    assert list(row.as_json()) == list(KEYS)
    assert row.detected, row.note
    assert row.identified, f"{kind}: the owner named someone else ({row.verdict})"
    assert row.honest_loss_wei == 0
    assert row.result_correct or row.refunded
    assert not row.refunded  # two honest holders remain: the re-run must finish
    if kind in ABSENCE:
        assert row.verdict == "absent" and not row.slashed  # attested, never slashed
    else:
        assert row.verdict in ("deviation", "result", "inputs") and row.slashed


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_every_kind_is_caught_and_the_job_finishes(run, kind: str) -> None:
    _caught(run["rows"][kind], kind)


@pytest.mark.parametrize("kind", MEMBER_KINDS)
def test_every_member_lie_is_caught_on_he_and_the_job_finishes(he, kind: str) -> None:
    """A member that changes its input share, its tag share or its tag-key share (caught by
    the tag check, named by the replay of its committed inputs) or that lies about the
    result's scale or an exact value (the members' facts disagree; its committed facts are
    not its replay's): proved, judged guilty by the committee, slashed; the re-run without
    it returns numpy's values, and the owner never accepted a wrong number. A member whose
    stored share was rewritten after sealing replays consistently, but what it says it
    stores is not what its ledger commitment covers: named on that (`inputs`)."""
    row = he["rows"][kind]
    _caught(row, kind)
    want = {**dict.fromkeys(INPUT_KINDS, "deviation"), **dict.fromkeys(REPLY_KINDS, "result"),
            **dict.fromkeys(STORE_KINDS, "inputs")}
    assert row.verdict == want[kind], row.verdict
    assert row.challenge.startswith("guilty"), row.challenge
    assert he["checked"][kind] and all(v[1] == row.verdict for v in he["checked"][kind])


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


@pytest.fixture(scope="module")
def he(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Blame mode on the HE preprocessing (no dealer anywhere): an honest job, then a job
    with a bitflipping member, on their own small network."""
    with matrix(tmp_path_factory.mktemp("faults-he"), ["honest", "bitflip", *MEMBER_KINDS],
                timeout=8.0) as m:
        honest = m.run("honest", misbehave=False, dealer=False)
        assert m.last is not None
        honest_result = m.last
        bitflip = m.run("bitflip", dealer=False)
        assert m.last is not None
        result = m.last
        evidence = sorted((m.home / "owner" / "evidence").glob("*.bin"))
        culprit = m.culprits[-1].address
        rows, checked_by_kind = {}, {}
        for kind in MEMBER_KINDS:
            rows[kind] = m.run(kind, dealer=False)
            assert m.last is not None
            files = [Path(i.evidence_path) for i in m.last.incidents]
            checked_by_kind[kind] = [verify_evidence_file(m.owner.ledger, f.read_bytes())
                                     for f in files]
        checked = {f.name: verify_evidence_file(m.owner.ledger, f.read_bytes())
                   for f in evidence}
        refused = {}
        for f in evidence:  # the culprit's slice changed by one bit: it no longer opens
            bad = bytearray(f.read_bytes())
            bad[-9] ^= 1
            try:
                refused[f.name] = verify_evidence_file(m.owner.ledger, bytes(bad))
            except (EvidenceError, JobError) as exc:
                refused[f.name] = type(exc).__name__
        # which quorums' stocks the honest nodes saved: only those of accepted jobs (saved
        # in the background once the owner accepted; an aborted job's stock never comes back)
        p = m.owner.field.p
        accepted = {quorum_id(q, p) for q in (honest_result.quorum, result.quorum)}
        aborted = {quorum_id(lg_job.quorum, p) for lg_job in
                   (m.owner.ledger.job(i.job_id) for i in result.incidents)}
        stocks: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stocks = {f.stem for n in m.nodes for f in (n.home / "prep").glob("*.stock")}
            if accepted <= stocks:
                break
            time.sleep(0.2)
    print(format_table([honest, bitflip, *rows.values()]))
    return {"honest": honest, "honest_result": honest_result, "bitflip": bitflip,
            "rows": rows, "checked": checked_by_kind, "bitflip_checked": checked,
            "result": result, "evidence": evidence, "refused": refused,
            "culprit": culprit, "stocks": stocks, "accepted": accepted, "aborted": aborted}


def test_an_honest_he_blame_job_succeeds_and_sends_no_packages(he) -> None:
    out = he["honest_result"]
    assert not he["honest"].detected and not out.incidents and not out.refunded
    assert he["honest"].result_correct
    assert out.packages == 0  # members keep their packages: nothing left a node
    assert out.stats["prep"]["provider"] == "he"


def test_a_bitflip_on_he_is_proved_and_the_re_run_is_correct(he) -> None:
    """The culprit's committed slice replays its honest run: the flipped share is a proved
    deviation, the evidence file (with the culprit's own slice) verifies against the
    ledger, a file whose slice was changed does not, and the re-run returns numpy's values."""
    row, out = he["bitflip"], he["result"]
    assert row.detected and row.identified and row.verdict == "deviation", row.note
    assert row.slashed and row.honest_loss_wei == 0
    assert row.result_correct and not row.refunded
    assert out.incidents[0].culprit.lower() == he["culprit"].lower()
    assert out.packages == 0  # the re-run succeeded: no package sent for it
    assert [v for v in he["bitflip_checked"].values()] == [(out.incidents[0].culprit,
                                                            "deviation")]
    meta, _, arrays = read_bundle(he["evidence"][0].read_bytes())
    assert meta["prep"] == "he" and meta["dealer_seed"] is None
    assert len(arrays) == len(meta["columns"]) + 2  # its inputs, its key share, its slice
    assert set(he["refused"].values()) == {"EvidenceError"}


def test_only_accepted_he_blame_jobs_return_their_stock(he) -> None:
    """An aborted job's slice and stock are discarded; after an accepted one the rest of
    the stock is saved (its packages can no longer reach the owner)."""
    assert he["accepted"] and he["aborted"] and not he["accepted"] & he["aborted"]
    assert he["accepted"] <= he["stocks"]
    assert not he["aborted"] & he["stocks"]
