"""Linear least squares with a ridge penalty on range-standardised features.

The normal equations come from the exact scatter matrix of the centred
columns (one fused dot product), standardised by the public half-widths of
the ranges: A_ij = cov(x_i, x_j) / (h_i h_j), a_i = cov(x_i, y) / (h_i h_y),
all entries in [-1, 1]. The system (A + lambda I) b~ = a is solved by
Gaussian elimination without pivoting; b = b~ h_y / h.

Why a ridge term, and on the standardised scale: a worst-case error bound for
a linear solve needs a lower bound on the smallest eigenvalue of the matrix,
and nothing public gives one for A alone (two collinear columns make it
singular). lambda > 0 is that bound, so the solve is stable and its bound
holds for every data set in the ranges; on standardised features one lambda
means the same for every column, whatever its unit. With lambda = 10^-3 the
coefficients differ from least squares only for nearly collinear features.
The model is scikit-learn's `Ridge(alpha = lambda n)` fitted on x / h.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC, trunc_many
from enigma.mpc.secret import Secret
from enigma.mpc.select import join

from .moments import _pairs, _scatter
from .precision import (
    DEFAULT_SPREAD,
    MASK_BITS,
    Bounded,
    PrecisionError,
    Range,
    as_range,
    bits_of,
    centered,
    columns,
    require,
    scale_public,
)
from .reciprocals import G, floor_at, inverse, inverse_error

DEFAULT_RIDGE = 1e-3
"""Penalty lambda on the range-standardised coefficients."""

MAX_FEATURES = 5


@dataclass
class Regression:
    """Coefficients (d,), intercept and R^2 (on the rows it was fitted to)."""

    coef: Bounded
    intercept: Bounded
    r2: Bounded


def linear_regression(e: Engine, x: Secret, y: Secret, x_ranges: Range | Sequence[Range],
                      y_range: Range, ridge: float = DEFAULT_RIDGE,
                      min_std: float | None = None, f: int = FRAC) -> Regression:
    """Fit y ~ x b + c with the penalty ridge * |b h / h_y|^2 (see the module docstring).

    1. Scatter N_ij = n sum z_i z_j - S_i S_j of the centred z = (x, y), exact,
       all pairs in one fused dot (one round).
    2. A_ij = N_ij / (n^2 w_i w_j) with G = 36 bits, z~_i = S_i / (n w_i) (one round;
       w the half-widths of the codes); A_ii += ridge.
    3. `_solve` (Gaussian elimination, about 45 rounds per feature).
    4. b_i = b~_i w_y / w_i; c = m_y + w_y (z~_y - sum_i b~_i (z~_i + m_i / w_i)).
    5. R^2 = (2 b~.a - b~' A b~) / A_yy with the unpenalised A and A_yy floored at
       (min_std / h_y)^2 (default min_std: range width / 256): scikit-learn's `score`.
    Error bounds: `_bounds` (backward error of the elimination, then the perturbation
    bound |db~| <= (|da| + |dA| |b~|) / ridge); see docs/analytics.md.
    """
    x, rs, _ = columns(x, x_ranges)
    n, d = x.shape
    if not 1 <= d <= MAX_FEATURES:
        raise ValueError(f"linear_regression: 1 to {MAX_FEATURES} features, got {d}")
    if y.shape != (n,):
        raise ValueError(f"linear_regression: y must be a column of {n} rows, got {y.shape}")
    if not 0 < ridge <= 1:
        raise ValueError(f"linear_regression: ridge must lie in (0, 1], got {ridge}")
    z = join([x, y.reshape(n, 1)], axis=1)
    zc, mids, w = centered(e, z, [*rs, y_range], f)
    left, right = _pairs(d + 1)
    N = _scatter(e, zc, left, right)
    return _fit(e, N, zc.sum(axis=0), n, d, mids, w, y_range, ridge, min_std, f)


def regression_sums(e: Engine, x: Secret, y: Secret, x_ranges: Sequence[Range],
                    y_range: Range, f: int = FRAC) -> Secret:
    """The exact sums a regression needs from some rows, which add over chunks of rows.

    z = (x, y) centred by the integer midpoints of the ranges' codes (the same for every
    chunk): S_i = sum z_i (d + 1 values), then Q_p = sum z_i z_j for the pairs of
    `_pairs(d + 1)` (one fused dot, one round). `linear_regression_from_sums` fits on
    the sums of all chunks: the normal equations, assembled by network reduction.
    """
    x, rs, _ = columns(x, x_ranges)
    n, d = x.shape
    z = join([x, y.reshape(n, 1)], axis=1)
    zc, _, _ = centered(e, z, [*rs, y_range], f)
    left, right = _pairs(d + 1)
    Q = e.dot(zc[:, left], zc[:, right], axis=0)
    s = zc.sum(axis=0)
    return Secret(e, type(s.share)(np.concatenate([s.share.value, Q.share.value]),
                                   np.concatenate([s.share.mac, Q.share.mac])))


def linear_regression_from_sums(e: Engine, sums: Secret, n: int, x_ranges: Sequence[Range],
                                y_range: Range, ridge: float = DEFAULT_RIDGE,
                                min_std: float | None = None, f: int = FRAC) -> Regression:
    """`linear_regression` of n rows from their `regression_sums` (added over chunks).

    N_p = n Q_p - S_i S_j (one product, exact), then the same fit as on one quorum.
    """
    rs = list(x_ranges)
    d = len(rs)
    if not 1 <= d <= MAX_FEATURES:
        raise ValueError(f"linear_regression: 1 to {MAX_FEATURES} features, got {d}")
    left, right = _pairs(d + 1)
    S, Q = sums[:d + 1], sums[d + 1:]
    if Q.shape != (len(left),):
        raise ValueError(f"linear_regression: {Q.shape} pair sums for {d} features")
    N = Q * n - e.mul(S[left], S[right])
    mids, w = zip(*(r.center(f) for r in [*rs, y_range]), strict=True)
    return _fit(e, N, S, n, d, list(mids), list(w), y_range, ridge, min_std, f)


def _fit(e: Engine, N: Secret, zsum: Secret, n: int, d: int, mids: list[int], w: list[int],
         y_range: Range, ridge: float, min_std: float | None, f: int) -> Regression:
    """Steps 2-5 of `linear_regression` from the exact scatter N and the column sums."""
    if not 0 < ridge <= 1:
        raise ValueError(f"linear_regression: ridge must lie in (0, 1], got {ridge}")
    spread = y_range.width * DEFAULT_SPREAD if min_std is None else min_std
    left, right = _pairs(d + 1)
    bounds = [n * n * w[i] * w[j] for i, j in zip(left, right, strict=True)]
    nums = [Fraction(1 << G, w[i] * w[j]) for i, j in zip(left, right, strict=True)]
    std, std_units = scale_public(e, N, bounds, nums, n * n, 0, "linear_regression",
                                  "the scatter")
    means, mean_units = scale_public(e, zsum, [n * wi for wi in w],
                                     [Fraction(1 << G, wi) for wi in w], n, 0,
                                     "linear_regression", "a column sum")
    unit = 2.0**-G
    eps_A = float(np.max(std_units)) * unit
    eps_z = float(np.max(mean_units)) * unit
    index = {(int(i), int(j)): p for p, (i, j) in enumerate(zip(left, right, strict=True))}

    def entry(i: int, j: int) -> Secret:
        p = index[min(i, j), max(i, j)]
        return std[p:p + 1]

    cov_x = join([join([entry(i, j) for j in range(d)], axis=0).reshape(1, d)
                  for i in range(d)], axis=0)
    a = join([entry(i, d) for i in range(d)], axis=0)
    lam = round(ridge * 2**G)
    A = cov_x + e.field.from_ints([[lam if i == j else 0 for j in range(d)] for i in range(d)])
    lam_real = lam * unit  # the penalty actually used (ridge rounded to G bits)
    floor_y = (spread / (w[d] * 2.0**-f)) ** 2
    b = _bounds(d, lam_real, eps_A + unit, eps_A, floor_y)
    beta = _solve(e, A, a, d, b)
    # coefficients in the columns' units
    coef, coef_units = scale_public(e, beta, [int(b["beta"] * 2**G) + 1] * d,
                                    [Fraction(w[d], w[i]) for i in range(d)], 1, G - f,
                                    "linear_regression", "a coefficient")
    coef_err = np.array([b["err"] * w[d] / w[i] * 2.0**-f + coef_units[i] * 2.0**-f
                         for i in range(d)])
    # intercept
    shifts = [Fraction(mids[i], w[i]) for i in range(d)]
    shift_codes = e.field.from_ints([round(s * 2**G) for s in shifts])
    (inner,) = trunc_many(e, [e.dot(beta, means[:d] + shift_codes)], [G])
    inner = means[d] - inner
    lever = math.sqrt(sum((1 + abs(float(s))) ** 2 for s in shifts))
    inner_top = 1 + b["beta"] * lever
    inner_err = (eps_z + b["err"] * lever + b["beta"] * math.sqrt(d) * (eps_z + unit / 2)
                 + unit)
    icpt, icpt_units = scale_public(e, inner, int(inner_top * 2**G) + 1, w[d], 1, G,
                                    "linear_regression", "the intercept")
    icpt = icpt + e.field.const(mids[d])
    h_y = w[d] * 2.0**-f
    icpt_err = inner_err * h_y + icpt_units * 2.0**-f
    # R^2 with the unpenalised matrix
    (Ab,) = trunc_many(e, [e.dot(cov_x, beta.reshape(1, d).broadcast_to(d, d), axis=1)], [G])
    (quad,) = trunc_many(e, [e.dot(beta, Ab + a * (-2))], [G])
    yy = floor_at(e, entry(d, d), round(floor_y * 2**G), bits_of(1 << (G + 2)))
    r_yy, _ = inverse(e, yy, floor_y, 1.0)
    (r2,) = trunc_many(e, [e.mul((-quad).reshape(1), r_yy)], [G])
    r2, r2_units = scale_public(e, r2, int(2 ** (G + 1)) + 1, 1 << f, 1, G,
                                "linear_regression", "R^2")
    r2_err = b["r2"] + r2_units * 2.0**-f
    top_coef = b["beta"] * max(w[d] / wi for wi in w[:d]) * 2.0**-f
    return Regression(
        Bounded(coef, coef_err, as_range(top_coef), f),
        Bounded(icpt.reshape(), icpt_err, as_range(y_range.magnitude + h_y * inner_top), f),
        Bounded(r2.reshape(), r2_err, Range(0, 1), f))


def _bounds(d: int, lam: float, eps_A: float, eps_b: float, floor_y: float) -> dict[str, float]:
    """Worst-case errors of `_solve` and of R^2, in standardised units (u = 2^-G).

    Backward error: the computed multipliers l and rows U satisfy L U = A + dA with
    |dA_ij| <= eps_A + (d - 1) u (truncated updates) + amax (rho + u) (l = c r, r off
    by a relative rho). Back substitution x_k = trunc((y_k - trunc(U_k. x)) r_k) is
    exact for U with its diagonal divided by (1 + rho_k), which moves A by at most
    another amax rho (1 + rho) / (1 - rho) per entry, and leaves residuals of
    u + amax u / (1 - rho); those and the forward substitution's (d - 1) u pass
    through L (entries up to lmax = sqrt(amax / p_low)): |da_i| <= eps_b + (d - 1) u +
    (1 + (d - 1) lmax) (u + amax u / (1 - rho)). Since A + lambda I >= lambda I and
    lambda |b~|^2 <= var(y~) <= 1, |b' - b~|_2 <= (sqrt(d) |da| + d eta |b~|) /
    (lambda - d eta), eta the bound on |dA_ij|.
    R^2 = (2 b.a - b'Ab) / v (v = var(y~) >= floor_y): with a - A b = lambda b and
    |b| <= sqrt(v / lambda), the numerator moves by at most 2 sqrt(lambda v) err +
    2 sqrt(d v / lambda) eps_b + d err^2 + d (v / lambda) eps_A + truncations; divided
    by v >= floor_y, plus the reciprocal's relative error and A_yy's error.
    """
    unit = 2.0**-G
    amax = 1.0 + lam + eps_A
    rho = inverse_error(amax)
    eta = (eps_A + (d - 1) * unit + amax * (rho + unit)
           + amax * rho * (1 + rho) / (1 - rho))
    p_low = lam - d * eta
    if p_low <= lam / 2:
        raise PrecisionError(f"linear_regression: ridge {lam:.3g} is too small for a bound "
                             f"with {G} fractional bits; use a ridge of at least {4 * d * eta:.3g}")
    lmax = math.sqrt(amax / p_low)
    beta = 1 / math.sqrt(lam)
    # the products of `_solve`, at 2G bits, by their structural bounds: multipliers
    # l = c r (<= lmax), updates l u (<= amax) and l y (<= sqrt(amax): y_k / sqrt(p_k) is
    # a component of D^-1/2 L^-1 a, whose norm is sqrt(a . b~) <= 1), the back
    # substitution's U x (<= d amax B) and (y - U x) r = x (<= B), B = 2 / sqrt(lambda)
    for quantity, bound in (("a multiplier", lmax), ("an update", amax),
                            ("a row times the solution", d * amax * 2 * beta),
                            ("a solution", 2 * beta * (1 + rho))):
        require("linear_regression", quantity, int(bound * 2 ** (2 * G)) + 1, MASK_BITS)
    da = eps_b + (d - 1) * unit + (1 + (d - 1) * lmax) * (unit + amax * unit / (1 - rho))
    err = (math.sqrt(d) * da + d * eta * beta) / (lam - d * eta)
    if err > beta:
        raise PrecisionError(f"linear_regression: ridge {lam:.3g} leaves an error bound "
                             f"({err:.3g}) above the coefficients' own bound; raise the ridge")
    # R^2: every term of the numerator's error divided by v >= floor_y
    root_v = math.sqrt(floor_y)
    b_over_v = 1 / (math.sqrt(lam) * root_v)  # |b~| / v <= 1 / sqrt(lambda v)
    num_over_v = (2 * math.sqrt(lam) * err / root_v
                  + 2 * (b_over_v + err / floor_y) * math.sqrt(d) * eps_b
                  + d * err**2 / floor_y
                  + d * eps_A * (1 / lam + 2 * err * b_over_v + err**2 / floor_y)
                  + (b_over_v + err / floor_y) * math.sqrt(d) * d * unit + unit / floor_y)
    y_rho = inverse_error(1.0)
    r2 = num_over_v * (1 + y_rho) + y_rho + eps_A / (floor_y - eps_A) + unit
    return {"beta": beta + err, "err": err, "pivot": p_low, "amax": amax, "r2": r2}


def _solve(e: Engine, A: Secret, b: Secret, d: int, bounds: dict[str, float]) -> Secret:
    """Solve A x = b (d x d symmetric, eigenvalues >= the ridge; G bits) by elimination.

    Step k, vectorised over the trailing block:
    1. r = 1 / A_kk (`inverse`: the pivot is at least bounds["pivot"] > ridge / 2).
    2. l_i = A_ik r for i > k (one round, one truncation).
    3. A_ij -= l_i A_kj and b_i -= l_i b_k for i, j > k (one round, one truncation).
    Back substitution, k = d-1 .. 0: x_k = (b_k - sum_(j>k) A_kj x_j) r_k (four rounds).
    """
    recips, rows, ys = [], [], []
    A_cur, b_cur = A, b
    for k in range(d):
        m = d - k - 1
        r, _ = inverse(e, A_cur[0:1, 0].reshape(1), bounds["pivot"], bounds["amax"])
        recips.append(r)
        rows.append(A_cur[0, 1:])
        ys.append(b_cur[0:1])
        if m == 0:
            break
        (lk,) = trunc_many(e, [e.mul(A_cur[1:, 0], r.broadcast_to(m))], [G])
        outer, lb = e.mul_many([(lk.reshape(m, 1).broadcast_to(m, m),
                                 A_cur[0, 1:].reshape(1, m).broadcast_to(m, m)),
                                (lk, b_cur[0:1].broadcast_to(m))])
        outer, lb = trunc_many(e, [outer, lb], [G, G])
        A_cur = A_cur[1:, 1:] - outer
        b_cur = b_cur[1:] - lb
    xs: list[Secret] = []
    for k in reversed(range(d)):
        y = ys[k]
        if xs:
            (s,) = trunc_many(e, [e.dot(rows[k], join(list(reversed(xs)), axis=0))], [G])
            y = y - s.reshape(1)
        (xk,) = trunc_many(e, [e.mul(y, recips[k])], [G])
        xs.append(xk)
    return join(list(reversed(xs)), axis=0)
