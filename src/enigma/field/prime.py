"""The field (or ring) Z_p as an object that owns vectorized arithmetic.

Why an object and not module functions: the modulus is a parameter. The MPC
engine uses p = 2^127 - 1 by default, the HE preprocessing may prefer a
product of two 60-bit NTT-friendly primes, and tests use small moduli to reach
edge cases. Everything that depends on p lives on one `Field`.

Elements are numpy arrays of dtype uint64 with a trailing axis of length 2
(low word, high word): shape (*shape, 2). Values are always canonical
(0 <= x < p); `from_bytes` refuses anything else, so a peer cannot smuggle
a non-canonical encoding into a computation.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .prg import PRG

MERSENNE_127 = (1 << 127) - 1
_MASK64 = (1 << 64) - 1


class FieldError(ValueError):
    """An element array that does not belong to this field."""


class Field:
    """Arithmetic modulo an odd modulus 2 < p < 2^127."""

    def __init__(self, modulus: int = MERSENNE_127) -> None:
        if not (2 < modulus < (1 << 127)) or modulus % 2 == 0:
            raise ValueError(f"modulus must be odd and between 3 and 2^127 - 1, got {modulus}")
        self.p = modulus
        self.bits = modulus.bit_length()
        mersenne = modulus == MERSENNE_127
        mu = (1 << (2 * self.bits)) // modulus
        self.params = np.array(
            [modulus & _MASK64, modulus >> 64, mu & _MASK64, mu >> 64, self.bits, int(mersenne)],
            dtype=np.uint64,
        )
        self._p_elem = np.array([[modulus & _MASK64, modulus >> 64]], dtype=np.uint64)
        self._half_plus_one = self.const((modulus - 1) // 2 + 1) if modulus > 3 else None

    def __repr__(self) -> str:
        return f"Field(p={self.p:#x}, bits={self.bits})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and other.p == self.p

    def __hash__(self) -> int:
        return hash(("Field", self.p))

    @property
    def nbytes(self) -> int:
        """Bytes per element on the wire and on disk."""
        return 16

    # ---------------------------------------------------------------- construction

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return np.zeros((*shape, 2), dtype=np.uint64)

    def const(self, value: int) -> np.ndarray:
        """One element, shape (2,); usable as the scalar operand of add/sub/mul."""
        v = value % self.p
        return np.array([v & _MASK64, v >> 64], dtype=np.uint64)

    def from_ints(self, values) -> np.ndarray:
        """Python integers (any size, any sign) reduced mod p. Not for hot paths."""
        v = np.asarray(values, dtype=object) % self.p
        out = np.empty((*v.shape, 2), dtype=np.uint64)
        out[..., 0] = (v & _MASK64).astype(np.uint64)
        out[..., 1] = (v >> 64).astype(np.uint64)
        return out

    def to_ints(self, a: np.ndarray) -> np.ndarray:
        """Elements as an object array of Python ints. Not for hot paths."""
        return (a[..., 1].astype(object) << 64) | a[..., 0].astype(object)

    def from_int64(self, x: np.ndarray) -> np.ndarray:
        """Signed 64-bit integers into the field (x mod p)."""
        x = np.ascontiguousarray(x, dtype=np.int64)
        out = np.empty((*x.shape, 2), dtype=np.uint64)
        kernels.from_int64_kernel(x.reshape(-1), out.reshape(-1, 2), self.params)
        return out

    def centered(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(negative, magnitude): the lift of each element to (-p/2, p/2]."""
        flat = self._flat(a)
        if self._half_plus_one is None:
            neg = np.zeros(flat.shape[0], dtype=bool)
        else:
            neg = ~self._less(flat, self._half_plus_one)
        mag = flat.copy()
        if neg.any():
            mag[neg] = self.neg(flat[neg])
        return neg.reshape(a.shape[:-1]), mag.reshape(a.shape)

    def to_int64(self, a: np.ndarray) -> np.ndarray:
        """The centered lift as int64; raises if an element lies outside [-2^63, 2^63)."""
        neg, mag = self.centered(a)
        lo, hi = mag[..., 0], mag[..., 1]
        limit = np.where(neg, np.uint64(1 << 63), np.uint64((1 << 63) - 1))
        bad = (hi != 0) | (lo > limit)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise OverflowError(
                f"field element at index {idx} does not fit a signed 64-bit integer; "
                "decode it with to_float or keep it in the field"
            )
        out = lo.astype(np.int64)
        # -2^63 has magnitude 2^63, which wraps to itself under astype: correct as is.
        return np.where(neg, -out, out)

    def to_float(self, a: np.ndarray) -> np.ndarray:
        """The centered lift as float64 (exact below 2^53 in magnitude)."""
        neg, mag = self.centered(a)
        value = mag[..., 1].astype(np.float64) * 2.0**64 + mag[..., 0].astype(np.float64)
        return np.where(neg, -value, value)

    # ---------------------------------------------------------------- randomness

    def random(self, shape: int | tuple[int, ...], prg: PRG | None = None) -> np.ndarray:
        """Uniform elements; from the OS generator unless a seeded PRG is given."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        prg = prg or PRG()
        count = int(np.prod(shape, dtype=np.int64))
        out = self._sample(count, prg)
        return out.reshape(*shape, 2)

    def _sample(self, count: int, prg: PRG) -> np.ndarray:
        lo_mask = np.uint64(_MASK64 if self.bits >= 64 else (1 << self.bits) - 1)
        hi_mask = np.uint64((1 << max(self.bits - 64, 0)) - 1)
        out = prg.words(2 * count).reshape(count, 2)
        out[:, 0] &= lo_mask
        out[:, 1] &= hi_mask
        bad = ~self._less(out, self._p_elem[0])
        while bad.any():  # rejection: each round redraws only the rejected elements
            idx = np.flatnonzero(bad)
            redo = prg.words(2 * idx.size).reshape(idx.size, 2)
            redo[:, 0] &= lo_mask
            redo[:, 1] &= hi_mask
            out[idx] = redo
            bad[idx] = ~self._less(redo, self._p_elem[0])
        return out

    # ---------------------------------------------------------------- arithmetic

    def add(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self._binary(kernels.add_kernel, a, b, out)

    def sub(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self._binary(kernels.sub_kernel, a, b, out)

    def rsub(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """b - a, for a scalar or same-shaped b."""
        return self._binary(kernels.rsub_kernel, a, b, out)

    def neg(self, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self.rsub(a, self.const(0), out)

    def mul(self, a: np.ndarray, b: np.ndarray | int, out: np.ndarray | None = None) -> np.ndarray:
        if isinstance(b, int | np.integer):
            b = self.const(int(b))
        return self._binary(kernels.mul_kernel, a, b, out)

    def muladd(self, a: np.ndarray, b: np.ndarray, c: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
        """a * b + c in one pass."""
        self._same_shape(a, b)
        self._same_shape(a, c)
        out = self._out(a, out)
        kernels.muladd_kernel(self._flat(a), self._flat(b), self._flat(c), self._flat(out),
                              self.params)
        return out

    def sum(self, a: np.ndarray, axis: int | None = None) -> np.ndarray:
        """Sum over one logical axis (or all elements when axis is None)."""
        rows, n, shape = self._reduce_layout(a, axis)
        out = np.empty((rows, 2), dtype=np.uint64)
        kernels.sum_kernel(self._moved(a, axis).reshape(rows, n, 2), out, self.params)
        return out.reshape(*shape, 2)

    def dot(self, a: np.ndarray, b: np.ndarray, axis: int | None = None) -> np.ndarray:
        """Sum of a * b over one logical axis (or all elements)."""
        self._same_shape(a, b)
        rows, n, shape = self._reduce_layout(a, axis)
        out = np.empty((rows, 2), dtype=np.uint64)
        kernels.dot_kernel(self._moved(a, axis).reshape(rows, n, 2),
                           self._moved(b, axis).reshape(rows, n, 2), out, self.params)
        return out.reshape(*shape, 2)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Matrix product of (n, k) and (k, m) element matrices."""
        if a.ndim != 3 or b.ndim != 3 or a.shape[1] != b.shape[0]:
            raise FieldError(f"matmul needs (n, k) and (k, m) matrices, got {a.shape[:-1]} "
                             f"and {b.shape[:-1]}")
        out = np.empty((a.shape[0], b.shape[1], 2), dtype=np.uint64)
        kernels.matmul_kernel(np.ascontiguousarray(a), np.ascontiguousarray(b), out,
                              self.params)
        return out

    def pow(self, a: np.ndarray, exponent: int) -> np.ndarray:
        """Elementwise a ** e for a public exponent 0 <= e < 2^128."""
        if not 0 <= exponent < (1 << 128):
            raise ValueError(f"exponent must be in [0, 2^128), got {exponent}")
        e = np.array([exponent & _MASK64, exponent >> 64], dtype=np.uint64)
        out = self._out(a, None)
        kernels.pow_kernel(self._flat(a), e, self._flat(out), self.params)
        return out

    def inverse(self, a: np.ndarray) -> np.ndarray:
        """Elementwise inverse by Montgomery's trick: one exponentiation for the whole batch.

        Needs p prime (Fermat). Raises ZeroDivisionError naming the first zero.
        """
        flat = self._flat(a)
        zero = (flat[:, 0] == 0) & (flat[:, 1] == 0)
        if zero.any():
            raise ZeroDivisionError(f"element {int(np.flatnonzero(zero)[0])} is zero and has "
                                    "no inverse")
        prefix = np.empty_like(flat)
        kernels.prefix_products_kernel(flat, prefix, self.params)
        out = np.empty_like(flat)
        if flat.shape[0]:
            total_inv = self.pow(prefix[-1:], self.p - 2)[0]
            kernels.batch_inverse_backward_kernel(flat, prefix, total_inv, out, self.params)
        return out.reshape(a.shape)

    def equal(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Elementwise equality as a bool array of the logical shape."""
        return np.all(a == b, axis=-1)

    # ---------------------------------------------------------------- bytes

    def to_bytes(self, a: np.ndarray) -> memoryview:
        """16 bytes little-endian per element; zero-copy for contiguous arrays."""
        return memoryview(np.ascontiguousarray(a, dtype="<u8")).cast("B")

    def from_bytes(self, buf, shape: int | tuple[int, ...] | None = None) -> np.ndarray:
        """Parse and validate elements; refuses a length or a value that does not belong."""
        mv = memoryview(buf).cast("B")
        if mv.nbytes % 16:
            raise FieldError(f"{mv.nbytes} bytes is not a whole number of 16-byte elements")
        arr = np.frombuffer(mv, dtype="<u8").reshape(-1, 2)
        bad = ~self._less(arr, self._p_elem[0])
        if bad.any():
            raise FieldError(f"element {int(np.flatnonzero(bad)[0])} is not below the modulus "
                             f"p={self.p:#x}: the data is corrupt or from another field")
        if shape is not None:
            shape = (shape,) if isinstance(shape, int) else tuple(shape)
            if int(np.prod(shape, dtype=np.int64)) != arr.shape[0]:
                raise FieldError(f"expected {shape} elements, got {arr.shape[0]}")
            arr = arr.reshape(*shape, 2)
        return arr

    def check(self, a: np.ndarray) -> None:
        """Raise FieldError unless a is a well-formed canonical element array."""
        if not isinstance(a, np.ndarray) or a.dtype != np.uint64 or a.shape[-1:] != (2,):
            raise FieldError("field elements are uint64 arrays with a trailing axis of 2, got "
                             f"{getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}")
        bad = ~self._less(self._flat(a), self._p_elem[0])
        if bad.any():
            raise FieldError(f"element {int(np.flatnonzero(bad)[0])} is not below the modulus")

    # ---------------------------------------------------------------- helpers

    def _less(self, flat: np.ndarray, limit: np.ndarray) -> np.ndarray:
        out = np.empty(flat.shape[0], dtype=np.bool_)
        kernels.less_than_kernel(flat, limit, out)
        return out

    @staticmethod
    def _flat(a: np.ndarray) -> np.ndarray:
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        return a.reshape(-1, 2)

    @staticmethod
    def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
        if a.shape != b.shape:
            raise FieldError(f"shape mismatch: {a.shape[:-1]} and {b.shape[:-1]}")

    @staticmethod
    def _out(a: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        if out is None:
            return np.empty(a.shape, dtype=np.uint64)
        if out.shape != a.shape or not out.flags.c_contiguous or out.dtype != np.uint64:
            raise FieldError("out must be a contiguous uint64 array shaped like the operand")
        return out

    def _binary(self, kernel, a: np.ndarray, b: np.ndarray, out: np.ndarray | None):
        if b.shape == (2,) or b.shape == (1, 2):
            bflat, step = b.reshape(1, 2), 0
        else:
            self._same_shape(a, b)
            bflat, step = self._flat(b), 1
        out = self._out(a, out)
        kernel(self._flat(a), bflat, step, self._flat(out), self.params)
        return out

    @staticmethod
    def _reduce_layout(a: np.ndarray, axis: int | None) -> tuple[int, int, tuple[int, ...]]:
        logical = a.shape[:-1]
        if axis is None:
            return 1, int(np.prod(logical, dtype=np.int64)), ()
        axis = axis % len(logical)
        rest = logical[:axis] + logical[axis + 1:]
        return int(np.prod(rest, dtype=np.int64)), logical[axis], rest

    @staticmethod
    def _moved(a: np.ndarray, axis: int | None) -> np.ndarray:
        if axis is None:
            return np.ascontiguousarray(a)
        axis = axis % (a.ndim - 1)
        return np.ascontiguousarray(np.moveaxis(a, axis, -2))
