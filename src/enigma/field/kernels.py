"""Compiled element kernels for arithmetic modulo an odd modulus below 2^127.

Why LLVM intrinsics: numpy has no 128-bit integers, and splitting a 127-bit
product into 32-bit pieces in Python-level numba code costs 16 multiplications.
LLVM has native i128/i256 arithmetic that lowers to `mul`/`mulx` chains, so each
kernel widens a (lo, hi) pair of uint64 into one LLVM integer, computes, and
narrows back. Measured on this machine (docs/design.md): about 3 ns per
modular multiplication for 2^127 - 1, against about 30 ns for limb code.

An element array is C-contiguous uint64 of shape (m, 2): column 0 the low 64
bits, column 1 the high bits, which is exactly the 16-byte little-endian wire
format. Every kernel takes the modulus as arguments, so the modulus stays a
run-time parameter of the field object and not a constant of this module.

Reduction: for 2^127 - 1, two folds of the 254-bit product and one
conditional subtraction; for any other odd modulus, Barrett reduction with
mu = floor(4^k / p) (Menezes et al., Handbook of Applied Cryptography, 14.42).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_U64 = types.uint64
_PAIR = types.UniTuple(_U64, 2)
_I64 = ir.IntType(64)
_I128 = ir.IntType(128)
_I256 = ir.IntType(256)


def _wide(builder: ir.IRBuilder, lo: ir.Value, hi: ir.Value, ty: ir.IntType = _I256) -> ir.Value:
    return builder.or_(builder.shl(builder.zext(hi, ty), ir.Constant(ty, 64)), builder.zext(lo, ty))


def _narrow(context, builder: ir.IRBuilder, value: ir.Value, rettype) -> ir.Value:
    lo = builder.trunc(value, _I64)
    hi = builder.trunc(builder.lshr(value, ir.Constant(value.type, 64)), _I64)
    return context.make_tuple(builder, rettype, [lo, hi])


def _product(builder: ir.IRBuilder, args) -> ir.Value:
    """The 256-bit product of two (lo, hi) pairs from four 64x64->128 multiplications.

    Written out because LLVM expands a plain i256 multiply into a full 4x4-limb
    schoolbook product even when the upper halves are known to be zero.
    """
    alo, ahi, blo, bhi = (builder.zext(v, _I128) for v in args[:4])
    p0 = builder.zext(builder.mul(alo, blo), _I256)
    p1 = builder.zext(builder.mul(alo, bhi), _I256)
    p2 = builder.zext(builder.mul(ahi, blo), _I256)
    p3 = builder.zext(builder.mul(ahi, bhi), _I256)
    mid = builder.shl(builder.add(p1, p2), ir.Constant(_I256, 64))
    return builder.add(builder.add(p0, mid), builder.shl(p3, ir.Constant(_I256, 128)))


def _cond_sub(builder: ir.IRBuilder, x: ir.Value, p: ir.Value) -> ir.Value:
    """x - p if x >= p else x, without a branch."""
    return builder.select(builder.icmp_unsigned(">=", x, p), builder.sub(x, p), x)


@intrinsic
def addmod(typingctx, alo, ahi, blo, bhi, plo, phi):
    """(a + b) mod p for a, b < p."""
    sig = _PAIR(_U64, _U64, _U64, _U64, _U64, _U64)

    def codegen(context, builder, signature, args):
        a = _wide(builder, args[0], args[1], _I128)
        b = _wide(builder, args[2], args[3], _I128)
        p = _wide(builder, args[4], args[5], _I128)
        return _narrow(context, builder, _cond_sub(builder, builder.add(a, b), p),
                       signature.return_type)

    return sig, codegen


@intrinsic
def submod(typingctx, alo, ahi, blo, bhi, plo, phi):
    """(a - b) mod p for a, b < p."""
    sig = _PAIR(_U64, _U64, _U64, _U64, _U64, _U64)

    def codegen(context, builder, signature, args):
        a = _wide(builder, args[0], args[1], _I128)
        b = _wide(builder, args[2], args[3], _I128)
        p = _wide(builder, args[4], args[5], _I128)
        d = builder.select(builder.icmp_unsigned(">=", a, b), builder.sub(a, b),
                           builder.sub(builder.add(a, p), b))
        return _narrow(context, builder, d, signature.return_type)

    return sig, codegen


@intrinsic
def mulmod_m127(typingctx, alo, ahi, blo, bhi):
    """(a * b) mod (2^127 - 1) for a, b < 2^127 - 1: two folds, since 2^127 = 1."""
    sig = _PAIR(_U64, _U64, _U64, _U64)

    def codegen(context, builder, signature, args):
        x = _product(builder, args)
        p256 = ir.Constant(_I256, (1 << 127) - 1)
        y = builder.add(builder.and_(x, p256), builder.lshr(x, ir.Constant(_I256, 127)))
        y = builder.trunc(y, _I128)  # < 2^128 after one fold
        p = ir.Constant(_I128, (1 << 127) - 1)
        y = builder.add(builder.and_(y, p), builder.lshr(y, ir.Constant(_I128, 127)))
        return _narrow(context, builder, _cond_sub(builder, y, p), signature.return_type)

    return sig, codegen


@intrinsic
def mulmod_barrett(typingctx, alo, ahi, blo, bhi, plo, phi, mulo, muhi, k):
    """(a * b) mod p for a, b < p < 2^k <= 2^127, with mu = floor(4^k / p) < 2^128."""
    sig = _PAIR(_U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64)

    def codegen(context, builder, signature, args):
        p = _wide(builder, args[4], args[5])
        mu = _wide(builder, args[6], args[7])
        kk = builder.zext(args[8], _I256)
        x = _product(builder, args)
        q = builder.lshr(x, builder.sub(kk, ir.Constant(_I256, 1)))
        q = builder.lshr(builder.mul(q, mu), builder.add(kk, ir.Constant(_I256, 1)))
        r = builder.sub(x, builder.mul(q, p))
        r = _cond_sub(builder, _cond_sub(builder, r, p), p)
        return _narrow(context, builder, r, signature.return_type)

    return sig, codegen


@njit(inline="always")
def _mulmod(alo, ahi, blo, bhi, params):
    # params: [p_lo, p_hi, mu_lo, mu_hi, k, is 2^127 - 1]
    if params[5]:
        return mulmod_m127(alo, ahi, blo, bhi)
    return mulmod_barrett(alo, ahi, blo, bhi, params[0], params[1], params[2], params[3],
                          params[4])


@njit(cache=True, nogil=True)
def add_kernel(a, b, bstep, out, params):
    plo, phi = params[0], params[1]
    for i in range(a.shape[0]):
        j = i * bstep
        lo, hi = addmod(a[i, 0], a[i, 1], b[j, 0], b[j, 1], plo, phi)
        out[i, 0] = lo
        out[i, 1] = hi


@njit(cache=True, nogil=True)
def sub_kernel(a, b, bstep, out, params):
    plo, phi = params[0], params[1]
    for i in range(a.shape[0]):
        j = i * bstep
        lo, hi = submod(a[i, 0], a[i, 1], b[j, 0], b[j, 1], plo, phi)
        out[i, 0] = lo
        out[i, 1] = hi


@njit(cache=True, nogil=True)
def rsub_kernel(a, b, bstep, out, params):
    """out = b - a, for a scalar b minus an array."""
    plo, phi = params[0], params[1]
    for i in range(a.shape[0]):
        j = i * bstep
        lo, hi = submod(b[j, 0], b[j, 1], a[i, 0], a[i, 1], plo, phi)
        out[i, 0] = lo
        out[i, 1] = hi


@njit(cache=True, nogil=True)
def mul_kernel(a, b, bstep, out, params):
    # one loop per reduction, so the choice is made once and not per element
    if params[5]:
        for i in range(a.shape[0]):
            j = i * bstep
            lo, hi = mulmod_m127(a[i, 0], a[i, 1], b[j, 0], b[j, 1])
            out[i, 0] = lo
            out[i, 1] = hi
    else:
        for i in range(a.shape[0]):
            j = i * bstep
            lo, hi = _mulmod(a[i, 0], a[i, 1], b[j, 0], b[j, 1], params)
            out[i, 0] = lo
            out[i, 1] = hi


@njit(cache=True, nogil=True)
def muladd_kernel(a, b, c, out, params):
    """out = a * b + c elementwise: the Beaver recombination step in one pass."""
    plo, phi = params[0], params[1]
    if params[5]:
        for i in range(a.shape[0]):
            lo, hi = mulmod_m127(a[i, 0], a[i, 1], b[i, 0], b[i, 1])
            lo, hi = addmod(lo, hi, c[i, 0], c[i, 1], plo, phi)
            out[i, 0] = lo
            out[i, 1] = hi
    else:
        for i in range(a.shape[0]):
            lo, hi = _mulmod(a[i, 0], a[i, 1], b[i, 0], b[i, 1], params)
            lo, hi = addmod(lo, hi, c[i, 0], c[i, 1], plo, phi)
            out[i, 0] = lo
            out[i, 1] = hi


@njit(inline="always")
def _beaver_one(e_lo, e_hi, d_lo, d_hi, a, b, c, i, ed_lo, ed_hi, plo, phi, params, m127):
    if m127:
        lo, hi = mulmod_m127(e_lo, e_hi, b[i, 0], b[i, 1])
        t_lo, t_hi = mulmod_m127(d_lo, d_hi, a[i, 0], a[i, 1])
    else:
        lo, hi = _mulmod(e_lo, e_hi, b[i, 0], b[i, 1], params)
        t_lo, t_hi = _mulmod(d_lo, d_hi, a[i, 0], a[i, 1], params)
    lo, hi = addmod(lo, hi, c[i, 0], c[i, 1], plo, phi)
    lo, hi = addmod(lo, hi, t_lo, t_hi, plo, phi)
    return addmod(lo, hi, ed_lo, ed_hi, plo, phi)


@njit(inline="always")
def _beaver_loop(eps, delta, av, bv, cv, am, bm, cm, alpha, party0, zv, zm, params, m127):
    plo, phi = params[0], params[1]
    zero = np.uint64(0)
    for i in range(eps.shape[0]):
        e_lo, e_hi, d_lo, d_hi = eps[i, 0], eps[i, 1], delta[i, 0], delta[i, 1]
        if m127:
            ed_lo, ed_hi = mulmod_m127(e_lo, e_hi, d_lo, d_hi)
            m_lo, m_hi = mulmod_m127(ed_lo, ed_hi, alpha[0], alpha[1])
        else:
            ed_lo, ed_hi = _mulmod(e_lo, e_hi, d_lo, d_hi, params)
            m_lo, m_hi = _mulmod(ed_lo, ed_hi, alpha[0], alpha[1], params)
        v_lo = ed_lo if party0 else zero
        v_hi = ed_hi if party0 else zero
        lo, hi = _beaver_one(e_lo, e_hi, d_lo, d_hi, av, bv, cv, i, v_lo, v_hi, plo, phi,
                             params, m127)
        zv[i, 0] = lo
        zv[i, 1] = hi
        lo, hi = _beaver_one(e_lo, e_hi, d_lo, d_hi, am, bm, cm, i, m_lo, m_hi, plo, phi,
                             params, m127)
        zm[i, 0] = lo
        zm[i, 1] = hi


@njit(cache=True, nogil=True)
def beaver_kernel(eps, delta, av, bv, cv, am, bm, cm, alpha, party0, zv, zm, params):
    """Beaver recombination of value and MAC shares in one pass (SPDZ online multiplication).

    zv = c + eps b + delta a (+ eps delta at party 0);
    zm = c' + eps b' + delta a' + alpha eps delta.
    The loop is instantiated twice so that the reduction is chosen once, not per element.
    """
    if params[5]:
        _beaver_loop(eps, delta, av, bv, cv, am, bm, cm, alpha, party0, zv, zm, params, True)
    else:
        _beaver_loop(eps, delta, av, bv, cv, am, bm, cm, alpha, party0, zv, zm, params, False)


@njit(cache=True, nogil=True)
def sum_kernel(a, out, params):
    """Sum of each row of a (rows, cols, 2) array into out (rows, 2)."""
    plo, phi = params[0], params[1]
    for r in range(a.shape[0]):
        slo = np.uint64(0)
        shi = np.uint64(0)
        for i in range(a.shape[1]):
            slo, shi = addmod(slo, shi, a[r, i, 0], a[r, i, 1], plo, phi)
        out[r, 0] = slo
        out[r, 1] = shi


@njit(inline="always")
def _dot_rows(a, b, out, params, m127):
    plo, phi = params[0], params[1]
    for r in range(a.shape[0]):
        slo = np.uint64(0)
        shi = np.uint64(0)
        for i in range(a.shape[1]):
            if m127:
                lo, hi = mulmod_m127(a[r, i, 0], a[r, i, 1], b[r, i, 0], b[r, i, 1])
            else:
                lo, hi = _mulmod(a[r, i, 0], a[r, i, 1], b[r, i, 0], b[r, i, 1], params)
            slo, shi = addmod(slo, shi, lo, hi, plo, phi)
        out[r, 0] = slo
        out[r, 1] = shi


@njit(cache=True, nogil=True)
def dot_kernel(a, b, out, params):
    """out[r] = sum_i a[r, i] * b[r, i] for (rows, cols, 2) arrays."""
    if params[5]:
        _dot_rows(a, b, out, params, True)
    else:
        _dot_rows(a, b, out, params, False)


@njit(cache=True, nogil=True)
def matmul_kernel(a, b, out, params):
    """out = a @ b for (n, k, 2) and (k, m, 2) element matrices."""
    plo, phi = params[0], params[1]
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            slo = np.uint64(0)
            shi = np.uint64(0)
            for t in range(a.shape[1]):
                lo, hi = _mulmod(a[i, t, 0], a[i, t, 1], b[t, j, 0], b[t, j, 1], params)
                slo, shi = addmod(slo, shi, lo, hi, plo, phi)
            out[i, j, 0] = slo
            out[i, j, 1] = shi


@njit(cache=True, nogil=True)
def pow_kernel(a, e, out, params):
    """out = a ** e for a public exponent e given as (lo, hi) bits."""
    for i in range(a.shape[0]):
        rlo = np.uint64(1)
        rhi = np.uint64(0)
        blo = a[i, 0]
        bhi = a[i, 1]
        for w in range(2):
            word = e[w]
            for _ in range(64):
                if word & np.uint64(1):
                    rlo, rhi = _mulmod(rlo, rhi, blo, bhi, params)
                blo, bhi = _mulmod(blo, bhi, blo, bhi, params)
                word = word >> np.uint64(1)
        out[i, 0] = rlo
        out[i, 1] = rhi


@njit(cache=True, nogil=True)
def prefix_products_kernel(a, out, params):
    """out[i] = a[0] * ... * a[i]: the forward pass of Montgomery's batch inversion."""
    lo = np.uint64(1)
    hi = np.uint64(0)
    for i in range(a.shape[0]):
        lo, hi = _mulmod(lo, hi, a[i, 0], a[i, 1], params)
        out[i, 0] = lo
        out[i, 1] = hi


