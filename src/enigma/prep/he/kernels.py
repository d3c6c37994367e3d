"""The compiled loops of the BFV path: modular products, CRT digits, scaling, flooding.

Numba kernels over uint64 arrays, where numpy would need 128-bit intermediates or one
pass per step. A product by a constant w modulo q < 2^62 is Shoup's: with w_shoup =
floor(w 2^64 / q) precomputed (`shoup`), a w - mulhi(a, w_shoup) q is below 2q, so one
conditional subtraction reduces it; the high word of the 128-bit product is one `mul`
instruction (`_mulhi`). Conditional subtractions are arithmetic, not branches (`_csub`):
on random data the comparisons are unpredictable, and branches made the kernels slower.
The maths each kernel does is in its docstring; the code that calls them is in chunks.py,
bfv.py and flooding.py.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _mulhi(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64 (one `mul` instruction)."""
    i128 = ir.IntType(128)

    def codegen(context, builder, signature, args):
        wide = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        return builder.trunc(builder.lshr(wide, ir.Constant(i128, 64)), ir.IntType(64))

    return types.uint64(types.uint64, types.uint64), codegen


@njit(inline="always")
def _mulmod_const(a, w, w_shoup, q):
    """a w mod q for a constant w < q < 2^62 with w_shoup = floor(w 2^64 / q) (Shoup)."""
    r = a * w - _mulhi(a, w_shoup) * q
    return r - q if r >= q else r


@njit(inline="always")
def _csub(a, q):
    """a - q if a >= q else a, for a < 2q < 2^63, without a comparison (no branch to mispredict)."""
    d = a - q
    return d + (q & np.uint64(np.int64(d) >> np.int64(63)))


@njit(inline="always")
def _mulmod_nb(a, w, w_shoup, q):
    """_mulmod_const with a branch-free final subtraction."""
    return _csub(a * w - _mulhi(a, w_shoup) * q, q)


def shoup(w: int, q: int) -> int:
    return (w << 64) // q


@njit(cache=True, nogil=True)
def horner_kernel(chunks, q, w, w_shoup, out):
    """out[j] = sum_k chunks[k, j] 2^(48 k) mod q, for chunks below 2^48 <= q."""
    count, n = chunks.shape
    for j in range(n):
        acc = chunks[count - 1, j]
        for k in range(count - 2, -1, -1):
            acc = _csub(_mulmod_nb(acc, w, w_shoup, q) + chunks[k, j], q)
        out[j] = acc


@njit(cache=True, nogil=True)
def garner_kernel(residues, moduli, inv, inv_shoup, digits):
    """Mixed-radix digits: digits[i] = (x_i - v_0 - t_0 v_1 - ...) / (t_0 ... t_(i-1)) mod t_i."""
    r, n = residues.shape
    for j in range(n):
        for i in range(r):
            t = moduli[i]
            v = residues[i, j]
            for k in range(i):
                d = _csub(digits[k, j], t)  # t_k < 2 t_i (checked in _garner_constants)
                v = _mulmod_nb(_csub(v + t - d, t), inv[i, k], inv_shoup[i, k], t)
            digits[i, j] = v


@njit(cache=True, nogil=True)
def scale_kernel(m, error, qs, scale, scale_shoup, one_shoup, t, q_mod_t, barrett, out):
    """out[l, j] = floor(Q / t) m_j + floor(((Q mod t) m_j + (t + 1) / 2) / t) + e_j mod q_l.

    The fix term is found with 64-bit words only: est = mulhi(m, floor(2^64 (Q mod t) / t))
    is at most 2 below it, and the remainder (Q mod t) m + (t + 1) / 2 - t est < 3t < 2^64
    is exact in wrapping arithmetic. No branches on data (`_csub`).
    """
    n = m.shape[0]
    half = (t + np.uint64(1)) >> np.uint64(1)
    one = np.uint64(1)
    for j in range(n):
        x = m[j]
        est = _mulhi(x, barrett)
        rem = q_mod_t * x + half - t * est  # in [0, 3t): at most two corrections
        for _ in range(2):
            ge = one - ((np.uint64(np.int64(rem - t) >> np.int64(63))) & one)
            est += ge
            rem -= t * ge
        e = np.uint64(error[j] + np.int64(0))
        for limb in range(qs.shape[0]):
            q = qs[limb]
            # Shoup's product is right for any 64-bit multiplicand, so m needs no reduction
            v = _mulmod_nb(x, scale[limb], scale_shoup[limb], q)
            v = _csub(v + _mulmod_nb(est, one, one_shoup[limb], q), q)
            v = _csub(_csub(v + e + q, q), q)  # + e mod q, |e| <= 21 (e wraps as uint64)
            out[limb, j] = v


