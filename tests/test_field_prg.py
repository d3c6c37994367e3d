"""The PRG: deterministic per seed, independent across seeds and children, uniform bytes."""

import numpy as np
import pytest

from enigma.field import PRG


def test_same_seed_same_stream_and_streams_continue():
    a, b = PRG(b"k" * 32), PRG(b"k" * 32)
    assert np.array_equal(a.words(5), b.words(5))
    assert not np.array_equal(a.words(5), PRG(b"k" * 32).words(5))


def test_children_are_independent_of_each_other():
    g = PRG(b"k" * 32)
    assert not np.array_equal(g.child(b"x").words(4), g.child(b"x").words(4))


def test_bytes_look_uniform():
    w = PRG().words(1 << 16).view(np.uint8)
    counts = np.bincount(w, minlength=256)
    expected = w.size / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 400  # 255 degrees of freedom: p-value far below 1e-6 past 400


def test_short_seed_and_negative_count_are_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        PRG(b"short")
    with pytest.raises(ValueError, match="negative"):
        PRG().words(-1)