@njit(cache=True, nogil=True)
def batch_inverse_backward_kernel(a, prefix, inv_total, out, params):
    """Backward pass: given inv_total = (a[0]...a[n-1])^-1, write every a[i]^-1."""
    tlo = inv_total[0]
    thi = inv_total[1]
    for i in range(a.shape[0] - 1, 0, -1):
        lo, hi = _mulmod(tlo, thi, prefix[i - 1, 0], prefix[i - 1, 1], params)
        tlo, thi = _mulmod(tlo, thi, a[i, 0], a[i, 1], params)
        out[i, 0] = lo
        out[i, 1] = hi
    if a.shape[0] > 0:
        out[0, 0] = tlo
        out[0, 1] = thi


@njit(cache=True, nogil=True)
def from_int64_kernel(x, out, params):
    """Signed 64-bit integers into the field: negatives become p - |x|."""
    plo, phi = params[0], params[1]
    for i in range(x.shape[0]):
        v = x[i]
        if v >= 0:
            out[i, 0] = np.uint64(v)
            out[i, 1] = np.uint64(0)
        else:
            mag = np.uint64(-(v + 1)) + np.uint64(1)  # |v| without overflow at int64 min
            lo, hi = submod(plo, phi, mag, np.uint64(0), plo, phi)  # p - |v|
            out[i, 0] = lo
            out[i, 1] = hi


@njit(cache=True, nogil=True)
def less_than_kernel(a, limit, out):
    """out[i] = a[i] < limit, comparing 128-bit unsigned values."""
    llo = limit[0]
    lhi = limit[1]
    for i in range(a.shape[0]):
        hi = a[i, 1]
        out[i] = hi < lhi or (hi == lhi and a[i, 0] < llo)