@njit(cache=True, nogil=True)
def minus_as_kernel(ntt, a, secret, secret_shoup, qs, out):
    """out = ntt - a s mod q_l, pointwise (NTT domain); s fixed, with Shoup constants."""
    limbs, n = ntt.shape
    for limb in range(limbs):
        q = qs[limb]
        for j in range(n):
            p = _mulmod_const(a[limb, j], secret[limb, j], secret_shoup[limb, j], q)
            v = ntt[limb, j]
            out[limb, j] = v - p if v >= p else v + q - p


@njit(cache=True, nogil=True)
def flood_kernel(src, dst, digits, extra, centre, error, qs, garner, garner_shoup, radix,
                  radix_shoup, drop_inv, drop_inv_shoup, half_digits):
    """dst = (floor((c0 + f) / Q_drop) + E - 2^(k-1), round((c1 + e) / Q_drop)) mod kept q_i.

    Per coefficient j and polynomial: add the error e_j to c1 (|e| <= 21); the
    mixed-radix digits k_m of x mod Q_drop (Garner over the dropped primes:
    garner[m, b] = q_b^-1 mod q_m); the carry of x mod Q_drop plus f (c0, digits
    f_m = digits[., j]) or plus floor(Q_drop / 2) (c1, half_digits), digit by digit;
    then for each kept prime q_i: (x - sum_m k_m P_m) Q_drop^-1 + carry, with
    radix[m, i] = P_m mod q_i, drop_inv[i] = Q_drop^-1 mod q_i; and for c0 + E - 2^(k-1)
    (centre[i] = q_i - 2^(k-1)).

    Each step is one loop over the coefficients (independent iterations), and every
    conditional subtraction is arithmetic (`_csub`): the comparisons have random
    outcomes, and mispredicted branches made the kernel about 25 % slower.
    """
    limbs = qs.shape[0]
    keep = dst.shape[1]
    n = src.shape[2]
    x = np.empty((limbs, n), dtype=np.uint64)
    k = np.empty((limbs, n), dtype=np.uint64)
    carry = np.empty(n, dtype=np.uint64)
    for poly in range(2):
        for limb in range(limbs):
            q = qs[limb]
            for j in range(n):
                v = src[poly, limb, j]
                if poly == 1:
                    # + e mod q with |e| <= 21: v + e + q < 2q + 21, two subtractions
                    v = _csub(_csub(v + np.uint64(error[j] + np.int64(q)), q), q)
                x[limb, j] = v
        for m in range(keep, limbs):
            q = qs[m]
            for j in range(n):
                v = x[m, j]
                for b in range(keep, m):
                    v = _csub(v + q - _csub(k[b, j], q), q)
                    v = _mulmod_nb(v, garner[m, b], garner_shoup[m, b], q)
                k[m, j] = v
        for j in range(n):
            c = np.uint64(0)
            for m in range(keep, limbs):
                add = digits[m - keep, j] if poly == 0 else half_digits[m - keep]
                # carry out of k_m + add + c (< 2 q_m): 1 iff it is >= q_m
                c = np.uint64(1) - (np.uint64(np.int64(k[m, j] + add + c - qs[m]) >> np.int64(63))
                                    & np.uint64(1))
            carry[j] = c
        for i in range(keep):
            q = qs[i]
            for j in range(n):
                rem = _csub(k[keep, j], q)
                for m in range(keep + 1, limbs):
                    rem = _csub(rem + _mulmod_nb(_csub(k[m, j], q), radix[m, i],
                                                 radix_shoup[m, i], q), q)
                v = _csub(x[i, j] + q - rem, q)
                v = _csub(_mulmod_nb(v, drop_inv[i], drop_inv_shoup[i], q) + carry[j], q)
                if poly == 0:
                    v = _csub(_csub(v + extra[j], q) + centre[i], q)
                dst[poly, i, j] = v
