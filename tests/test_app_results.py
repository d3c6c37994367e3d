"""The owner's checks on a result before accepting it, without a network: every member must
state the same public facts (which its ledger commitment covers), every value must lie in
the range the schema and the script allow, and a member's committed inputs must be what its
ledger commitment says it stores."""

import numpy as np
import pytest

from enigma.app.culprits import MemberInputs, stored_contradiction
from enigma.app.job_facts import JobError, agreed_meta, result_commitment, result_meta
from enigma.field import Field
from enigma.lang.program import OutOfRangeError, check_range, decode_results
from enigma.ledger import DatasetInfo, Policy
from enigma.sharing import additive
from enigma.storage.commitment import (
    chunk_commitment,
    column_facts,
    dataset_commitment,
    describe,
)

F = Field()
QUORUM = ["0xaa", "0xbb", "0xcc"]


def _reply(f: int = 16, exact: float = 8.0) -> dict:
    return {"layout": [["mean", [], f, 1e-4, 0.0, 100.0]], "exact": {"rows": exact},
            "printed": [], "stats": {"rounds": 3}}


def test_members_that_state_the_same_facts_agree_whatever_their_counters():
    replies = [(_reply(), []), ({**_reply(), "stats": {"rounds": 4}}, []), (_reply(), [])]
    agreed_meta(1, QUORUM, replies)  # counters are not facts of the result


@pytest.mark.parametrize("liar", [{"f": 17}, {"exact": 9.0}], ids=["scale", "exact"])
def test_one_member_that_states_other_facts_is_refused_and_named(liar):
    replies = [(_reply(), []), (_reply(**liar), []), (_reply(), [])]
    with pytest.raises(JobError, match=r"\['0xbb'\] state one version") as err:
        agreed_meta(1, QUORUM, replies)
    assert "['0xaa', '0xcc']" in str(err.value)


def test_the_commitment_covers_the_facts():
    x = np.arange(4, dtype=np.uint64).reshape(2, 2)
    assert result_commitment(1, x, x, result_meta(_reply())) != \
        result_commitment(1, x, x, result_meta(_reply(f=17)))


@pytest.mark.parametrize("value, lo, hi, err", [
    (4878.0, 0.0, 4877.0, 0.0),        # a count above the row count
    (101.0, 18.0, 90.0, 1e-3),         # a mean outside [min, max]
    (-0.5, 0.0, None, 1e-4),           # a variance below 0
])
def test_a_value_outside_its_range_is_refused_naming_value_and_bound(value, lo, hi, err):
    with pytest.raises(OutOfRangeError, match=r"result 'x' = .* is outside the range"):
        check_range("x", np.asarray(value), np.asarray(err), lo, hi)


def test_values_within_range_or_error_bound_pass():
    check_range("x", np.asarray([0.0, 4877.0]), np.asarray(0.0), 0.0, 4877.0)
    check_range("x", np.asarray(90.0005), np.asarray(1e-3), 18.0, 90.0)  # within its bound
    check_range("x", np.asarray(-1e9), np.asarray(0.0), None, None)     # unbounded
    with pytest.raises(OutOfRangeError, match=r"'x'\[1\]"):
        check_range("x", np.asarray([1.0, 7.0]), np.asarray([0.0, 0.0]), 0.0, 5.0)


def test_the_owner_refuses_a_decoded_mean_outside_the_column_range():
    """The whole decoding path: sealed shares of a value the schema cannot produce (a mean
    age of 150 on ages in [18, 90]) pass the MAC check but not the range check."""
    key = F.random(1)
    x = F.from_int64(np.array([150 << 16]))
    z = F.mul(x, key)
    sealed = list(zip(additive.split(F, x, 3), additive.split(F, z, 3), strict=True))
    reply = {"layout": [["m", [], 16, 1e-4, 18.0, 90.0]], "exact": {}, "printed": []}
    with pytest.raises(OutOfRangeError, match="'m' = 150"):
        decode_results(F, key, sealed, reply)
    fine = F.from_int64(np.array([44 << 16]))
    sealed = list(zip(additive.split(F, fine, 3), additive.split(F, F.mul(fine, key), 3),
                      strict=True))
    assert decode_results(F, key, sealed, reply)["m"].value == 44.0


def _stored(shares: dict, name: str = "d.ab.g0", rows=(3, 2)) -> tuple[dict, list[bytes]]:
    """What an honest holder states it stores of `shares` cut into chunks of `rows`, and
    its chunk commitments."""
    chunks, commitments, start = [], [], 0
    for i, n in enumerate(rows):
        d = {c: describe(np.ascontiguousarray(a[start:start + n], dtype="<u8"))
             for c, a in shares.items()}
        chunks.append([i, n, column_facts(d)])
        commitments.append(chunk_commitment(name, i, d))
        start += n
    return {"store": name, "chunks": chunks}, commitments


def test_a_holder_is_held_to_its_ledger_commitment_for_what_it_inputs():
    shares = {"a": F.random(5), "a.tag": F.random(5), "b": F.random(5)}
    stored, chunks = _stored(shares)
    record = DatasetInfo(0, "0xo", bytes(32), bytes(32), 0, Policy.OWNER_ONLY,
                         ["0x1", "0x2", "0x3"], [bytes(32), dataset_commitment(chunks),
                                                 bytes(32)])
    read = {c: shares[c] for c in ("a", "a.tag")}  # it reads some columns, states them all
    honest = MemberInputs(read, 2, 5, F.zeros(2), stored=stored)
    assert stored_contradiction(record, "0x2", honest) is None
    wrong_point = MemberInputs(read, 3, 5, F.zeros(2), stored=stored)
    assert "point 3" in stored_contradiction(record, "0x2", wrong_point)
    changed = dict(read, a=F.add(read["a"], F.from_int64(np.array([0, 0, 0, 1, 0]))))
    assert "column 'a' in chunk 1" in stored_contradiction(
        record, "0x2", MemberInputs(changed, 2, 5, F.zeros(2), stored=stored))
    rewritten, _ = _stored({**shares, "a": changed["a"]})  # its file rewritten to match
    assert "ledger commitment" in stored_contradiction(
        record, "0x2", MemberInputs(changed, 2, 5, F.zeros(2), stored=rewritten))
    assert "not a holder" in stored_contradiction(record, "0x9", honest)
