"""Elementwise protocols run in chunks of rows, so that their working memory stays bounded.

A comparison holds, per element, a thermometer table of digits x levels x 2 field words
(about 7.7 KB at 64 bits) plus what producing it takes; on 10^6 elements that is many GB.
The protocols are elementwise, so running them on consecutive slices of the flattened input
and joining the results gives the same values; each slice costs the protocol's rounds again.
The slice length comes from the engine's memory budget (`Engine.chunk_rows`), a constant
shared by the quorum, so every party cuts at the same places.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from .engine import MUL_ROW_BYTES, Engine
from .secret import Secret, concat

_SLACK = 4
"""Working copies of a thermometer table while it is made and read (the test dealer's party 0
holds its own and the others' shares; the HE provider holds the monomials of the bits)."""


def digit_row_bytes(m: int, digit_bits: int, lookups: int = 1) -> int:
    """Working bytes per element of a digit comparison on m bits in base 2^digit_bits, with
    `lookups` public values compared against each element's digits."""
    digits = -(-m // digit_bits)
    levels = (1 << digit_bits) - 1
    return 32 * digits * (_SLACK * levels + 4 * lookups) + MUL_ROW_BYTES


def rowwise(row_bytes: Callable[..., int], *, keep_shape: bool = True):
    """Run fn(e, x, ...) on slices of x's elements that fit the budget, then join the results.

    `row_bytes` takes fn's arguments by name and returns the working bytes per element.
    With `keep_shape` the result has x's shape (elementwise functions); without, it has the
    flat (x.size, ...) shape fn returns for a flat input."""
    def wrap(fn: Callable[..., Secret]) -> Callable[..., Secret]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(e: Engine, x: Secret, *args, **kwargs) -> Secret:
            bound = signature.bind(e, x, *args, **kwargs)
            bound.apply_defaults()
            step = e.chunk_rows(row_bytes(**bound.arguments))
            n = x.size
            if n <= step:
                return fn(e, x, *args, **kwargs)
            flat = x.reshape(n)
            out = concat([fn(e, flat[start:start + step], *args, **kwargs)
                          for start in range(0, n, step)])
            return out.reshape(*x.shape, *out.shape[1:]) if keep_shape else out
        return run
    return wrap
