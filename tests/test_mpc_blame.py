"""Identifiable abort between 3 real processes: for every fault kind the run aborts, the
honest parties name the culprit, the evidence checks with public keys alone, and an honest
party is never named (docs/blame.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.field import Field
from enigma.mpc import blame
from enigma.mpc.blame import EvidenceError, prove, verify_evidence
from enigma.mpc.faults import (
    INPUT_KINDS,
    KINDS,
    RELEASE_KINDS,
    REPLY_KINDS,
    STORE_KINDS,
    Fault,
    FaultInjectionRefused,
    FaultyChannel,
    FaultyProvider,
)
from enigma.mpc.runner import BlameRun, run_blamed
from enigma.net import Identity
from enigma.prep.dealer import DealerFactory

from . import blame_programs as prog

F = Field()
DEALER = DealerFactory(b"blame-seed-0123456789abcdef01234", insecure=True)
XS = np.arange(1, prog.N + 1, dtype=np.int64)
YS = np.arange(10, 10 + prog.N, dtype=np.int64)
EXPECTED = XS * YS * XS + YS
TIMEOUT = 10.0  # generous: a loaded machine must not make an honest party look absent
STALL_TIMEOUT = 2.0  # only the stall test waits for a timeout; its culprit sleeps longer
KINGS = dict(king_threshold=prog.N)  # openings of N elements or more go through kings

# (kind, culprit, at): every party is a culprit somewhere; `at` lands where the kind bites.
CASES = [
    ("bitflip", 0, 2),
    ("wrong-mac", 1, 0),
    ("bad-preprocessing", 2, 0),
    ("dropout", 2, 4),
    ("stall", 0, 4),
    ("garbage", 1, 3),
    ("equivocate", 2, 0),
    ("replay", 0, 3),
    ("wrong-recipient", 1, 2),
]


def _run(fault: Fault | None, timeout: float = TIMEOUT) -> BlameRun:
    return run_blamed(prog.products, args=(XS, YS), provider_factory=DEALER, fault=fault,
                      insecure=True, timeout=timeout, engine_kwargs=KINGS)


def _no_wrong_answer(run: BlameRun, culprit: int) -> None:
    """An honest party either received the right result or none at all."""
    for party, value in run.outputs.items():
        if party != culprit and value is not None:
            assert (F.to_int64(value) == EXPECTED).all()


def test_every_kind_is_named_in_the_module():
    """Every engine-level kind; a member's input, reply, store and release kinds act above
    the engine and are tested on a network (test_app_faults, test_app_blame_release)."""
    assert sorted(k for k, _, _ in CASES) == sorted(
        k for k in KINDS if k not in INPUT_KINDS + REPLY_KINDS + STORE_KINDS + RELEASE_KINDS)


def test_faults_are_refused_without_the_insecure_flag():
    fault = Fault("bitflip", 1)
    with pytest.raises(FaultInjectionRefused, match="insecure=True"):
        run_blamed(prog.products, args=(XS, YS), provider_factory=DEALER, fault=fault)
    with pytest.raises(FaultInjectionRefused):
        FaultyChannel(object(), fault)
    with pytest.raises(FaultInjectionRefused):
        FaultyProvider(object(), Fault("wrong-mac", 1))
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("bribe", 1)


def test_an_honest_run_in_blame_mode_answers_and_names_nobody():
    run = _run(None)
    assert not run.errors
    assert (F.to_int64(run.outputs[2]) == EXPECTED).all()
    verdict = run.verdict()
    assert verdict.culprits == {}
    for p in range(3):
        assert prove(run.program, run.packages, run.public_keys, p) is None
    # a signed view replays to the value the party's committed run returns (what the app
    # compares with a node's result commitment on the ledger)
    view = blame.view_evidence(run.packages, run.public_keys, 2)
    assert view is not None
    party, value = blame.replay_output(view, run.program, run.public_keys)
    assert party == 2 and (F.to_int64(value) == EXPECTED).all()
    with pytest.raises(EvidenceError, match="step 1"):
        blame.replay_output(view, run.program, [Identity.generate().public_key] * 3)


def test_packages_survive_encoding(bitflip_run):
    """A node seals its package to the owner as bytes; the owner identifies from the bytes."""
    run = bitflip_run
    decoded = {p: blame.Package.decode(pkg.encode()) for p, pkg in run.packages.items()}
    assert {p: repr(pkg) for p, pkg in decoded.items()} == {
        p: repr(pkg) for p, pkg in run.packages.items()}
    verdict = blame.identify(run.program, decoded, run.public_keys)
    assert verdict.culprits == {1: "deviation"}
    assert verdict.evidence[1] == run.verdict().evidence[1]
    with pytest.raises(ValueError):
        blame.Package.decode(b"not a package")


@pytest.mark.parametrize(("kind", "culprit", "at"), CASES, ids=[c[0] for c in CASES])
def test_a_fault_aborts_and_the_culprit_is_named_with_checkable_evidence(kind, culprit, at):
    timeout = STALL_TIMEOUT if kind == "stall" else TIMEOUT
    run = _run(Fault(kind, culprit, at=at, stall=STALL_TIMEOUT + 2.0), timeout)
    honest = [p for p in range(3) if p != culprit]
    assert all(p in run.errors for p in honest), "the run must abort at every honest party"
    _no_wrong_answer(run, culprit)
    verdict = run.verdict()
    assert set(verdict.culprits) == {culprit}
    if kind in ("dropout", "stall"):
        assert verdict.culprits[culprit] == "absent"
        accusers = {r.party for r in verdict.attested[culprit]}
        assert accusers and accusers <= set(honest)
        for record in verdict.attested[culprit]:
            record.verify(run.public_keys[record.party])
    else:
        assert verdict.culprits[culprit] == "deviation"
        assert verify_evidence(verdict.evidence[culprit], run.program, run.public_keys) == culprit
    for p in honest:
        assert prove(run.program, run.packages, run.public_keys, p) is None


@pytest.fixture(scope="module")
def bitflip_run() -> BlameRun:
    return _run(Fault("bitflip", 1, at=2))


def test_evidence_does_not_survive_tampering_or_other_keys(bitflip_run):
    run = bitflip_run
    evidence = run.verdict().evidence[1]
    assert verify_evidence(evidence, run.program, run.public_keys) == 1
    strangers = [Identity.generate().public_key for _ in range(3)]
    with pytest.raises(EvidenceError, match="step 1"):
        verify_evidence(evidence, run.program, strangers)
    for pos in (len(evidence) // 3, len(evidence) // 2, len(evidence) - 200):
        bad = bytearray(evidence)
        bad[pos] ^= 0x40
        with pytest.raises(EvidenceError):
            verify_evidence(bytes(bad), run.program, run.public_keys)


def test_the_evidence_holds_only_the_culprits_material_and_view(bitflip_run):
    """What goes public: the culprit's own material and the messages on its channels."""
    run = bitflip_run
    material, statement, outs, ins = blame.decode_evidence(run.verdict().evidence[1])
    assert material == run.packages[1].material
    assert statement.party == 1
    for j in (0, 2):
        assert outs[j] == run.packages[j].received[1][:len(outs[j])]
        assert ins[j] == run.packages[j].sent[1][:len(ins[j])]


