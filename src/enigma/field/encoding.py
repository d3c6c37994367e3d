"""Encodings of table values (integers, fixed-point reals, booleans, categories) into Z_p.

Every encoding maps a value to a signed integer of at most `k = 64` bits and
that integer to the field by x mod p, so negative numbers are p - |x|. The
headroom above 64 bits (p = 2^127 - 1 leaves 63 bits) is what statistical
masking in comparison and truncation consumes: k + kappa + 1 <= log2 p with a
statistical security parameter kappa = 40 (see docs/design.md).

Fixed-point: a real x is stored as round(x * 2^f). Encoding is exact for
multiples of 2^-f, and otherwise off by at most 2^-(f+1) (round to nearest).
Decoding is exact while |x * 2^f| < 2^53 (float64's integer range).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .prime import Field

VALUE_BITS = 64
"""Width k of every encoded value, sign included."""

_INT_MIN = -(1 << (VALUE_BITS - 1))
_INT_MAX = (1 << (VALUE_BITS - 1)) - 1


class EncodingError(ValueError):
    """A value that the encoding cannot represent; names the position and the limit."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(np.ravel(mask))[0])


def _value(arr: np.ndarray, i: int):
    """The i-th value as a plain Python object, for error messages."""
    return np.ravel(arr)[i].item()


def _check_field(field: Field) -> None:
    if field.bits < VALUE_BITS + 1:
        raise EncodingError(f"{field!r} is too small for {VALUE_BITS}-bit values")


@dataclass(frozen=True)
class IntEncoding:
    """Signed integers in [lo, hi] (within 64 bits), exact."""

    lo: int = _INT_MIN
    hi: int = _INT_MAX

    def __post_init__(self) -> None:
        if not (_INT_MIN <= self.lo <= self.hi <= _INT_MAX):
            raise ValueError(f"integer range [{self.lo}, {self.hi}] must lie within 64 bits")

    @property
    def error(self) -> float:
        return 0.0

    def to_integers(self, values) -> np.ndarray:
        arr = np.asarray(values)
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
            if bad.any():
                i = _first_bad(bad)
                raise EncodingError(f"value {_value(arr, i)!r} at index {i} is not an integer", i)
            # compare as floats, before the cast wraps what 64 bits cannot hold
            out = (arr < self.lo) | (arr > self.hi) | (arr >= 2.0**63)
            if out.any():
                i = _first_bad(out)
                raise EncodingError(f"value {_value(arr, i):g} at index {i} is outside the "
                                    f"range [{self.lo}, {self.hi}]", i)
        elif arr.dtype.kind not in "iub":
            raise EncodingError(f"integers expected, got values of dtype {arr.dtype}")
        if arr.dtype.kind == "u" and arr.size and arr.max() > _INT_MAX:
            i = int(np.argmax(arr.ravel()))
            raise EncodingError(f"value {_value(arr, i)} at index {i} is above {self.hi}", i)
        ints = arr.astype(np.int64)
        out = (ints < self.lo) | (ints > self.hi)
        if out.any():
            i = _first_bad(out)
            raise EncodingError(
                f"value {_value(ints, i)} at index {i} is outside the range "
                f"[{self.lo}, {self.hi}]", i)
        return ints

    def encode(self, field: Field, values) -> np.ndarray:
        _check_field(field)
        return field.from_int64(self.to_integers(values))

    def decode(self, field: Field, elements: np.ndarray) -> np.ndarray:
        return field.to_int64(elements)


@dataclass(frozen=True)
class FixedEncoding:
    """Reals in [lo, hi] as round(x * 2^frac_bits); error at most 2^-(frac_bits+1)."""

    frac_bits: int = 16
    lo: float = -float(1 << 47)
    hi: float = float(1 << 47)

    def __post_init__(self) -> None:
        if not 0 <= self.frac_bits <= 48:
            raise ValueError(f"fractional bits must be in [0, 48], got {self.frac_bits}")
        limit = float(1 << (VALUE_BITS - 1 - self.frac_bits))
        if not (-limit <= self.lo <= self.hi <= limit):
            raise ValueError(
                f"fixed-point range [{self.lo}, {self.hi}] with {self.frac_bits} fractional bits "
                f"must lie within +-{limit:g}")

    @property
    def scale(self) -> float:
        return float(1 << self.frac_bits)

    @property
    def error(self) -> float:
        """Largest difference between a value and its decoded encoding."""
        return 2.0 ** -(self.frac_bits + 1)

    def to_integers(self, values) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            i = _first_bad(bad)
            raise EncodingError(f"value {_value(arr, i)!r} at index {i} is not a finite number", i)
        out = (arr < self.lo) | (arr > self.hi)
        if out.any():
            i = _first_bad(out)
            raise EncodingError(
                f"value {_value(arr, i)!r} at index {i} is outside the range "
                f"[{self.lo:g}, {self.hi:g}]", i)
        return np.rint(arr * self.scale).astype(np.int64)

    def encode(self, field: Field, values) -> np.ndarray:
        _check_field(field)
        return field.from_int64(self.to_integers(values))

    def decode(self, field: Field, elements: np.ndarray) -> np.ndarray:
        return field.to_float(elements) / self.scale


@dataclass(frozen=True)
class BoolEncoding:
    """False/True as 0/1."""

    @property
    def error(self) -> float:
        return 0.0

    def to_integers(self, values) -> np.ndarray:
        arr = np.asarray(values)
        if arr.dtype != np.bool_:
            bad = (arr != 0) & (arr != 1)
            if bad.any():
                i = _first_bad(bad)
                raise EncodingError(f"value {_value(arr, i)!r} at index {i} is not a boolean", i)
        return arr.astype(np.int64)

    def encode(self, field: Field, values) -> np.ndarray:
        return field.from_int64(self.to_integers(values))

    def decode(self, field: Field, elements: np.ndarray) -> np.ndarray:
        ints = field.to_int64(elements)
        bad = (ints != 0) & (ints != 1)
        if bad.any():
            i = _first_bad(bad)
            raise EncodingError(f"element at index {i} decodes to {_value(ints, i)}, not 0 or 1", i)
        return ints.astype(bool)


@dataclass(frozen=True)
class CategoryEncoding:
    """One of a fixed list of levels, as its position in the list."""

    levels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("a category needs at least one level")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"category levels must be distinct: {self.levels}")

    @property
    def error(self) -> float:
        return 0.0

    def to_integers(self, values) -> np.ndarray:
        arr = np.asarray(values, dtype=object).astype(str)
        lookup = np.asarray(self.levels, dtype=str)
        order = np.argsort(lookup)
        pos = np.searchsorted(lookup[order], arr)
        pos = np.clip(pos, 0, len(lookup) - 1)
        codes = order[pos]
        bad = lookup[codes] != arr
        if bad.any():
            i = _first_bad(bad)
            raise EncodingError(
                f"value {_value(arr, i)!r} at index {i} is not one of the levels "
                f"{list(self.levels)}", i)
        return codes.astype(np.int64)

    def encode(self, field: Field, values) -> np.ndarray:
        return field.from_int64(self.to_integers(values))

    def decode(self, field: Field, elements: np.ndarray) -> np.ndarray:
        codes = field.to_int64(elements)
        bad = (codes < 0) | (codes >= len(self.levels))
        if bad.any():
            i = _first_bad(bad)
            raise EncodingError(f"element at index {i} decodes to code {_value(codes, i)}, "
                                f"outside the {len(self.levels)} levels", i)
        return np.asarray(self.levels, dtype=object)[codes]


Encoding = IntEncoding | FixedEncoding | BoolEncoding | CategoryEncoding
