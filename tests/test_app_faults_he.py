"""Issue 9's acceptance for a member's lies, on the HE preprocessing (no dealer anywhere,
as a production quorum runs): a member that changes its input, tag or tag-key share, lies
about the result's facts or serves a store rewritten after sealing is proved, judged guilty
by the committee and slashed, and the re-run without it is right; an honest blame-mode job
sends no packages; a bitflip is proved; only accepted jobs return their stock.

Its own network (app/faults.py's matrix: chain, two honest nodes, three jurors, one culprit
per kind), apart from test_app_faults.py's, so a parallel run can stand both up at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from enigma.app.culprits import read_bundle
from enigma.app.faults import format_table, matrix
from enigma.app.job_facts import JobError
from enigma.app.replay import verify_evidence_file
from enigma.app.stock import quorum_id
from enigma.mpc.blame import EvidenceError
from enigma.mpc.faults import INPUT_KINDS, REPLY_KINDS, STORE_KINDS

from .fault_rows import caught

# the module fixture runs the HE matrix inside the first test's setup
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MEMBER_KINDS = INPUT_KINDS + REPLY_KINDS + STORE_KINDS
"""A member's lies about its inputs from storage, what it stores and the result's public
facts: run on HE (the `he` fixture), where a production quorum meets them."""


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
    caught(row, kind)
    want = {**dict.fromkeys(INPUT_KINDS, "deviation"), **dict.fromkeys(REPLY_KINDS, "result"),
            **dict.fromkeys(STORE_KINDS, "inputs")}
    assert row.verdict == want[kind], row.verdict
    assert row.challenge.startswith("guilty"), row.challenge
    assert he["checked"][kind] and all(v[1] == row.verdict for v in he["checked"][kind])



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
