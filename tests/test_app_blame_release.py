"""Blame mode under a release policy, on a real local network (docs/disclosure.md, "Blame
under a release policy"; docs/blame.md).

The fault matrix's network (`app.faults.matrix`: a chain, two honest holders, three
jurors) with one misbehaving node (`--misbehave release-lie`: it runs the job under a
looser release than the ledger's, releasing every cell): the dataset gets a
differentially private policy (n_min, ε and δ budgets) on the ledger and the job spends
ε. The liar is named by a replay under the release the members ran under (the honest
members' noise and pass bits replay exactly, or they would be named instead), accused
with an evidence file the committee checks the same way, slashed, and the job re-run on
the honest two gives the released result; every attempt's ε stays spent. Then an honest
job in blame mode under the policy, on the test dealer and on HE (whose blame-mode slice
is sized for every cell sealed), succeeds with no package handed over.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from enigma.app.culprits import bundle_meta, ran_under, read_bundle
from enigma.app.faults import DP_RELEASE, DP_SCRIPT, SCHEMA, _correct, _table, matrix
from enigma.app.job_facts import MemberInputs, session_for
from enigma.app.orchestration import run_job, sign_script
from enigma.app.replay import replay_program, verify_evidence_file
from enigma.field import Field
from enigma.lang.checker import check
from enigma.lang.release import Release, ReleasePolicy
from enigma.lang.schema import Schema
from enigma.ledger import JobStatus
from enigma.ledger.records import to_fixed
from enigma.mpc.blame import EvidenceError, identify, prove, replay_output, view_evidence
from enigma.mpc.runner import run_blamed
from enigma.sharing import tags

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCRIPT, RELEASE = DP_SCRIPT, DP_RELEASE
POLICY = RELEASE.policy
F = Field()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A member that runs a DP job under a looser release than the ledger's (every cell
    released), then honest blame-mode jobs on the same dataset."""
    with matrix(tmp_path_factory.mktemp("blamerel"), ["release-lie"], timeout=8.0) as m:
        lg = m.owner.ledger
        t0 = time.perf_counter()
        row = m.run("release-lie", release=RELEASE, script=SCRIPT, dealer_seed=bytes(32))
        seconds = time.perf_counter() - t0
        assert m.last is not None
        out = m.last
        name = "faults-1-release-lie"
        dataset = m.owner.state(name).ledger_id
        culprit = out.incidents[0].culprit if out.incidents else ""
        bundle = Path(out.incidents[0].evidence_path).read_bytes() if out.incidents else b""
        facts = {"row": row, "out": out, "seconds": seconds, "culprit": culprit,
                 "bundle": bundle, "node": lg.node(culprit) if culprit else None,
                 "attempts": [lg.job(i.job_id) for i in out.incidents] + [lg.job(out.job_id)],
                 "spent": lg.release(dataset).epsilon_spent,
                 "delta_spent": lg.release(dataset).delta_spent,
                 "checked": verify_evidence_file(lg, bundle) if bundle else None}
        job = lg.job(out.incidents[0].job_id) if out.incidents else None
        facts["ran_under"] = lambda meta, evidence: ran_under(lg, job, meta, evidence)
        facts["session"] = lambda r: session_for(job.job_id, lg.deployment, r)
        author, sig = sign_script(m.net.analyst, SCRIPT)
        honest = {}
        for prep, seed in (("dealer", bytes(range(32))), ("he", None)):
            t0 = time.perf_counter()
            honest[prep] = (run_job(m.owner, name, SCRIPT, author=author, signature=sig,
                                    quorum_size=2, dealer_seed=seed, epsilon=RELEASE.epsilon,
                                    delta=RELEASE.delta, timeout=120.0),
                            time.perf_counter() - t0)
        facts["honest"] = honest
        facts["spent_after"] = lg.release(dataset).epsilon_spent
    print(f"DP job with a member lying about the release: {seconds:.1f} s to the re-run's result; "
          + ", ".join(f"honest blame-mode run on {p}: {s:.1f} s" for p, (_, s) in honest.items()))
    return facts


def test_the_liar_is_named_slashed_and_the_rerun_releases_the_result(run: dict) -> None:
    row, out = run["row"], run["out"]
    assert row.detected and row.identified, row
    # its messages deviate from its replay under the release the others ran under (the
    # one its session names) where the pass bits are computed: proved, not attested
    assert row.verdict == "deviation", row
    assert row.slashed and run["node"].slashed, row
    assert row.challenge == "guilty 3-0", row  # the committee replayed it under the release
    assert row.honest_loss_wei == 0
    assert [i.verdict for i in out.incidents] == ["deviation"]
    assert run["checked"] == (run["culprit"], "deviation")
    assert not out.refunded and row.result_correct, out.results
    assert out.results["top"].suppressed.item()  # the pass bits, exact: 4 rows < n_min
    assert not out.results["high"].suppressed.item()
    assert _correct(out.results, _table(), SCRIPT, RELEASE)