def test_colluders_cannot_frame_an_honest_party(bitflip_run):
    """Rewriting what an honest party received, or its material, proves nothing against it."""
    run = bitflip_run
    for honest in (0, 2):
        pkgs = dict(run.packages)
        forged = dataclasses.replace(pkgs[honest], received={
            j: [tuple(b"\x00" * len(f) for f in m) for m in msgs]
            for j, msgs in pkgs[honest].received.items()})
        pkgs[honest] = forged
        pkgs[1] = dataclasses.replace(pkgs[1], sent={
            j: [tuple(b"\x00" * len(f) for f in m) for m in msgs]
            for j, msgs in pkgs[1].sent.items()})
        assert prove(run.program, pkgs, run.public_keys, honest) is None
        pkgs = dict(run.packages)
        other = dataclasses.replace(pkgs[honest].material, seed=bytes(32))
        pkgs[honest] = dataclasses.replace(pkgs[honest], material=other)
        assert prove(run.program, pkgs, run.public_keys, honest) is None
        assert honest not in blame.identify(run.program, pkgs, run.public_keys).culprits


def test_a_culprit_that_reveals_false_material_is_named_as_withholding(bitflip_run):
    run = bitflip_run
    pkgs = dict(run.packages)
    fake = dataclasses.replace(pkgs[1].material, seed=bytes(32))
    pkgs[1] = dataclasses.replace(pkgs[1], material=fake)
    verdict = blame.identify(run.program, pkgs, run.public_keys)
    assert verdict.culprits == {1: "withheld"}
    del pkgs[1]
    assert blame.identify(run.program, pkgs, run.public_keys).culprits == {1: "withheld"}


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(["bitflip", "wrong-mac", "bad-preprocessing", "garbage",
                             "equivocate", "replay", "wrong-recipient", "dropout"]),
       culprit=st.integers(0, 2), at=st.integers(0, 14))
