"""The k largest contributions per cell (the dominance rule's input), between 3 real
processes, against numpy: random small inputs with many ties, empty cells, k >= n."""

import numpy as np
import pytest

from enigma.field import Field
from enigma.mpc.dominance import top_sums
from enigma.mpc.runner import run_local
from enigma.prep.dealer import DealerFactory

F = Field()
DEALER = DealerFactory(b"dominance-test-seed-0123456789ab", insecure=True)
BITS = 20


def _input(e, owner, values):
    values = np.asarray(values, dtype=np.int64)
    return e.input(owner, F.from_int64(values) if e.party == owner else None, values.shape)


def program(e, cases):
    """Every case's top sums, opened (test only), and the refusals' messages."""
    out = []
    for values, cells, k in cases:
        member = np.eye(cells, dtype=np.int64)[cells_of(values, cells)]
        member[rows_outside(values)] = 0
        x, m = _input(e, 0, values), _input(e, 1, member)
        top, total = top_sums(e, x, m, k, BITS)
        out.append((F.to_int64(e.reveal(top)), F.to_int64(e.reveal(total))))
    whole = []
    for values, _, k in cases:  # every row in one cell: no membership, no masking product
        top, total = top_sums(e, _input(e, 0, values), None, k, BITS)
        whole.append((F.to_int64(e.reveal(top)), F.to_int64(e.reveal(total))))
    errors = []
    x, m = _input(e, 0, np.arange(4)), _input(e, 1, np.eye(2, dtype=np.int64)[[0, 1, 0, 1]])
    for args in ((x[:3], m, 2, BITS), (x, m, 0, BITS), (x, m[:, 0], 1, BITS)):
        try:
            top_sums(e, *args)
        except ValueError as exc:
            errors.append(str(exc))
    return out, whole, errors


def cells_of(values, cells):
    """A fixed, value-independent cell per row (the test's group-by key)."""
    return (np.arange(len(values)) * 7 + 3) % cells


def rows_outside(values):
    """Every fifth row belongs to no cell (a filtered-out row)."""
    return np.arange(len(values)) % 5 == 4


def expected(values, cells, k):
    """(top k sums, totals) per cell."""
    values = np.asarray(values)
    owner = cells_of(values, cells)
    keep = ~rows_outside(values)
    members = [values[keep & (owner == c)] for c in range(cells)]
    return ([int(np.sort(v)[::-1][:k].sum()) for v in members],
            [int(v.sum()) for v in members])


def _cases():
    rng = np.random.default_rng(7)
    return [
        (rng.integers(0, 8, 13), 3, 1),            # few distinct values: ties everywhere
        (rng.integers(0, 8, 13), 3, 2),
        (rng.integers(0, 1 << BITS, 17), 4, 3),   # the full value range
        ([5, 5, 5, 5, 9, 5, 5], 2, 2),            # equal maxima: each pass removes one
        ([1, 2, 3], 4, 2),                        # cells with one member and none
        (rng.integers(0, 100, 6), 2, 6),          # k >= n: the whole cell
        ([0, 0, 0, 0], 1, 3),                     # all zero
    ]


@pytest.fixture(scope="module")
def results():
    return run_local(program, args=(_cases(),), provider_factory=DEALER)[0]


def test_top_sums_match_numpy_with_ties_and_empty_cells(results):
    out, _, _ = results
    for (values, cells, k), (top, total) in zip(_cases(), out, strict=True):
        assert (top.tolist(), total.tolist()) == expected(values, cells, k), (values, cells, k)


def test_one_cell_of_every_row_needs_no_membership(results):
    _, whole, _ = results
    for (values, _, k), (top, total) in zip(_cases(), whole, strict=True):
        v = np.asarray(values)
        assert top.tolist() == [int(np.sort(v)[::-1][:k].sum())], (values, k)
        assert total.tolist() == [int(v.sum())]


def test_malformed_calls_are_refused_with_a_reason(results):
    _, _, errors = results
    assert len(errors) == 3
    assert "same (n,) rows" in errors[0] and "k >= 1" in errors[1] and "same" in errors[2]
