"""Ordinary least squares (and ridge, when asked) with the statistics of a regression table.

The normal equations come from the exact sums of the rows, S_i = sum z_i and
Q_ij = sum z_i z_j of z = (x, y) centred at the ranges' midpoints (one fused
dot). With an intercept the matrix is the scatter of the centred columns,
standardised by the public half-widths of the ranges: A_ij = cov(x_i, x_j) /
(h_i h_j), a_i = cov(x_i, y) / (h_i h_y); without one it is the matrix of
second moments standardised by the ranges' magnitudes. Every entry lies in
[-1, 1]. The system (A + ridge I) [b~, X, W] = [a, nu I, nu z~ / (L d)] is
solved by Gaussian elimination without pivoting, all right-hand sides at once:
b~ the standardised coefficients, X = nu A^-1 (its diagonal gives the standard
errors), W what the intercept's standard error needs.

Why an eigenvalue floor: a worst-case error bound of a linear solve needs a
lower bound on the smallest eigenvalue of the matrix, and nothing public gives
one for A (two collinear columns make it singular). Least squares therefore
states its bound under a public assumption, `min_eig` (default 10^-3 on the
standardised scale: no linear combination of the standardised features has a
variance below it), with every pivot floored there so that the run stays
within its bit bounds whatever the data; a ridge penalty (only when asked)
adds itself to that floor. With `min_eig = 0` and a ridge the bound holds for
every data set in the ranges (the model is scikit-learn's `Ridge(alpha =
ridge n)` fitted on x / h).

Why an identity for storage rounding: a fixed-point feature is stored within 2^-(f+1) of
what the owner wrote, so the fit on the written data is a fit with errors in the
variables. Taking those moves as more error in the normal equations squares the
condition and multiplies by |b~| <= 1 / sqrt(kappa) (it stated R^2 bounds of 10^6 on
benefits); the exact identity of `storage.least_squares_shift` does not, and its inputs
(the eigenvalue floor, the residual, |b~|) are either the worst case the engine states
(`stored_terms`) or what the owner reads from the revealed fit (`ols_table`), with the
computation's own bounds recomputed there from the same public plan (`fit_plan`,
`comp_errors`).
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
from enigma.mpc.select import join, lt

from .moments import _pairs
from .precision import (
    DEFAULT_SPREAD,
    MASK_BITS,
    MIN_LIMB,
    Approx,
    Bounded,
    PrecisionError,
    Range,
    as_range,
    bits_of,
    centered,
    columns,
    plan_scale,
    require,
    scale_public,
)
from .reciprocals import G, floor_at, inverse, inverse_error, sqrt_g, sqrt_g_error
from .storage import FitShift, least_squares_shift

DEFAULT_MIN_EIG = 1e-3
"""Assumed floor of the smallest eigenvalue of the standardised feature matrix (least squares)."""


@dataclass
class Regression:
    """A fitted linear model, every statistic with its worst-case error bound.

    `coef` (d,) the slopes; `intercept` (scalar; 0 with no error when not fitted);
    `se` (k,): the intercept's first when fitted, then the slopes'; `r2`
    (centred with an intercept, uncentred without, as statsmodels) and `adj_r2`;
    `dof` the residual degrees of freedom n - k (public); `condition`, what the owner
    compares with `condition_limit` to know that the data met the eigenvalue floor.
    """

    coef: Bounded
    intercept: Bounded
    r2: Bounded
    adj_r2: Bounded
    se: Bounded
    dof: int
    condition: Bounded
    """trace(nu (A + ridge I)^-1), plus 2 d if a pivot was floored (`_condition`)."""
    condition_limit: float
    """The bounds above hold when condition + its error bound <= this (public)."""
    floored: Bounded | None = None
    """1 when the residual R~ was below its floor and was raised to it (0 otherwise, exact):
    se (and t, p) then describe the floor, not the sample, so the owner says so rather
    than state their bounds; the coefficients and R^2 do not use the residual."""


def linear_regression(e: Engine, x: Secret, y: Secret, x_ranges: Range | Sequence[Range],
                      y_range: Range, intercept: bool = True, ridge: float = 0.0,
                      min_eig: float = DEFAULT_MIN_EIG, min_std: float | None = None,
                      f: int = FRAC, storage: Sequence[float] | None = None) -> Regression:
    """Fit y ~ x b (+ c): least squares, or with the penalty ridge |b h / h_y|^2 when asked.

    1. `regression_sums`: S and Q of the centred z = (x, y), exact (one fused dot).
    2. The rest as `linear_regression_from_sums` (see there).
    `storage`: the storage rounding of each column of x, then y (`analytics.storage`);
    the bounds then hold against the data as written, not only as stored.
    """
    x, rs, _ = columns(x, x_ranges)
    n = x.shape[0]
    if y.shape != (n,):
        raise ValueError(f"linear_regression: y must be a column of {n} rows, got {y.shape}")
    sums = regression_sums(e, x, y, rs, y_range, f)
    return linear_regression_from_sums(e, sums, n, rs, y_range, intercept, ridge, min_eig,
                                       min_std, f, storage)


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
                                y_range: Range, intercept: bool = True, ridge: float = 0.0,
                                min_eig: float = DEFAULT_MIN_EIG,
                                min_std: float | None = None, f: int = FRAC,
                                storage: Sequence[float] | None = None) -> Regression:
    """`linear_regression` of n rows from their `regression_sums` (added over chunks).

    1. With an intercept N_p = n Q_p - S_i S_j (one product), the exact centred scatter,
       scaled by 1 / (n^2 w_i w_j); without, N_p = Q_p + m_j S_i + m_i S_j + n m_i m_j
       (local), the exact second moments, scaled by 1 / (n s_i s_j), s = |m| + w.
    2. A (+ ridge I) and the right-hand sides, with G = 36 bits (one round).
    3. `_solve` (Gaussian elimination, about 45 rounds per feature).
    4. Slopes b_i = b~_i s_y / s_i; intercept m_y + w_y (z~_y - sum_i b~_i z~_i).
    5. R^2 = (2 b~.a - b~' A b~) / A_yy (unpenalised A, A_yy floored); residual
       R~ = A_yy - that numerator, floored alike.
    6. `_standard_errors` from R~ and the diagonal of nu A^-1 (nu = ridge + min_eig).
    """
    rs = list(x_ranges)
    d = len(rs)
    check_fit(d, n, intercept, ridge, min_eig)
    left, right = _pairs(d + 1)
    S, Q = sums[:d + 1], sums[d + 1:]
    if Q.shape != (len(left),):
        raise ValueError(f"linear_regression: {Q.shape} pair sums for {d} features")
    mids, w = (list(v) for v in zip(*(r.center(f) for r in [*rs, y_range]), strict=True))
    if intercept:
        N = Q * n - e.mul(S[left], S[right])
        scales, den = w, n * n
    else:
        ml = e.field.from_ints([mids[j] for j in right])
        mr = e.field.from_ints([mids[i] for i in left])
        const = e.field.from_ints([n * mids[i] * mids[j] for i, j in zip(left, right,
                                                                              strict=True)])
        N = Q + S[left] * ml + S[right] * mr + const
        scales, den = [abs(m) + wi for m, wi in zip(mids, w, strict=True)], n
    deltas = list(storage) if storage is not None else [0.0] * (d + 1)
    if len(deltas) != d + 1:
        raise ValueError(f"linear_regression: {len(deltas)} storage roundings for {d + 1} "
                         "columns (x, then y)")
    return _fit(e, N, S, n, d, mids, w, scales, den, y_range, intercept, ridge, min_eig,
                min_std, f, storage_ratios(deltas, scales, f))


def storage_ratios(storage: Sequence[float], scales: Sequence[int], f: int
                   ) -> tuple[float, float]:
    """(eps, rho_y) of a fit: the features' storage rounding over their scales, eps =
    sqrt(sum_j (delta_j / s_j)^2), and y's, rho_y = delta_y / s_y (`storage` and `scales`:
    the d features, then y; a scale in units of 2^-f). One formula for the engine's worst
    case (`stored_terms`), the checker's refusal (`check_fit`) and the owner's table."""
    rho = [dl / (s * 2.0**-f) for dl, s in zip(storage, scales, strict=True)]
    return math.sqrt(sum(r * r for r in rho[:-1])), rho[-1]


def stored_terms(d: int, n: int, intercept: bool, ridge: float, mu: float,
                 scales: Sequence[int], h_y: float, floor_y: float, lever: float,
                 data: tuple[float, float]) -> np.ndarray:
    """What storage rounding adds to each revealed bound of a fit, worst case over the data
    that pass the condition test (public: the engine's, and what the advice reports).

    The layout of `ols`: [coef (k, the intercept first), se (k), R^2, adjusted R^2,
    condition (0: a test on the computed value)]. `data` = (eps, rho_y) as `_fit`; kappa =
    ridge + mu (the floor the condition proves), |res| <= 1, |b~| <= 1 / sqrt(kappa),
    |y| >= sqrt(floor_y), |z-bar| <= `lever` = sqrt(sum_i (1 + |m_i / w_i|)^2) (`fit_plan`'s;
    unused without an intercept). Raises PrecisionError (a refusal) when the features'
    rounding is too large against their ranges for any bound (eps >= sqrt(mu) without a
    ridge; `check_fit` says so first).
    """
    eps, rho_y = data
    kappa = ridge + mu
    shift = least_squares_shift(eps, rho_y, kappa, ridge, norm_y=math.sqrt(floor_y),
                                lever=lever if intercept else None, d=d)
    if not math.isfinite(shift.coef):  # the checker refuses this before a run
        raise PrecisionError(_no_floor(eps, kappa))
    g = np.full(d, 1 / math.sqrt(kappa))  # sqrt(((A + r)^-1)_jj) <= 1 / sqrt(kappa)
    return storage_vector(shift, n, intercept, scales, h_y, g, 1.0)


def storage_vector(shift: FitShift, n: int, intercept: bool, scales: Sequence[int],
                   h_y: float, g: np.ndarray, resid: float,
                   se: np.ndarray | None = None) -> np.ndarray:
    """`shift` (standardised, `storage.least_squares_shift`) in the units of each revealed
    element of `ols` ([coef (k), se (k), R^2, adjusted R^2, condition]): slope i times
    s_y / s_i, the intercept times h_y, se_j by fact_j (g_j se_abs + se_rel se_j / fact_j)
    with fact_j = (s_y / s_j) / sqrt(dof), g_j >= sqrt(((A + r)^-1)_jj) and `se` the
    stored data's exact slopes' se at most (default fact_j g_j resid, resid >= u)."""
    d = len(scales) - 1
    k = d + intercept
    dof = n - k
    ratio = np.array([scales[d] / scales[i] for i in range(d)], dtype=np.float64)
    fact = ratio / math.sqrt(dof)
    se_top = fact * g * resid if se is None else se
    coef = shift.coef * ratio
    se_move = fact * g * shift.se_abs + shift.se_rel * se_top
    lead = [h_y * shift.intercept] if intercept else []
    lead_se = [h_y * shift.se0 / math.sqrt(dof)] if intercept else []
    r2 = min(shift.r2, 1.0)
    adj = min(r2 * (n - intercept) / dof, 1 + (n - intercept) / dof)
    return np.array([*lead, *coef, *lead_se, *se_move, r2, adj, 0.0], dtype=np.float64)


def _no_floor(eps: float, kappa: float) -> str:
    return (f"linear_regression: the features' storage rounding ({eps:.3g} of their scales) "
            f"is not below sqrt(ridge + min_eig) = {math.sqrt(kappa):.3g}, so no bound holds "
            "against the data as written; store them as integers (times 10^d for d "
            "decimals), widen their ranges or pass a ridge")


def check_fit(d: int, n: int | None, intercept: bool, ridge: float, min_eig: float,
              ranges: Sequence[Range] | None = None, f: int = FRAC,
              storage: Sequence[float] | None = None) -> None:
    """Refuse, from public facts alone, a fit whose bound cannot hold or whose numbers could
    overflow: what the checker tells the analyst before any run (and the engine again).
    With the ranges of the d features and y, also the scatter's bit bound; with their
    storage roundings (x, then y), that the features' rounding leaves an eigenvalue floor
    for the data as written (`storage.least_squares_shift`)."""
    if d < 1:
        raise ValueError("linear_regression: at least one feature")
    if not 0 <= ridge <= 1 or not 0 <= min_eig <= 1 or ridge + min_eig <= 0:
        raise ValueError(f"linear_regression: ridge ({ridge}) and min_eig ({min_eig}) must lie "
                         "in [0, 1] and not both be 0")
    if n is not None and n <= d + intercept:
        raise ValueError(f"linear_regression: {n} rows for {d + intercept} coefficients; "
                         "a fit needs more rows than coefficients")
    unit = 2.0**-G
    lam, mu = (c * unit for c in parameter_codes(ridge, min_eig))
    _bounds(d, lam, lam + mu, 3 * unit, 3 * unit, 1e-4)
    if ranges is not None and n is not None:
        mids, w = zip(*(r.center(f) for r in ranges), strict=True)
        scales = w if intercept else [abs(m) + wi for m, wi in zip(mids, w, strict=True)]
        den = n * n if intercept else n
        require("linear_regression", "the scatter", den * max(scales) ** 2,
                MASK_BITS - 1 - MIN_LIMB)
        if storage is not None:
            eps, _ = storage_ratios(storage, scales, f)
            if not ridge and eps >= math.sqrt(mu):
                raise ValueError(_no_floor(eps, lam + mu))


def max_features(intercept: bool = True, ridge: float = 0.0,
                 min_eig: float = DEFAULT_MIN_EIG) -> int:
    """The most features a fit with these parameters accepts (its precision's limit)."""
    d = 0
    while d < 1024:
        try:
            check_fit(d + 1, None, intercept, ridge, min_eig)
        except PrecisionError:
            break
        d += 1
    return d


def _fit(e: Engine, N: Secret, zsum: Secret, n: int, d: int, mids: list[int], w: list[int],
         scales: list[int], den: int, y_range: Range, intercept: bool, ridge: float,
         min_eig: float, min_std: float | None, f: int,
         data: tuple[float, float] = (0.0, 0.0)) -> Regression:
    """Steps 2-6 of `linear_regression_from_sums` from the exact matrix N and column sums.

    `data` = (eps, rho_y): the storage rounding of the features over their scales, eps =
    sqrt(sum_j (delta_j / s_j)^2), and of y, rho_y = delta_y / s_y (`analytics.storage`).
    The bounds of steps 2-6 are against the exact fit on the stored data; `stored_terms`
    adds how far that fit may lie from the fit on the data as written, worst case over the
    data that pass the condition (`storage.least_squares_shift`: an exact identity of
    errors in the variables, nothing growing with n). The owner's `ols_table` replaces
    those worst cases by what the revealed values prove.
    """
    spread = y_range.width * DEFAULT_SPREAD if min_std is None else min_std
    floor_y = (spread / (scales[d] * 2.0**-f)) ** 2
    plan = fit_plan(d, n, intercept, ridge, min_eig, scales, w, mids, floor_y, f)
    left, right = _pairs(d + 1)
    unit = 2.0**-G
    std, std_units = scale_public(e, N, *plan.scalings["std"], "linear_regression",
                                  "the scatter")
    _agree(std_units, plan.units["std"])
    eps_A = plan.eps_A
    index = {(int(i), int(j)): p for p, (i, j) in enumerate(zip(left, right, strict=True))}

    def entry(i: int, j: int) -> Secret:
        p = index[min(i, j), max(i, j)]
        return std[p:p + 1]

    cov_x = join([join([entry(i, j) for j in range(d)], axis=0).reshape(1, d)
                  for i in range(d)], axis=0)
    a = join([entry(i, d) for i in range(d)], axis=0)
    lam, mu = plan.lam, plan.mu  # the parameters actually used (G bits)
    nu_code = plan.nu_code  # the eigenvalue floor: X = nu (A + ridge I)^-1 <= I
    A = cov_x + e.field.from_ints([[plan.lam_code if i == j else 0 for j in range(d)]
                                   for i in range(d)])
    # right-hand sides: a, nu I and, with an intercept, nu z~ / (L d) (all of norm <= 1)
    eye = a.reshape(d, 1).broadcast_to(d, d) * 0 + e.field.from_ints(
        [[nu_code if i == j else 0 for j in range(d)] for i in range(d)])
    rhs = [a.reshape(d, 1), eye]
    shifts = plan.shifts
    if intercept:
        means, mean_units = scale_public(e, zsum, *plan.scalings["mean"], "linear_regression",
                                         "a column sum")
        _agree(mean_units, plan.units["mean"])
        zbar = means[:d] + e.field.from_ints([round(s * 2**G) for s in shifts])
        zcol, zcol_units = scale_public(e, zbar, *plan.scalings["zcol"], "linear_regression",
                                        "the mean vector")
        _agree(zcol_units, plan.units["zcol"])
        rhs.append(zcol.reshape(d, 1))
    b = plan.b
    comp = comp_errors(plan, b)
    k = d + intercept
    stored = stored_terms(d, n, intercept, lam, mu, scales, w[d] * 2.0**-f, floor_y,
                          plan.lever, data)
    X, floored = _solve(e, A, join(rhs, axis=1), d, b, mu > 0)
    beta = X[:, 0]
    # slopes in the columns' units
    coef, coef_units = scale_public(e, beta, *plan.scalings["coef"], "linear_regression",
                                    "a coefficient")
    _agree(coef_units, plan.units["coef"])
    coef_err = comp[intercept:k] + stored[intercept:k]
    top_coef = b["beta"] * max(scales[d] / si for si in scales[:d])
    h_y = w[d] * 2.0**-f
    # R^2 with the unpenalised matrix; the residual R~ = A_yy - its numerator
    (Ab,) = trunc_many(e, [e.dot(cov_x, beta.reshape(1, d).broadcast_to(d, d), axis=1)], [G])
    (quad,) = trunc_many(e, [e.dot(beta, Ab + a * (-2))], [G])
    floor_code = round(floor_y * 2**G)
    yy = floor_at(e, entry(d, d), floor_code, bits_of(1 << (G + 2)))
    r_yy, _ = inverse(e, yy, floor_y, 1.0)
    (r2,) = trunc_many(e, [e.mul((-quad).reshape(1), r_yy)], [G])
    r2, r2_units = scale_public(e, r2, *plan.scalings["r2"], "linear_regression", "R^2")
    _agree(r2_units, plan.units["r2"])
    r2_err = min(comp[2 * k] + stored[2 * k], 1.0)  # R^2 lies in [0, 1]
    dof = n - k
    adj, adj_units = scale_public(e, (-r2) + (1 << f), *plan.scalings["adj"],
                                  "linear_regression", "the adjusted R^2")
    _agree(adj_units, plan.units["adj"])
    adj = (-adj) + (1 << f)
    adj_err = min(comp[2 * k + 1] + stored[2 * k + 1],
                  1 + (n - intercept) / dof)  # the width of its range
    raw = entry(d, d) + quad.reshape(1)
    low = lt(e, raw, e.field.const(floor_code), bits_of(1 << (G + 3)))
    resid = raw + e.mul(low, (-raw) + floor_code)  # max(R~, floor): the floor keeps se sized
    if intercept:
        inner = means[d] - _intercept_inner(e, beta, means[:d], shifts)
        icpt, icpt_units = scale_public(e, inner, *plan.scalings["icpt"], "linear_regression",
                                        "the intercept")
        _agree(icpt_units, plan.units["icpt"])
        icpt = (icpt + e.field.const(mids[d])).reshape()
        inner_top = 1 + b["beta"] * plan.lever
        icpt_b = Bounded(icpt, comp[0] + stored[0],
                         as_range(y_range.magnitude + h_y * inner_top), f)
        lead = (X[:, 1 + d], zbar)
    else:
        icpt_b = Bounded(coef[0:1].reshape() * 0, 0.0, Range(0, 0), f)
        lead = None
    se = _standard_errors(e, X, resid, plan, lead, f)
    se.error = comp[k:2 * k] + stored[k:2 * k]
    condition = _condition(e, X, floored, d, f)
    limit = condition_limit(d, ridge, min_eig)
    require("linear_regression", "the inputs' error against condition_limit's allowance",
            int(max(eps_A, plan.eps_b) / unit), CONDITION_SLACK.bit_length() - 1)
    return Regression(
        Bounded(coef, coef_err, as_range(top_coef), f), icpt_b,
        Bounded(r2.reshape(), r2_err, Range(0, 1), f),
        Bounded(adj.reshape(), adj_err, Range(-(n - intercept) / dof, 1), f), se, dof,
        condition, limit, Bounded(low.reshape() * (1 << f), 0.0, Range(0, 1), f))


@dataclass
class CoefficientTable:
    """statsmodels' summary columns, computed by the owner from revealed coef and se."""

    coef: np.ndarray
    se: np.ndarray
    t: np.ndarray
    p: np.ndarray
    t_error: np.ndarray
    """Bound on |t - exact t| from the revealed values and their bounds (inf if se may be 0)."""
    p_error: np.ndarray


def coefficient_table(coef: np.ndarray, coef_err: np.ndarray, se: np.ndarray,
                      se_err: np.ndarray, dof: int) -> CoefficientTable:
    """t = coef / se and two-sided p = 2 sf(|t|, dof), on the owner's side, with bounds.

    |t' - t| <= (|db| + |t'| dse) / (se' - dse) for se' > dse (the exact se >= se' - dse).
    p is monotone in |t|, so its bound is the spread of p over [|t'| - dt, |t'| + dt].
    scipy is imported here only: the engine's parties never need it.
    """
    from scipy import stats

    coef, se = np.asarray(coef, float), np.asarray(se, float)
    coef_err = np.broadcast_to(np.asarray(coef_err, float), coef.shape)
    se_err = np.broadcast_to(np.asarray(se_err, float), se.shape)
    safe = se > se_err
    t = np.where(se > 0, coef / np.where(se > 0, se, 1.0), np.inf)
    dt = np.where(safe, (coef_err + np.abs(t) * se_err)
                  / np.where(safe, se - se_err, 1.0), np.inf)
    p = 2 * stats.t.sf(np.abs(t), dof)
    lo = 2 * stats.t.sf(np.abs(t) + dt, dof)
    near = np.where(np.isfinite(dt), np.abs(t) - np.where(np.isfinite(dt), dt, 0.0), 0.0)
    hi = 2 * stats.t.sf(np.maximum(near, 0.0), dof)  # an unbounded t: p may be 1
    return CoefficientTable(coef, se, t, p, dt, np.maximum(hi - p, p - lo))


@dataclass
class OlsTable:
    """statsmodels' OLS table from a revealed `ols` vector, each value with an a posteriori
    bound against the fit on the data as the owner wrote it (`ols_table`)."""

    coef: np.ndarray
    coef_error: np.ndarray
    se: np.ndarray
    se_error: np.ndarray
    t: np.ndarray
    t_error: np.ndarray
    p: np.ndarray
    p_error: np.ndarray
    r2: float
    r2_error: float
    adj_r2: float
    adj_r2_error: float
    dof: int
    certified: bool
    reason: str = ""
    """Why nothing is certified (the condition above its limit), or which bound is capped."""


def ols_table(value: np.ndarray, error: np.ndarray, x_ranges: Sequence[Range],
              y_range: Range, n: int, intercept: bool = True, ridge: float = 0.0,
              min_eig: float = DEFAULT_MIN_EIG, storage: Sequence[float] | None = None,
              f: int = FRAC) -> OlsTable:
    """The owner's regression table: the engine's worst-case storage terms replaced by what
    the revealed values prove (the same identity, `storage.least_squares_shift`).

    `value`, `error`: the revealed [coef (k), se (k), R^2, adjusted R^2, condition, floored]
    and its stated bounds; `storage` the storage rounding of each column of x, then y. The engine's
    bound of each element is its computation's (against the exact fit on the stored data)
    plus `stored_terms` (public); the owner subtracts the latter and adds, from values it
    holds anyway (nothing here is new to it; every input is revealed or public):

    - kappa <= lambda_min(A + ridge I) from the condition t' (the computed trace of
      nu (A + r)^-1): trace(nu M^-1) <= t' / (1 - gamma) as in `condition_limit`, and
      A + r = M - dA moves every eigenvalue by at most d eta.
    - the residual u = sqrt(R~) from the slopes' se: sum_j se_j^2 (s_j / s_y)^2 nu dof =
      R~ trace(nu (A + r)^-1) (se_j^2 = (s_y / s_j)^2 R~ X_jj / (nu dof)), within the
      trace's and the se's bounds; |y| = u / sqrt(1 - R^2); |b~| from coef; 1 + q =
      se_0^2 dof / (h_y u)^2 from the intercept's se.
    Where the condition exceeds its limit nothing is certified (the engine's bounds do not
    hold either): NaN-free values with infinite bounds and the reason. R^2 and adjusted R^2
    bounds are capped at their ranges, and `reason` says so.
    """
    rs = list(x_ranges)
    d = len(rs)
    k = d + intercept
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    err = np.broadcast_to(np.asarray(error, dtype=np.float64), v.shape).copy()
    if v.size != 2 * k + 4:
        raise ValueError(f"ols_table: {v.size} values for {k} coefficients, expected "
                         f"{2 * k + 4}")
    dof = n - k
    deltas = [0.0] * (d + 1) if storage is None else list(storage)
    if len(deltas) != d + 1:
        raise ValueError(f"ols_table: {len(deltas)} storage roundings for {d + 1} columns")
    mids, w = (list(t) for t in zip(*(r.center(f) for r in [*rs, y_range]), strict=True))
    scales = w if intercept else [abs(m) + wi for m, wi in zip(mids, w, strict=True)]
    eps, rho_y = storage_ratios(deltas, scales, f)
    unit = 2.0**-G
    spread = y_range.width * DEFAULT_SPREAD
    floor_y = (spread / (scales[d] * 2.0**-f)) ** 2
    h_y = w[d] * 2.0**-f
    plan = fit_plan(d, n, intercept, ridge, min_eig, scales, w, mids, floor_y, f)
    lam, mu, nu = plan.lam, plan.mu, plan.nu
    # the engine's computation bounds, before its storage terms (none at all for the plain
    # interpreter, whose stated bound is 0: float64 on the stored values)
    comp = np.minimum(comp_errors(plan, plan.b), err[:2 * k + 2])
    coef, se = v[:k], v[k:2 * k]
    r2, adj, cond = float(v[2 * k]), float(v[2 * k + 1]), float(v[2 * k + 2])
    cond_err, floored = float(err[2 * k + 2]), bool(v[2 * k + 3] >= 0.5)
    limit = condition_limit(d, ridge, min_eig)
    if not cond + cond_err <= limit:
        table = coefficient_table(coef, err[:k], se, err[k:2 * k], dof)
        inf = np.full(k, np.inf)
        return OlsTable(coef, inf, se, inf, table.t, inf, table.p, inf, r2, 1.0, adj,
                        1 + (n - intercept) / dof, dof, False,
                        f"ols: the condition {cond:.4g} (+ {cond_err:.2g}) exceeds its limit "
                        f"{limit:.6g}: the features are (nearly) collinear at min_eig = "
                        f"{min_eig:g}, and no bound holds")
    # kappa from the condition (`condition_limit`'s argument, two-sided)
    gamma, move = _condition_slack(d, lam, nu)
    beta = move / nu
    tm_hi, tm_lo = (cond + cond_err) / (1 - gamma), max(cond - cond_err, 0.0) / (1 + gamma)
    ta_hi = tm_hi / (1 - beta * tm_hi) if beta * tm_hi < 1 else math.inf
    ta_lo = tm_lo / (1 + beta * tm_lo)
    kappa = max(nu / ta_hi, nu if mu > 0 else lam)  # the condition passed: at least nu
    # the residual from the slopes' se and the trace
    slope = slice(intercept + k, 2 * k)
    ratio = np.array([scales[i] / scales[d] for i in range(d)], dtype=np.float64)
    fact = 1 / ratio / math.sqrt(dof)
    se_lo, se_hi = np.maximum(v[slope] - comp[slope], 0.0), v[slope] + comp[slope]
    u_lo = math.sqrt(nu * dof * float(np.sum((se_lo * ratio) ** 2)) / ta_hi)
    u_hi = min(1.0, math.sqrt(nu * dof * float(np.sum((se_hi * ratio) ** 2)) / ta_lo)
               if ta_lo > 0 else 1.0)
    if floored:  # the se were computed from the floor, not the residual: u <= u_hi only
        u_lo = 0.0
    r2_lo = max(r2 - comp[2 * k], 0.0)
    # |y| >= u / sqrt(1 - R^2) only where the engine's floor on the residual (floor_y) did
    # not bind: a floored residual overstates u, and so |y|, whose lower bound the R^2 and
    # storage bounds divide by. Where it may have bound: the fit's assumption A_yy >= floor_y.
    norm_y = math.sqrt(floor_y)
    if u_lo**2 > floor_y:
        norm_y = max(norm_y, min(1.0, u_lo / math.sqrt(1 - r2_lo) if r2_lo < 1 else u_lo))
    # the computation's bounds again, at the proven eigenvalue floor and the roots' own sizes
    post = _bounds(d, lam, kappa, plan.eps_A + unit, plan.eps_b, max(floor_y, norm_y**2))
    c_lo = list(nu * (se_lo / (fact * u_hi)) ** 2) if u_hi > 0 else list(plan.c_lows[intercept:])
    c_top = [min(1.0, nu * (h / (fa * u_lo)) ** 2) if u_lo > 0 else 1.0
             for h, fa in zip(se_hi, fact, strict=True)]
    q_top = None
    if intercept:
        s0_lo, s0_hi = max(se[0] - comp[k], 0.0), se[0] + comp[k]
        q_lo = s0_lo**2 * dof / (h_y * u_hi) ** 2 if u_hi > 0 else 1.0
        q_top = s0_hi**2 * dof / (h_y * u_lo) ** 2 if u_lo > 0 else None
        c_lo.insert(0, nu * max(q_lo, 1.0) / float(plan.K))
        c_top.insert(0, min(1.0, nu * q_top / float(plan.K)) if q_top else 1.0)
    comp = np.minimum(comp, comp_errors(plan, post, u_lo**2, u_hi**2, c_lo, c_top))
    se_lo, se_hi = np.maximum(v[slope] - comp[slope], 0.0), v[slope] + comp[slope]
    norm_b = float(np.linalg.norm((np.abs(coef[intercept:]) + comp[intercept:k]) * ratio))
    r2_spread = _r2_spread(r2, float(comp[2 * k]))
    lever = plan.lever if intercept else None
    shift = least_squares_shift(eps, rho_y, kappa, lam, resid=u_hi, norm_b=norm_b,
                                norm_y=norm_y, lever=lever, q_top=q_top, r2_spread=r2_spread,
                                d=d)
    g = np.full(d, 1 / math.sqrt(kappa))
    if u_lo > 0:
        g = np.minimum(g, se_hi / (fact * u_lo))
    owner = np.concatenate([comp, [0.0]]) + storage_vector(shift, n, intercept, scales, h_y,
                                                            g, u_hi, se=se_hi)
    capped = []
    if owner[2 * k] >= 1:
        owner[2 * k] = 1.0
        capped.append("R^2")
    if owner[2 * k + 1] >= 1 + (n - intercept) / dof:
        owner[2 * k + 1] = 1 + (n - intercept) / dof
        capped.append("adjusted R^2")
    notes = [f"the bound of {' and '.join(capped)} is capped at its range: the storage "
             "rounding against the spread of y leaves it uninformative"] if capped else []
    if floored:  # the engine raised the residual to its floor: se are the floor's
        owner[k:2 * k] = np.inf
        notes.append("the residuals' spread is below the floor (1/256 of y's range): the "
                     "fit is (nearly) exact, and the standard errors, t and p describe the "
                     "floor, not the sample; the coefficients and R^2 hold")
    table = coefficient_table(coef, owner[:k], se, owner[k:2 * k], dof)
    reason = "ols: " + "; ".join(notes) if notes else ""
    return OlsTable(coef, owner[:k], se, owner[k:2 * k], table.t, table.t_error, table.p,
                    table.p_error, r2, float(owner[2 * k]), adj, float(owner[2 * k + 1]),
                    dof, True, reason)


def _r2_spread(r2: float, err: float) -> float:
    """The largest sqrt(x (1 - x)) over x in [r2 - err, r2 + err] within [0, 1]."""
    lo, hi = max(r2 - err, 0.0), min(r2 + err, 1.0)
    if lo <= 0.5 <= hi:
        return 0.5
    x = hi if hi < 0.5 else lo
    return math.sqrt(max(x * (1 - x), 0.0))


def _intercept_inner(e: Engine, beta: Secret, means: Secret, shifts: list[Fraction]) -> Secret:
    """sum_i b~_i (z~_i + m_i / w_i) with G bits (one product, one truncation)."""
    shift_codes = e.field.from_ints([round(s * 2**G) for s in shifts])
    (inner,) = trunc_many(e, [e.dot(beta, means + shift_codes)], [G])
    return inner


def _standard_errors(e: Engine, X: Secret, resid: Secret, plan: FitPlan,
                     lead: tuple | None, f: int) -> Bounded:
    """Standard errors (the intercept's first when `lead` holds its parts); their error
    bounds are `comp_errors`' (set by the caller).

    Slope j: se_j = (s_y / s_j) sqrt(R~ X_jj / (nu dof)), X_jj = nu (A^-1)_jj in (0, 1]
    (statsmodels' sqrt(sigma^2 (X'X)^-1_jj) with sigma^2 = RSS / dof, RSS = n h_y^2 R~).
    Intercept: se_0 = h_y sqrt(R~ (1 + z~' A^-1 z~) / dof) = h_y sqrt(K / (nu dof)) sqrt(R~ c_0)
    with c_0 = (nu + L d q) / K in (0, 1], q = z~ . W, K = nu + L^2 d; nu = ridge + min_eig
    and A the penalised matrix when there is a ridge.
    1. c floored at its public lower bound (one comparison): X_jj >= nu / (d amax)
       (the largest eigenvalue of A is at most d amax), c_0 >= nu / K.
    2. sqrt(R~) and sqrt(c) (one `sqrt_g` of the vector), s = their product (one round):
       two roots, each at its own floor, keep the bound far tighter than one root of
       R~ c at the product of the floors.
    3. se = s times a public factor.
    t = coef / se and its p-value are the owner's (`coefficient_table`): a division there
    is exact, and its bound follows the data.
    """
    d = plan.d
    diag = X[np.arange(d), 1 + np.arange(d)]
    c_parts = [diag]
    if lead is not None:
        W, zbar = lead
        (q,) = trunc_many(e, [e.dot(zbar, W)], [G])
        c0, c0_units = scale_public(e, q * (plan.L * d) + plan.nu_code, *plan.scalings["c0"],
                                    "linear_regression", "the intercept's variance factor")
        _agree(c0_units, plan.units["c0"])
        c_parts.insert(0, c0.reshape(1))
    k = d + (lead is not None)
    c = _floor_each(e, join(c_parts, axis=0), plan.c_lows)  # positive: a root follows
    roots = sqrt_g(e, join([resid.reshape(1), c], axis=0), 2.0)
    (s,) = trunc_many(e, [e.mul(roots[0:1].broadcast_to(k), roots[1:])], [G])
    se, se_units = scale_public(e, s, *plan.scalings["se"], "linear_regression",
                                "a standard error")
    _agree(se_units, plan.units["se"])
    top_se = max(fa * 2 for fa in plan.facts)
    return Bounded(se, np.zeros(k), Range(0, top_se), f)


def _agree(units: float | np.ndarray, planned: np.ndarray) -> None:
    """The engine's scaling made the error its plan states (`fit_plan`): one source of the
    bounds for the engine and the owner's recomputation."""
    if not np.array_equal(np.atleast_1d(np.asarray(units, dtype=np.float64)),
                          np.atleast_1d(planned)):
        raise RuntimeError("linear_regression: a scaling's error differs from its plan")


@dataclass(frozen=True)
class FitPlan:
    """The public constants of one fit (`fit_plan`): every public scaling (its arguments to
    `scale_public` and its error in units), the inputs' errors, the solver's worst-case
    bounds `b` and what the standard errors' roots need."""

    d: int
    n: int
    intercept: bool
    lam: float
    mu: float
    nu: float
    lam_code: int
    """The ridge as the engine adds it to the diagonal (lam = lam_code 2^-G)."""
    nu_code: int
    scales: list[int]
    w: list[int]
    f: int
    floor_y: float
    shifts: list[Fraction]
    L: int
    lever: float
    eps_A: float
    eps_b: float
    eps_z: float
    b: dict[str, float]
    scalings: dict[str, tuple]
    """name -> (bound, num, den, shift) as `scale_public` takes them."""
    units: dict[str, np.ndarray]
    facts: list[float]
    """The standard errors' public factors (the intercept's first)."""
    c_lows: list[float]
    """The public floors of the variance factors c (the intercept's first)."""
    K: Fraction


def parameter_codes(ridge: float, min_eig: float) -> tuple[int, int]:
    """The ridge and min_eig on the G-bit grid the engine computes with (their values are
    these codes times 2^-G): one rounding for the checker, the engine's plan and the limit."""
    return round(ridge * 2**G), round(min_eig * 2**G)


def fit_plan(d: int, n: int, intercept: bool, ridge: float, min_eig: float,
             scales: Sequence[int], w: Sequence[int], mids: Sequence[int], floor_y: float,
             f: int) -> FitPlan:
    """Everything public about a fit's error bounds, from the ranges and parameters alone
    (what the engine states, and what the owner recomputes at the data's own eigenvalue
    floor, `comp_errors`). Raises PrecisionError where the engine would refuse."""
    unit = 2.0**-G
    left, right = _pairs(d + 1)
    lam_code, mu_code = parameter_codes(ridge, min_eig)
    lam, mu = lam_code * unit, mu_code * unit
    nu_code = lam_code + mu_code
    nu = nu_code * unit
    den = n * n if intercept else n
    sc: dict[str, tuple] = {}
    sc["std"] = ([den * scales[i] * scales[j] for i, j in zip(left, right, strict=True)],
                 [Fraction(1 << G, scales[i] * scales[j]) for i, j in zip(left, right,
                                                                         strict=True)],
                 den, 0)
    shifts = [Fraction(mids[i], w[i]) for i in range(d)]
    L = max(math.ceil(1 + abs(s)) for s in shifts)
    if intercept:
        sc["mean"] = ([n * wi for wi in w], [Fraction(1 << G, wi) for wi in w], n, 0)
        sc["zcol"] = ([L << G] * d, [Fraction(nu_code, L * d)] * d, 1, G)
    units = {name: _plan_units(*args, name) for name, args in sc.items()}
    eps_A = float(np.max(units["std"])) * unit
    eps_b, eps_z = eps_A + unit, 0.0
    if intercept:
        eps_z = float(np.max(units["mean"])) * unit
        eps_b += float(np.max(units["zcol"])) * unit + nu * (eps_z + unit) / (L * d)
    b = _bounds(d, lam, lam + mu, eps_A + unit, eps_b, floor_y)
    k = d + intercept
    dof = n - k
    lever = math.sqrt(sum((1 + abs(float(s))) ** 2 for s in shifts))
    K = Fraction(nu_code, 1 << G) + L * L * d
    facts = [scales[d] / scales[j] / math.sqrt(nu * dof) for j in range(d)]
    c_lows = [nu / (d * b["amax"])] * d
    if intercept:
        facts.insert(0, w[d] * 2.0**-f * math.sqrt(float(K) / (nu * dof)))
        c_lows.insert(0, nu / float(K))
    sc2: dict[str, tuple] = {
        "coef": ([int(b["beta"] * 2**G) + 1] * d,
                 [Fraction(scales[d], scales[i]) for i in range(d)], 1, G - f),
        "r2": (int(2 ** (G + 1)) + 1, 1 << f, 1, G),
        "adj": (1 << (f + 2), n - intercept, dof, 0),
        "se": ([int(2 * 2**G)] * k, [Fraction(fa * 2**f) for fa in facts], 1, G)}
    if intercept:
        sc2["icpt"] = (int((1 + b["beta"] * lever) * 2**G) + 1, w[d], 1, G)
        sc2["c0"] = (int(K * 2**G) + 1, 1 / K, 1, 0)
    units |= {name: _plan_units(*args, name) for name, args in sc2.items()}
    return FitPlan(d, n, intercept, lam, mu, nu, lam_code, nu_code, list(scales), list(w), f,
                   floor_y, shifts, L, lever, eps_A, eps_b, eps_z, b, sc | sc2, units, facts,
                   c_lows, K)


_QUANTITIES = {"std": "the scatter", "mean": "a column sum", "zcol": "the mean vector",
               "coef": "a coefficient", "r2": "R^2", "adj": "the adjusted R^2",
               "se": "a standard error", "icpt": "the intercept",
               "c0": "the intercept's variance factor"}


def _plan_units(bound: int | Sequence[int], num: int | float | Fraction | Sequence, den: int,
                shift: int, name: str) -> np.ndarray:
    """The error in units of one `scale_public(x, bound, num, den, shift)` (its plan)."""
    many = (list, tuple, np.ndarray)
    bounds = [int(v) for v in bound] if isinstance(bound, many) else None
    nums = list(num) if isinstance(num, many) else None
    size = len(bounds or nums or [0])
    bounds = bounds or [int(bound)] * size  # type: ignore[arg-type]
    ratios = [Fraction(v) / den / 2**shift for v in (nums or [num] * size)]
    return plan_scale(bounds, ratios, "linear_regression", _QUANTITIES[name]).errors


def comp_errors(plan: FitPlan, b: dict[str, float], r_low: float = 0.0,
                top_r: float | None = None, c_lows: Sequence[float] | None = None,
                c_tops: Sequence[float] | None = None) -> np.ndarray:
    """The computation's error of each revealed element against the exact fit on the stored
    data, in the layout of `ols` without the condition: [coef (k), se (k), R^2, adjusted R^2].

    `b` the solver's bounds (`_bounds`): the engine's `plan.b` at the assumed eigenvalue
    floor, or the owner's at the floor the condition proves. The standard errors' roots
    are bounded at their floors, where the engine floors them (floor_y for R~, `plan.c_lows`
    for c), or higher where the owner proves more: `r_low` <= R~ and `c_lows` <= c (exact
    values; the computed ones are then at least these minus their errors), `top_r` >= R~
    and `c_tops` >= c (defaults 1 plus R~'s error, and 1).
    Coef: b~'s error times s_y / s_i (b~ is unitless) plus the scaling's; intercept h_y (the
    means' error, b~'s through the lever, |b~| times the means'); R^2 `b["r2"]`; adjusted
    R^2 that times (n - i) / dof; se by `Approx` through the two roots and their product.
    """
    unit, f, d, k = 2.0**-G, plan.f, plan.d, plan.d + plan.intercept
    dof = plan.n - k
    u = plan.units
    ulp = 2.0**-f
    sy = plan.scales[d]
    coef = [b["err"] * sy / plan.scales[i] + u["coef"][i] * ulp for i in range(d)]
    if plan.intercept:
        inner = (plan.eps_z + b["err"] * plan.lever
                 + b["beta"] * math.sqrt(d) * (plan.eps_z + unit / 2) + unit)
        coef.insert(0, inner * plan.w[d] * ulp + float(u["icpt"][0]) * ulp)
    r2 = b["r2"] + float(u["r2"][0]) * ulp
    adj = r2 * (plan.n - plan.intercept) / dof + float(u["adj"][0]) * ulp
    resid_err = b["num"] + plan.eps_A
    c_errs = [b["err_x"]] * d
    if plan.intercept:
        q_err = plan.L * math.sqrt(d) * b["err_x"] + plan.eps_z + 2 * unit
        c_errs.insert(0, plan.L * d * q_err / float(plan.K) + float(u["c0"][0]) * unit)
    lows = [max(fl, lo - ce - unit) for fl, lo, ce in zip(
        plan.c_lows, plan.c_lows if c_lows is None else c_lows, c_errs, strict=True)]
    tops = [1.0] * k if c_tops is None else list(c_tops)
    floor_r = max(float(plan.floor_y), r_low - resid_err)
    root_r = Approx(1.0 + resid_err if top_r is None else top_r, resid_err).sqrt(
        floor_r).plus(sqrt_g_error(2.0))
    s_err = [(root_r * Approx(top, ce + unit).sqrt(lo).plus(sqrt_g_error(2.0))).err + unit
             for ce, lo, top in zip(c_errs, lows, tops, strict=True)]
    se = [fa * (se_ + 1e-12) + su * ulp
          for fa, se_, su in zip(plan.facts, s_err, u["se"], strict=True)]
    return np.array([*coef, *se, r2, adj], dtype=np.float64)


CONDITION_SLACK = 64
"""Units of 2^-G that `condition_limit` allows the standardised inputs' errors (the engine
refuses a fit whose own are larger, so the public limit is never too generous)."""


def condition_limit(d: int, ridge: float, min_eig: float) -> float:
    """The largest revealed `condition` (plus its error bound) for which the stated bounds
    hold (public; inf when no eigenvalue floor is assumed, a ridge alone being the floor).

    t' = trace(X') + 2 d (pivots floored), X' = nu M'^-1 as computed. A floored pivot
    proves lambda_min(A + ridge I) < nu (a pivot of a positive definite matrix is at least
    its smallest eigenvalue), and makes t' > 1. Otherwise the elimination is that of
    M = A + ridge I + dA (|dA_ij| <= eta, which needs only the pivots' floor), and each
    column of X' is off by at most sqrt(d) da |M^-1| <= sqrt(d) da T / nu, T = trace(nu
    M^-1) >= nu / lambda_min(M): so T <= t' / (1 - d sqrt(d) da / nu). If T <= nu / (nu +
    d eta), lambda_min(A + ridge I) >= lambda_min(M) - d eta >= nu: the assumption holds.
    Hence the limit: t' <= (1 - d sqrt(d) da / nu) nu / (nu + d eta).
    """
    if min_eig <= 0:
        return math.inf
    unit = 2.0**-G
    lam, mu = (c * unit for c in parameter_codes(ridge, min_eig))
    nu = lam + mu
    gamma, move = _condition_slack(d, lam, nu)
    return (1 - gamma) * nu / (nu + move)


def _condition_slack(d: int, lam: float, nu: float) -> tuple[float, float]:
    """The two slacks of `condition_limit`'s argument at the computed ridge lam and floor
    nu = lam + mu, at the inputs' allowance (CONDITION_SLACK): gamma = d sqrt(d) da / nu,
    the relative move of the computed trace (T <= t' / (1 - gamma)), and d eta, the most
    the elimination's dA moves an eigenvalue. The limit and the owner's kappa from a
    revealed condition (`ols_table`) must use the same two."""
    unit = 2.0**-G
    b = _bounds(d, lam, nu, CONDITION_SLACK * unit, CONDITION_SLACK * unit, 1e-4)
    return d * math.sqrt(d) * b["da"] / nu, d * b["eta"]


def _condition(e: Engine, X: Secret, floored: Secret | None, d: int, f: int) -> Bounded:
    """trace(X') + 2 d (pivots floored) with f bits: the owner's test of the eigenvalue
    floor the bounds assume (`condition_limit`). Its error is the output's rounding only:
    the test is on the computed value itself."""
    diag = X[np.arange(d), 1 + np.arange(d)]
    total = diag.sum()
    if floored is not None:
        total = total + floored * ((2 * d) << G)
    cond, units = scale_public(e, total.reshape(1), int((3 * d + 1) * 2**G), 1 << f, 1, G,
                               "linear_regression", "the condition")
    return Bounded(cond.reshape(), float(units) * 2.0**-f, Range(0, 3 * d + 1), f)


def _floor_each(e: Engine, x: Secret, floors: list[float]) -> Secret:
    """max(x_i, floor_i) for public floors (one comparison for the vector, one round)."""
    codes = e.field.from_ints([round(fl * 2**G) for fl in floors])
    low = lt(e, x, codes, bits_of(1 << (G + 2)))
    return x + e.mul(low, (-x) + codes)


def _bounds(d: int, ridge: float, kappa: float, eps_A: float, eps_b: float,
            floor_y: float) -> dict[str, float]:
    """Worst-case errors of `_solve` and of R^2, in standardised units (u = 2^-G).

    kappa = ridge + mu is the floor of the eigenvalues of A + ridge I (mu assumed of A).
    Backward error: the computed multipliers l and rows U satisfy L U = A + dA with
    |dA_ij| <= eps_A + (d - 1) u (truncated updates) + amax (rho + u) (l = c r, r off
    by a relative rho). Back substitution x_k = trunc((y_k - trunc(U_k. x)) r_k) is
    exact for U with its diagonal divided by (1 + rho_k), which moves A by at most
    another amax rho (1 + rho) / (1 - rho) per entry, and leaves residuals of
    u + amax u / (1 - rho); those and the forward substitution's (d - 1) u pass
    through L (entries up to lmax = sqrt(amax / p_low)): |da_i| <= eps_b + (d - 1) u +
    (1 + (d - 1) lmax) (u + amax u / (1 - rho)). Since A + ridge I >= kappa I and
    kappa |b~|^2 <= var(y~) <= 1 (and every other right-hand side's solution has norm
    <= 1), |x' - x|_2 <= (sqrt(d) |da| + d eta |x|) / (kappa - d eta), eta the bound on
    |dA_ij|, for every column x of the solution ("err" for b~, "err_x" for the others).
    R^2 = (2 b.a - b'Ab) / v (v = var(y~) >= floor_y): with a - A b = ridge b and
    |b| <= sqrt(v / kappa), the numerator moves by at most 2 sqrt(ridge v) err +
    2 sqrt(d v / kappa) eps_b + d err^2 + d (v / kappa) eps_A + truncations ("num",
    absolute, v <= 1); divided by v >= floor_y, plus the reciprocal's relative error and
    A_yy's error.
    """
    unit = 2.0**-G
    amax = 1.0 + ridge + eps_A
    rho = inverse_error(amax)
    eta = (eps_A + (d - 1) * unit + amax * (rho + unit)
           + amax * rho * (1 + rho) / (1 - rho))
    p_low = kappa - d * eta
    if p_low <= kappa / 2:
        raise PrecisionError(f"linear_regression: {d} features need ridge + min_eig of at "
                             f"least {4 * d * eta:.3g} for a bound with {G} fractional bits "
                             f"(have {kappa:.3g})")
    lmax = math.sqrt(amax / p_low)
    beta = 1 / math.sqrt(kappa)
    # the products of `_solve`, at 2G bits, by their structural bounds: multipliers
    # l = c r (<= lmax), updates l u (<= amax) and l y (<= sqrt(amax): y_k / sqrt(p_k) is
    # a component of D^-1/2 L^-1 r, whose norm is sqrt(r . x) <= 1), the back
    # substitution's U x (<= d amax B) and (y - U x) r = x (<= B), B = 2 / sqrt(kappa)
    for quantity, bound in (("a multiplier", lmax), ("an update", amax),
                            ("a row times the solution", d * amax * 2 * beta),
                            ("a solution", 2 * beta * (1 + rho))):
        try:
            require("linear_regression", quantity, int(bound * 2 ** (2 * G)) + 1, MASK_BITS)
        except PrecisionError as exc:
            raise PrecisionError(f"{exc} ({d} features, ridge + min_eig {kappa:.3g})") from None
    da = eps_b + (d - 1) * unit + (1 + (d - 1) * lmax) * (unit + amax * unit / (1 - rho))
    err = (math.sqrt(d) * da + d * eta * beta) / (kappa - d * eta)
    err_x = (math.sqrt(d) * da + d * eta) / (kappa - d * eta)  # columns of norm <= 1
    if err > beta:
        raise PrecisionError(f"linear_regression: {d} features with ridge + min_eig "
                             f"{kappa:.3g} leave an error bound ({err:.3g}) above the "
                             "coefficients' own bound; raise the ridge or min_eig")
    b_root = 1 / math.sqrt(kappa)  # |b~| <= sqrt(v / kappa) <= 1 / sqrt(kappa)
    num = (2 * math.sqrt(ridge) * err + 2 * (b_root + err) * math.sqrt(d) * eps_b
           + d * err**2 + d * eps_A * (1 / kappa + 2 * err * b_root + err**2)
           + (b_root + err) * math.sqrt(d) * d * unit + unit)
    # R^2: every term of the numerator's error divided by v >= floor_y
    root_v = math.sqrt(floor_y)
    b_over_v = 1 / (math.sqrt(kappa) * root_v)  # |b~| / v <= 1 / sqrt(kappa v)
    num_over_v = (2 * math.sqrt(ridge) * err / root_v
                  + 2 * (b_over_v + err / floor_y) * math.sqrt(d) * eps_b
                  + d * err**2 / floor_y
                  + d * eps_A * (1 / kappa + 2 * err * b_over_v + err**2 / floor_y)
                  + (b_over_v + err / floor_y) * math.sqrt(d) * d * unit + unit / floor_y)
    y_rho = inverse_error(1.0)
    r2 = num_over_v * (1 + y_rho) + y_rho + eps_A / (floor_y - eps_A) + unit
    return {"beta": beta + err, "err": err, "err_x": err_x, "da": da, "eta": eta,
            "pivot": p_low, "amax": amax, "r2": r2,
            "num": num, "floor_y": floor_y}


def _solve(e: Engine, A: Secret, B: Secret, d: int, bounds: dict[str, float],
           floor: bool) -> tuple[Secret, Secret | None]:
    """Solve A X = B (A d x d symmetric, eigenvalues >= kappa; B d x r; G bits) by elimination.

    Step k, vectorised over the trailing block and all right-hand sides:
    1. r = 1 / A_kk (`inverse`; with `floor`, the pivot is first floored at
       bounds["pivot"] by one comparison, so that an assumption on the eigenvalues that
       the data break cannot push the run beyond its bit bounds).
    2. l_i = A_ik r for i > k (one round, one truncation).
    3. A_ij -= l_i A_kj and B_i -= l_i B_k for i, j > k (one round, one truncation).
    Back substitution, k = d-1 .. 0: X_k = (B_k - sum_(j>k) A_kj X_j) r_k (four rounds).
    Returns X and, with `floor`, how many pivots were floored (secret): any proves the
    assumed eigenvalue floor broken.
    """
    r_cols = B.shape[1]
    recips, rows, ys, floored = [], [], [], []
    A_cur, b_cur = A, B
    for k in range(d):
        m = d - k - 1
        pivot = A_cur[0:1, 0].reshape(1)
        if floor:
            code = round(bounds["pivot"] * 2**G)
            low = lt(e, pivot, e.field.const(code), bits_of(1 << (G + 2)))
            pivot = pivot + e.mul(low, (-pivot) + code)
            floored.append(low)
        r, _ = inverse(e, pivot, bounds["pivot"], bounds["amax"])
        recips.append(r)
        rows.append(A_cur[0, 1:])
        ys.append(b_cur[0])
        if m == 0:
            break
        (lk,) = trunc_many(e, [e.mul(A_cur[1:, 0], r.broadcast_to(m))], [G])
        outer, lb = e.mul_many([(lk.reshape(m, 1).broadcast_to(m, m),
                                 A_cur[0, 1:].reshape(1, m).broadcast_to(m, m)),
                                (lk.reshape(m, 1).broadcast_to(m, r_cols),
                                 b_cur[0].reshape(1, r_cols).broadcast_to(m, r_cols))])
        outer, lb = trunc_many(e, [outer, lb], [G, G])
        A_cur = A_cur[1:, 1:] - outer
        b_cur = b_cur[1:] - lb
    xs: list[Secret] = []
    for k in reversed(range(d)):
        y = ys[k]
        if xs:
            m = len(xs)
            later = join([x.reshape(1, r_cols) for x in reversed(xs)], axis=0)
            (s,) = trunc_many(e, [e.dot(rows[k].reshape(m, 1).broadcast_to(m, r_cols), later,
                                        axis=0)], [G])
            y = y - s
        (xk,) = trunc_many(e, [e.mul(y, recips[k].broadcast_to(r_cols))], [G])
        xs.append(xk)
    count = join(floored, axis=0).sum() if floored else None
    return join([x.reshape(1, r_cols) for x in reversed(xs)], axis=0), count


solve = _solve
"""The elimination, for other models' k x k systems (logistic regression's Newton steps)."""
solve_bounds = _bounds
"""Its worst-case bounds and bit checks (`_bounds`), for the same."""