def test_property_only_the_cheater_is_ever_named(kind, culprit, at):
    """Wherever a party cheats, either the run answers correctly and nobody is named, or it
    aborts, and the cheater, and only the cheater, is named: with evidence that checks for a
    deviation, by the signed records of honest parties for a drop-out."""
    run = _run(Fault(kind, culprit, at=at))
    _no_wrong_answer(run, culprit)
    verdict = run.verdict()
    assert set(verdict.culprits) <= {culprit}
    if not run.errors:
        assert (F.to_int64(run.outputs[2]) == EXPECTED).all()
        return
    if kind == "dropout":
        assert verdict.culprits == {culprit: "absent"}
    else:
        assert verdict.culprits == {culprit: "deviation"}
        assert verify_evidence(verdict.evidence[culprit], run.program, run.public_keys) == culprit


def test_a_message_without_a_valid_statement_is_refused_and_its_sender_named_absent():
    run = run_blamed(prog.unsigned, args=(XS, YS), provider_factory=DEALER, timeout=TIMEOUT,
                     engine_kwargs=KINGS)
    assert run.errors[0][0] == "UnsignedMessage"
    assert run.packages[0].abort.reason == "unsigned"
    public = dataclasses.replace(run.program, fn=prog.products)  # what the job said to run
    verdict = blame.identify(public, run.packages, run.public_keys)
    assert verdict.culprits == {1: "absent"}
    assert [r.party for r in verdict.attested[1]] == [0]


def test_a_larger_quorum_names_its_culprit_too():
    run = run_blamed(prog.products, parties=4, args=(XS, YS), provider_factory=DEALER,
                     fault=Fault("wrong-recipient", 3, at=2), insecure=True, timeout=TIMEOUT,
                     engine_kwargs=KINGS)
    verdict = run.verdict()
    assert verdict.culprits == {3: "deviation"}
    assert verify_evidence(verdict.evidence[3], run.program, run.public_keys) == 3


VALUE_KINDS = ["bitflip", "wrong-mac", "bad-preprocessing", "garbage", "equivocate", "replay",
               "wrong-recipient"]


@settings(max_examples=6, deadline=None)
@given(honest=st.integers(0, 2), kinds=st.tuples(st.sampled_from(VALUE_KINDS),
                                                 st.sampled_from(VALUE_KINDS)),
       ats=st.tuples(st.integers(0, 10), st.integers(0, 10)))
def test_property_two_colluders_never_get_the_honest_party_named(honest, kinds, ats):
    """Two of three parties cheat (a dishonest majority): whoever is named is a cheater with
    evidence that checks, and after an abort at least one of them is named."""
    cheaters = [p for p in range(3) if p != honest]
    faults = [Fault(k, p, at=a) for k, p, a in zip(kinds, cheaters, ats, strict=True)]
    run = run_blamed(prog.products, args=(XS, YS), provider_factory=DEALER, fault=faults,
                     insecure=True, timeout=TIMEOUT, engine_kwargs=KINGS)
    value = run.outputs.get(honest)
    assert value is None or honest != 2 or (F.to_int64(value) == EXPECTED).all()
    verdict = run.verdict()
    assert honest not in verdict.culprits
    for p, how in verdict.culprits.items():
        assert how == "deviation"
        assert verify_evidence(verdict.evidence[p], run.program, run.public_keys) == p
    if honest in run.errors:
        assert verdict.culprits
