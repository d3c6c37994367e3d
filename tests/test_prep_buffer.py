"""The preprocessing buffer: first-in first-out, within its memory budget, checked on read."""

import numpy as np
import pytest

from enigma.field import Field
from enigma.prep.buffer import Buffer, SpillError

F = Field()


def _parts(count: int, rows: int) -> list[tuple[np.ndarray, ...]]:
    return [(F.random(rows), F.random(rows)) for _ in range(count)]


def test_a_buffer_beyond_its_budget_spills_and_hands_out_the_same_items_in_order():
    parts = _parts(20, 1000)  # 20 parts of 32 KB
    budget = 3 * 32_000
    buf = Buffer(2, budget=budget)
    for p in parts:
        buf.add(*p)
    assert buf.size == 20_000 and buf.held <= budget
    expected = [np.concatenate([p[i] for p in parts]) for i in range(2)]
    got = []
    for n in (1, 999, 2500, 7000, 500, 9000):
        out = buf.take(n)
        assert buf.held <= budget + 32_000  # at most one part read back beyond the budget
        got.append(out)
    for i in range(2):
        assert np.array_equal(np.concatenate([g[i] for g in got]), expected[i])
    assert buf.size == 0
    buf.add(*parts[0])  # reused after it emptied
    assert np.array_equal(buf.take(1000)[1], parts[0][1])


def test_a_spilled_part_that_changed_on_disk_is_refused():
    buf = Buffer(2, budget=1)
    for p in _parts(3, 100):
        buf.add(*p)
    spill = buf._spill._file
    spill.seek(5)  # inside the second part, the first spilled
    spill.write(b"\xff")
    buf.take(100)  # the first part stayed in memory
    with pytest.raises(SpillError, match="differs from what was written"):
        buf.take(100)