def test_every_attempt_spends_its_epsilon(run: dict) -> None:
    """The failed attempt had started (its members computed), so its ε is never given
    back; the re-run spends ε again (docs/disclosure.md, "When a spend becomes final")."""
    failed, rerun = run["attempts"]
    assert failed.started and failed.status is not JobStatus.ACCEPTED
    assert rerun.status is JobStatus.ACCEPTED
    eps, delta = to_fixed(RELEASE.epsilon, "ε"), to_fixed(RELEASE.delta, "δ")
    assert failed.epsilon == rerun.epsilon == eps
    assert run["spent"] == 2 * eps and run["delta_spent"] == 2 * delta
    assert run["spent_after"] == 4 * eps  # and each honest job its own


def test_an_evidence_file_binds_the_release_the_culprit_ran_under(run: dict) -> None:
    """The file's release must name the session the culprit signed under: one stating a
    looser or tighter policy (or none) is refused, whatever the ledger says now."""
    meta, evidence, _ = read_bundle(run["bundle"])
    assert Release.from_dict(meta["release"]) == RELEASE
    assert run["ran_under"](meta, evidence) == RELEASE
    other = Release(ReleasePolicy(n_min=6, epsilon_budget=10.0, delta_budget=1e-6), 1.5, 1e-9)
    assert run["session"](other) != run["session"](RELEASE) != run["session"](None)
    forged = bundle_meta(meta["script"], meta["schema"], meta["filename"],
                         bytes.fromhex(meta["dealer_seed"]), other)
    with pytest.raises(EvidenceError, match="session under the release the file states"):
        run["ran_under"](forged, evidence)
    with pytest.raises(EvidenceError, match="spends ε on the ledger; the file states no release"):
        run["ran_under"](dict(meta, release=None), evidence)
    spends_more = dict(meta, release=Release(POLICY, 2.0, 1e-9).as_dict())
    with pytest.raises(EvidenceError, match=r"spends \(ε, δ\) = \(2\.0"):
        run["ran_under"](spends_more, evidence)


@pytest.mark.parametrize("prep", ["dealer", "he"])
def test_an_honest_job_in_blame_mode_under_the_policy_succeeds(run: dict, prep: str) -> None:
    out, _ = run["honest"][prep]
    assert not out.incidents and out.packages == 0
    assert _correct(out.results, _table(), SCRIPT, RELEASE), out.results


def _quorum_inputs(parties: int) -> dict[int, MemberInputs]:
    """Every member's inputs for `faults`' table, as `app.demand` simulates them: each holds
    the encoded table as its Shamir share (a constant polynomial), member 0 the tag key 1
    and an output key 1; shares of a tag are then the value itself."""
    schema = Schema.from_dict(SCHEMA)
    table = _table()
    shares = {c: F.from_int64(np.asarray(schema.column(c).encoding.to_integers(table[c]),
                                         dtype=np.int64)) for c in table}
    shares.update({tags.column(c): v for c, v in list(shares.items())})
    return {i: MemberInputs(dict(shares), i + 1, len(table["a"]),
                            F.from_ints([1, 1]) if i == 0 else F.zeros(2))
            for i in range(parties)}


def test_an_honest_members_noise_and_pass_bits_replay_exactly_under_its_release() -> None:
    """Three members run the DP job in blame mode (processes, the test dealer). Replayed
    under the release they ran under, no member deviates, and each one's view replays to
    the sealed shares it returned (the noise and the pass bits come from its committed
    preprocessing); replayed under another release (or none), an honest member would
    look deviant: why the release is bound to the run."""
    schema = Schema.from_dict(SCHEMA)
    script = check(SCRIPT, schema)
    inputs = _quorum_inputs(3)
    seed = bytes(range(32))
    program = replay_program(script, schema, "<script>", inputs, seed, 3, F.p, RELEASE)
    run = run_blamed(program.fn, args=program.args, provider_factory=program.factory,
                     timeout=30.0)
    assert not run.errors, run.errors
    assert identify(program, run.packages, run.public_keys).culprits == {}
    for p in range(3):
        assert prove(program, run.packages, run.public_keys, p) is None
        party, sealed = replay_output(view_evidence(run.packages, run.public_keys, p),
                                      program, run.public_keys)
        x, z, meta = run.outputs[p]
        assert party == p and np.array_equal(sealed[0], x) and np.array_equal(sealed[1], z)
        assert sealed[2] == meta and b"suppressed" in meta  # the same cells kept
    tighter = Release(replace(POLICY, n_min=6), RELEASE.epsilon, RELEASE.delta)
    for other in (tighter, None):
        wrong = replay_program(script, schema, "<script>", inputs, seed, 3, F.p, other)
        assert prove(wrong, run.packages, run.public_keys, 0) is not None
