"""The dominance rule's input: the sum of the k largest contributions to each cell.

A cell of a released sum is sensitive when a few contributors dominate it: the (k, p) rule
suppresses it when its k largest contributions exceed p% of its total. The comparison with
p% of the total is one more comparison (the language layer's); this module computes the
k largest contributions' sum per cell, on secrets, without revealing which rows they are.

Method: mask the values into a (cells, n) table (a row's value in its own cell, 0
elsewhere: values are non-negative, so the zeros never outrank a member), then k passes of a
tournament over each cell's row at once: the winner is the cell's current maximum, its
one-hot (exactly one position, also among ties: the first) removes it for the next pass.
"""

from __future__ import annotations

from . import select
from .engine import Engine
from .secret import Secret


def top_sums(e: Engine, values: Secret, member: Secret | None, k: int, bits: int
             ) -> tuple[Secret, Secret]:
    """(Σ of the k largest member values per cell, Σ of all of them), each of shape (cells,):
    the rule compares the two, and the masked table that the first needs gives the second.

    values: (n,) integers in [0, 2^bits); member: (n, cells), 0/1, one cell per row (a row
    in no cell contributes nowhere), or None for one cell of every row (no masking product).
    A cell with fewer than k members sums all of them.

    Cost for n rows, L cells (c = ceil(log2 n)): one product round for the masking, then for
    each of the k passes L (n - 1) comparisons of (bits + 1)-bit values in c levels (a
    comparison's rounds plus one selection round each); every pass but the last also expands
    its tournament into the one-hot (c rounds, L (n - 1) products) and removes the winner
    (one round, L n products). In all k L (n - 1) comparisons and about k c (comparison
    rounds + 2) + 1 rounds; with k >= n no comparison at all (the sum of the cell).
    """
    if len(values.shape) != 1 or (member is not None and (
            len(member.shape) != 2 or member.shape[0] != values.shape[0])):
        raise ValueError(f"values of shape {values.shape} and membership of shape "
                         f"{None if member is None else member.shape} do not describe the "
                         "same (n,) rows and (n, cells)")
    if k < 1:
        raise ValueError(f"the dominance rule needs k >= 1 contributors, not {k}")
    if bits < 1:
        raise ValueError(f"values need at least 1 bit, not {bits}")
    n = values.shape[0]
    if member is None:
        table = values.reshape(1, n)
    else:
        cells = member.shape[1]
        table = e.mul(select.moveaxis_last(member, 0), values.broadcast_to(cells, n))
    cell_totals = table.sum(axis=1)
    if k >= n:
        return cell_totals, cell_totals
    wide = bits + 1  # differences of two values in [0, 2^bits) need a sign bit more
    total = None
    for step in range(k):  # k passes, each over every cell and row at once
        if step == k - 1:
            top = select.max(e, table, axis=1, bits=wide)
        else:
            top, hot = select.max_one_hot(e, table, axis=1, bits=wide)
            table = table - e.mul(hot, table)
        total = top if total is None else total + top
    assert total is not None
    return total, cell_totals
