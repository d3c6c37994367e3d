"""Logistic regression (statsmodels' `Logit(y, X).fit()`) by a fixed number of Newton steps.

In MPC: standardised features z_j = (code_j - o_j) / u_j (o the range's integer midpoint
and u its half-width in codes with an intercept; o = 0 and u = |mid| + half-width without),
so |z| <= 1 whatever the data; a fixed, public number of damped Newton steps from 0:

    eta = X b, p = sigmoid(eta), g~ = Z'(y - p) / n, H~ = Z' diag(p (1 - p)) Z / n,
    (4 H~ + kappa I) x = 4 c g~ (regression's elimination), beta~ += x / c, clipped.

No bound is carried through the steps: the bound is a posteriori. The result is the point
b (original units, G = 36 fractional bits, revealed exactly) together with what certifies
it: the gradient g~ and the Hessian H~ at b itself, each with a worst-case error bound,
and the log-likelihood. The owner (`logit_table`) turns these into params, bse, z, p-values
and llf with bounds against the maximum-likelihood estimate on the data as written:

- The logistic loss L(beta~) = -llf / n is self-concordant-like: its third derivative
  along v is at most R |v| times its second (|sigma'''| <= sigma'', R = max_i |z_i|_2 <=
  sqrt(k)); so H(beta~ + v) lies between exp(-R |v|) H and exp(R |v|) H (Bach 2010).
- Along any direction from b, the slope of L grows from >= -|g| at least as
  lambda (1 - exp(-R t)) / R (lambda: the smallest eigenvalue of H at b, minus its error).
  If R |g| / lambda < 1, L has a minimiser, and it lies within
  t = -ln(1 - R |g| / lambda) / R of b (in standardised coordinates). Otherwise nothing is
  certified: the data may be separable (no MLE) or need more steps; the owner is told so.
- Standard errors: H at the MLE is within exp(+-R t) (1 +- eps / lambda_min) of the
  revealed H, so each se is within the square roots of those factors of the revealed one.

Costs per step: a product for eta, a comparison (the sign), exp, a reciprocal with one
Newton step (`reciprocals.inverse`), two products, one fused dot for gradient and Hessian,
one public scaling, and the k x k elimination (`regression.solve`, about 45 rounds per
coefficient); the final evaluation adds a log per row for llf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from enigma.mpc import functions
from enigma.mpc.comparison import ltz
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC, trunc_many
from enigma.mpc.secret import Secret
from enigma.mpc.select import clip, join

from .precision import MASK_BITS, MIN_LIMB, PrecisionError, Range, bits_of, require, scale_public
from .reciprocals import G, inverse
from .regression import coefficient_table, solve, solve_bounds

DEFAULT_ITERATIONS = 7
"""Newton steps from 0: benefits' fits converge to float64 precision in 5 or 6."""
MAX_ITERATIONS = 50
BETA_TOP = 64.0
"""|standardised coefficient| is clipped here after every step (a coefficient this large
moves the odds by e^64 over half a range: the data are (nearly) separable); it keeps every
intermediate within its bit bound."""
KAPPA_BITS = 16
"""The damping kappa = 2^-16 of (4 H~ + kappa I): the elimination's floor of eigenvalues
(relative to H~'s own, about 10^-3 and more on real data, it changes nothing)."""
MIN_WEIGHT_BITS = 16
"""Fewest fractional bits of the weights p (1 - p) that a fit accepts."""
EXP_ERROR = 2.0**-G + 2.0**-34
"""functions.exp at G bits of an argument <= 0: 1 ulp + a relative 2^-34 of a value <= 1."""
LOG_ERROR = 2.0**-G + 2.0**-33
"""functions.log at G bits (1 ulp + 2^-33)."""
DW_MAX = 1 / (6 * math.sqrt(3))
"""max |d/d eta of p (1 - p)|: the weights' sensitivity to the linear predictor."""


@dataclass
class Layout:
    """How a fit standardises its features (public: from the ranges alone)."""

    intercept: bool
    offsets: list[int]
    """o_j: codes subtracted (the range's integer midpoint with an intercept, else 0)."""
    scales: list[int]
    """u_j: |code - o_j| <= u_j, so z_j = (code - o_j) / u_j lies in [-1, 1]."""
    weight_bits: int
    """Fractional bits of p (1 - p) in the Hessian's exact sums (as many as fit 2^80)."""
    f: int = FRAC

    @property
    def k(self) -> int:
        return len(self.scales) + self.intercept

    def units(self) -> list[int]:
        """The scale of every column of the design, the intercept's 1 first."""
        return [1] * self.intercept + list(self.scales)

    def pairs(self) -> list[tuple[int, int]]:
        """The Hessian's upper triangle, row by row over the k design columns."""
        return [(a, b) for a in range(self.k) for b in range(a, self.k)]

    def transform(self) -> np.ndarray:
        """T with params (original units) = T beta~ (standardised)."""
        d, i = len(self.scales), int(self.intercept)
        T = np.zeros((self.k, self.k))
        for j in range(d):
            T[i + j, i + j] = 2.0**self.f / self.scales[j]
            if self.intercept:
                T[0, i + j] = -self.offsets[j] / self.scales[j]
        if self.intercept:
            T[0, 0] = 1.0
        return T


def layout(ranges: Sequence[Range], intercept: bool, n: int, f: int = FRAC) -> Layout:
    """The public standardisation of a fit, refusing one that cannot fit the precision
    (what the checker tells the analyst before any run, and the engine again)."""
    d = len(ranges)
    if d < 1:
        raise ValueError("logit: at least one feature")
    if n <= d + intercept:
        raise ValueError(f"logit: {n} rows for {d + intercept} coefficients; a fit needs more "
                         "rows than coefficients")
    mids, ws = zip(*(r.center(f) for r in ranges), strict=True)
    offsets = list(mids) if intercept else [0] * d
    scales = list(ws) if intercept else [abs(m) + w for m, w in zip(mids, ws, strict=True)]
    if min(scales) < 1:
        raise ValueError("logit: a feature's range is a single value; drop that column")
    umax = max(scales)
    # the Hessian's exact sums n u_a u_b (2^W / 4 + 2) must stay below the 2^80 that the
    # public scaling takes; the gradient's n u (2^G + 4) too
    weight_bits = min(G, (MASK_BITS - 1 - MIN_LIMB) - math.ceil(math.log2(n * umax * umax)) + 1)
    if weight_bits < MIN_WEIGHT_BITS:
        raise PrecisionError(f"logit: {n} rows of features with ranges of up to 2^"
                             f"{math.log2(umax) - f:.1f} leave {weight_bits} bits for the "
                             f"weights (at least {MIN_WEIGHT_BITS}); narrow the ranges in "
                             "the schema or use fewer rows")
    require("logit", "the gradient's sums", n * umax * ((1 << G) + 4), MASK_BITS - 1 - MIN_LIMB)
    lever = 1 + sum(abs(o) / u for o, u in zip(offsets, scales, strict=True))
    require("logit", "the intercept's terms", int(BETA_TOP * lever * 2 ** (G + f)) + 1,
            MASK_BITS)
    k = d + intercept
    try:
        solve_bounds(k, _kappa(), _kappa(), 2.0**-30, 2.0**-30, 1.0)
    except PrecisionError as exc:
        raise PrecisionError(f"logit: {k} coefficients do not fit the elimination's "
                             f"precision ({exc})") from None
    return Layout(intercept, offsets, scales, weight_bits, f)


def max_features(intercept: bool = True) -> int:
    """The most features a fit accepts (the elimination's precision limit)."""
    d = 0
    while d < 256:
        try:
            solve_bounds(d + 1 + intercept, _kappa(), _kappa(), 2.0**-30, 2.0**-30, 1.0)
        except PrecisionError:
            break
        d += 1
    return d


def _kappa() -> float:
    return 2.0**-KAPPA_BITS


def output_size(k: int) -> int:
    """Length of the revealed vector: b (k), gradient (k), Hessian (k (k + 1) / 2), llf,
    count(y), n."""
    return 2 * k + k * (k + 1) // 2 + 3


@dataclass
class Logit:
    """The revealed vector of a fit (G fractional bits) and its per-element error bounds."""

    value: Secret
    error: np.ndarray
    top: float
    """A bound on every element's magnitude (public)."""


class _Fit:
    """One party's run of a fit: the data, centred once, and the two repeated steps."""

    def __init__(self, e: Engine, x: Secret, y: Secret, lay: Layout) -> None:
        self.e, self.lay = e, lay
        self.n, self.d = x.shape
        offsets = e.field.from_ints(lay.offsets)
        self.xc = x - np.ascontiguousarray(np.broadcast_to(offsets, (self.n, self.d, 2)))
        self.y = y  # 0/1 integers
        left, right = zip(*[(i, j) for i in range(self.d) for j in range(i, self.d)],
                          strict=True)
        self.feature_pairs = {(i, j): p for p, (i, j) in enumerate(zip(left, right,
                                                                       strict=True))}
        self.products = e.mul(self.xc[:, list(left)], self.xc[:, list(right)])  # exact

    # ------------------------------------------------------------------ the point

    def point(self, beta: Secret) -> Secret:
        """b in original units with G bits from the standardised beta~: b_j = beta~_j 2^f /
        u_j, b_0 = beta~_0 - sum_j b_j o_j / 2^f (2 rounds). Whatever rounding this adds,
        b is the point: every later quantity is exact in b."""
        e, lay, d = self.e, self.lay, self.d
        i = int(lay.intercept)
        top = int(BETA_TOP * 2**G) + (1 << G)
        slopes, _ = scale_public(e, beta[i:], [top] * d,
                                 [Fraction(1 << lay.f, u) for u in lay.scales], 1, 0, "logit",
                                 "a coefficient")
        if not lay.intercept:
            return slopes
        shift = (slopes * e.field.from_ints(lay.offsets)).sum()
        (b0,) = trunc_many(e, [(beta[0:1] * (1 << lay.f)) - shift.reshape(1)], [lay.f])
        return join([b0, slopes], axis=0)

    def eta(self, b: Secret) -> Secret:
        """eta_i = b_0 + sum_j b_j code_ij / 2^f with G bits: exact before one truncation."""
        e, lay, n, d = self.e, self.lay, self.n, self.d
        i = int(lay.intercept)
        raw = e.dot(self.xc, b[i:].reshape(1, d).broadcast_to(n, d), axis=1)
        if lay.intercept:
            const = b[0:1] * (1 << lay.f) + (b[1:] * e.field.from_ints(lay.offsets)).sum()
            raw = raw + const.broadcast_to(n)
        (out,) = trunc_many(e, [raw], [lay.f])
        return out

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, b: Secret | None, final: bool = False
                 ) -> tuple[Secret, Secret, dict[str, float], Secret | None]:
        """g~ and H~ (upper triangle) at b (None: at the start 0, where all is public but
        y), with G bits, and with `final` 2 llf (G bits).

        1. eta (1 product, 1 truncation); s = [eta < 0] (one comparison); a = |eta|.
        2. q = 1 + exp(-a) in (1, 2]; r = 1 / q (`inverse`: error rho); p = r or 1 - r.
        3. w = r (1 - r) with W bits (w is symmetric in eta); y - p with G bits.
        4. One fused dot: sum (y - p) z'_j, sum w z'_a z'_b, exact; scaled to g~, H~.
        Errors against the exact sigmoid at b: p and w by eps_p (exp's and the reciprocal's
        errors, eta's truncation through sigma' <= 1/4, exp's clipping below e^-25.6).
        """
        e, lay, n = self.e, self.lay, self.n
        if b is None:  # the start, b = 0: p = 1/2 and w = 1/4 for every row, exactly
            half = self.y * 0 + (1 << (G - 1))
            quarter = self.y * 0 + (1 << (lay.weight_bits - 2))
            return (*self.derivatives(self.y * (1 << G) - half, quarter, 0.0), None)
        eta = self.eta(b)
        top = (BETA_TOP * lay.k + 2) * 2**G
        sign = ltz(e, eta, bits_of(int(top)))
        a = eta - e.mul(sign, eta) * 2  # |eta|
        ex = functions.exp(e, -a, G, bounds=(-top / 2**G, 0.0))
        q = ex + (1 << G)
        r, rho = inverse(e, q, 1.0, 2.0)
        flip, prod = e.mul_many([(sign, (-r) * 2 + (1 << G)), (r, (-r) + (1 << G))])
        p = r + flip
        (w,) = trunc_many(e, [prod], [2 * G - lay.weight_bits])
        resid = self.y * (1 << G) - p
        eps_p = 2 * rho + EXP_ERROR + 2.0**-G / 4 + 2.0 ** -(G + 1)
        g, h, errs = self.derivatives(resid, w, eps_p)
        llf2 = None
        if final:
            # 2 llf = sum 2 y eta - eta - |eta| - 2 log q  (log sigma(eta) = min(eta, 0) - log q)
            lq = functions.log(e, q, G, bits=bits_of(2 << G))
            ye = e.mul(self.y, eta)
            llf2 = (ye * 2 - eta - a - lq * 2).sum()
            errs["llf2"] = n * (2 * 2.0**-G + 2 * (LOG_ERROR + EXP_ERROR + 2.0**-G))
        return g, h, errs, llf2

    def derivatives(self, resid: Secret, w: Secret, eps_p: float
                    ) -> tuple[Secret, Secret, dict[str, float]]:
        """g~ and H~ from y - p (G bits) and w (W bits), each off by eps_p at most: one fused
        dot of exact sums, then one public scaling."""
        e, lay, n, d = self.e, self.lay, self.n, self.d
        eps_w = eps_p + eps_p**2 + 2.0**-lay.weight_bits
        feats = d + len(self.feature_pairs)
        left = join([resid.reshape(n, 1).broadcast_to(n, d),
                     w.reshape(n, 1).broadcast_to(n, feats)], axis=1)
        right = join([self.xc, self.xc, self.products], axis=1)
        sums = e.dot(left, right, axis=0)
        grad_sums = ([resid.sum().reshape(1)] if lay.intercept else []) + [sums[:d]]
        hess_parts = []
        for ai, bi in lay.pairs():
            ja, jb = ai - lay.intercept, bi - lay.intercept
            if ja < 0 and jb < 0:
                hess_parts.append(w.sum().reshape(1))
            elif ja < 0:
                hess_parts.append(sums[d + jb:d + jb + 1])
            else:
                p_ = d + d + self.feature_pairs[ja, jb]
                hess_parts.append(sums[p_:p_ + 1])
        units = lay.units()
        g, g_units = scale_public(e, join(grad_sums, axis=0),
                                  [n * u * ((1 << G) + 4) for u in units],
                                  [Fraction(1, u) for u in units], n, 0, "logit",
                                  "the gradient")
        hb = [n * units[ai] * units[bi] * ((1 << lay.weight_bits) // 4 + 2)
              for ai, bi in lay.pairs()]
        h, h_units = scale_public(e, join(hess_parts, axis=0), hb,
                                  [Fraction(1 << G, units[ai] * units[bi])
                                   for ai, bi in lay.pairs()], n, lay.weight_bits, "logit",
                                  "the Hessian")
        return g, h, {"g": eps_p + float(np.max(g_units)) * 2.0**-G,
                      "h": eps_w + float(np.max(h_units)) * 2.0**-G}

    # ------------------------------------------------------------------ one step

    def step(self, beta: Secret, g: Secret, h: Secret, h_err: float) -> Secret:
        """beta~ + (H~ + kappa / 4 I)^-1 g~, clipped to [-BETA_TOP, BETA_TOP] (rounding here
        does not matter: the final point is certified as it is)."""
        e, k = self.e, self.lay.k
        kappa = _kappa()
        index = {pair: p for p, pair in enumerate(self.lay.pairs())}
        rows = [join([h[index[min(i, j), max(i, j)]:index[min(i, j), max(i, j)] + 1]
                      for j in range(k)], axis=0).reshape(1, k) for i in range(k)]
        A = join(rows, axis=0) * 4 + e.field.from_ints(
            [[(1 << (G - KAPPA_BITS)) if i == j else 0 for j in range(k)] for i in range(k)])
        # the right-hand side 4 c g~ with |4 c g~| <= sqrt(kappa): the solution's norm stays
        # within the elimination's bound 1 / sqrt(kappa)
        cbits = KAPPA_BITS // 2 + 2 + math.ceil(math.log2(k) / 2)
        (rhs,) = trunc_many(e, [g * 4], [cbits])
        bounds = solve_bounds(k, kappa, kappa, 4 * h_err + 4 * 2.0**-G, 4 * 2.0**-G, 1.0)
        x, _ = solve(e, A, rhs.reshape(k, 1), k, bounds, False)
        moved = beta + x[:, 0] * (1 << cbits)
        lim = int(BETA_TOP * 2**G)
        return clip(e, moved, -lim, lim, bits_of(int((BETA_TOP + 2 ** (KAPPA_BITS // 2 + 1 + cbits))
                                                     * 2**G)))


def logistic_regression(e: Engine, x: Secret, y: Secret, x_ranges: Sequence[Range],
                        intercept: bool = True, iterations: int = DEFAULT_ITERATIONS,
                        f: int = FRAC) -> Logit:
    """Fit P(y = 1) = sigmoid(X b) by `iterations` damped Newton steps from 0.

    x: (n, d) codes with f fractional bits in their ranges; y: (n,) 0/1 integers.
    Returns the revealed vector [b (k, original units, the intercept first), g~ (k),
    H~ (upper triangle), llf, count(y), n], all with G fractional bits, and per element the
    error bound against the exact value at b (0 for b itself, count(y) and n; storage rounding
    is the owner's, `logit_table`).
    """
    n = x.shape[0]
    if y.shape != (n,):
        raise ValueError(f"logit: y must be a column of {n} rows, got {y.shape}")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"logit: iterations must lie in 1..{MAX_ITERATIONS}, not {iterations}")
    lay = layout(x_ranges, intercept, n, f)
    fit = _Fit(e, x, y, lay)
    k = lay.k
    beta = y[:k] * 0  # the start, 0 (layout refused n <= k)
    for step in range(iterations):
        g, h, errs, _ = fit.evaluate(fit.point(beta) if step else None)
        beta = fit.step(beta, g, h, errs["h"])
    b = fit.point(beta)
    g, h, errs, llf2 = fit.evaluate(b, True)
    (llf,) = trunc_many(e, [llf2.reshape(1)], [1])
    count = y.sum().reshape(1) * (1 << G)
    rows = y[:1] * 0 + (n << G)  # public: the owner's table needs it
    value = join([b, g, h, llf, count, rows], axis=0)
    error = np.concatenate([np.zeros(k), np.full(k, errs["g"]),
                            np.full(len(lay.pairs()), errs["h"]),
                            [errs["llf2"] / 2 + 2.0**-G], [0.0, 0.0]])
    lever = 1 + sum(abs(o) / u for o, u in zip(lay.offsets, lay.scales, strict=True))
    # b's elements, count(y) <= n and |llf| <= n (|eta| + log 2)
    top = max(n * (BETA_TOP * k + 3), BETA_TOP * max(2.0**f / min(lay.scales), lever) + 1)
    return Logit(value, error, top)


# ---------------------------------------------------------------------- float64 reference


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    return np.where(eta >= 0, 1 / (1 + np.exp(-np.abs(eta))),
                    np.exp(-np.abs(eta)) / (1 + np.exp(-np.abs(eta))))


def _state(z: np.ndarray, y: np.ndarray, beta: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, float]:
    eta = z @ beta
    p = _sigmoid(eta)
    n = len(y)
    g = z.T @ (y - p) / n
    h = (z * (p * (1 - p))[:, None]).T @ z / n
    llf = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return g, h, llf


def _design(x: np.ndarray, lay: Layout) -> np.ndarray:
    """Z: the standardised features (|z| <= 1), the intercept's column of ones first."""
    codes = np.asarray(x, dtype=np.float64) * 2.0**lay.f
    z = (codes - np.array(lay.offsets, dtype=np.float64)) / np.array(lay.scales, dtype=float)
    return np.column_stack([np.ones(len(z)), z]) if lay.intercept else z


def _vector(lay: Layout, z: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
    g, h, llf = _state(z, y, beta)
    upper = np.array([h[a, b] for a, b in lay.pairs()])
    return np.concatenate([lay.transform() @ beta, g, upper, [llf, y.sum(), len(y)]])


def newton_plain(x: np.ndarray, y: np.ndarray, ranges: Sequence[Range], intercept: bool = True,
                 iterations: int = DEFAULT_ITERATIONS, f: int = FRAC) -> np.ndarray:
    """The same fit in float64 (the plain interpreter's, and the reference of the engine's):
    the same standardisation, damping, clipping and number of steps; the same vector."""
    lay = layout(ranges, intercept, x.shape[0], f)
    z, y = _design(x, lay), np.asarray(y, dtype=np.float64)
    beta = np.zeros(lay.k)
    for _ in range(iterations):
        g, h, _ = _state(z, y, beta)
        step = np.linalg.solve(h + _kappa() / 4 * np.eye(lay.k), g)
        beta = np.clip(beta + step, -BETA_TOP, BETA_TOP)
    return _vector(lay, z, y, beta)


def certificate_at(x: np.ndarray, y: np.ndarray, b: np.ndarray, ranges: Sequence[Range],
                   intercept: bool = True, f: int = FRAC) -> np.ndarray:
    """The exact vector at a given point b (original units) in float64: what the engine's
    revealed gradient, Hessian and llf at its b must lie within their bounds of."""
    lay = layout(ranges, intercept, x.shape[0], f)
    beta = np.linalg.solve(lay.transform(), np.asarray(b, dtype=np.float64))
    return _vector(lay, _design(x, lay), np.asarray(y, dtype=np.float64), beta)


# ---------------------------------------------------------------------- the owner's side


@dataclass
class LogitTable:
    """statsmodels' `Logit(...).fit()` results, computed by the owner, with bounds against
    the maximum-likelihood estimate on the data as written (or `certified` False and why)."""

    params: np.ndarray
    bse: np.ndarray
    tvalues: np.ndarray
    """z statistics (statsmodels calls them tvalues)."""
    pvalues: np.ndarray
    llf: float
    llnull: float
    prsquared: float
    params_error: np.ndarray
    bse_error: np.ndarray
    tvalues_error: np.ndarray
    pvalues_error: np.ndarray
    llf_error: float
    prsquared_error: float
    distance: float
    """Bound on |beta~ - beta~_MLE|_2 in standardised coordinates."""
    certified: bool
    reason: str = ""


def logit_table(value: np.ndarray, error: np.ndarray, ranges: Sequence[Range],
                intercept: bool = True, storage: Sequence[float] | None = None,
                f: int = FRAC) -> LogitTable:
    """The regression table of a revealed `logit` vector, with a posteriori bounds.

    `ranges` the features' ranges (the schema's), `storage` the storage
    rounding of each feature (2^-(f+1) for a fixed column, 0 for integers and booleans:
    `analytics.storage`); y is a 0/1 column, stored exactly. See the module docstring for
    the argument; the storage rounding moves each z by rho_j = delta_j / h_j and eta by
    at most sum_j |b_j| delta_j, and so g~ and H~ by public amounts, added to their bounds.
    """

    d = len(ranges)
    k = d + intercept
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    err = np.broadcast_to(np.asarray(error, dtype=np.float64), v.shape)
    if v.size != output_size(k):
        raise ValueError(f"logit_table: {v.size} values for {k} coefficients, expected "
                         f"{output_size(k)}")
    npairs = k * (k + 1) // 2
    b, g = v[:k], v[k:2 * k]
    hu, llf, pos, rows = v[2 * k:2 * k + npairs], float(v[-3]), float(v[-2]), round(v[-1])
    g_err, hu_err, llf_err = err[k:2 * k], err[2 * k:2 * k + npairs], float(err[-3])
    lay = layout(ranges, intercept, rows, f)
    deltas = np.zeros(d) if storage is None else np.asarray(storage, dtype=np.float64)
    if deltas.shape != (d,):
        raise ValueError(f"logit_table: {deltas.size} storage roundings for {d} features")
    h_real = np.array(lay.scales, dtype=np.float64) * 2.0**-f
    rho = np.concatenate([np.zeros(int(intercept)), deltas / h_real])
    move = float(np.sum(np.abs(b[int(intercept):]) * deltas))  # |d eta| on any row
    g_err = g_err + rho + (1 + rho) * move / 4
    H = np.zeros((k, k))
    E = np.zeros((k, k))
    for (a, c), hv, he in zip(lay.pairs(), hu, hu_err, strict=True):
        extra = ((1 + rho[a]) * (1 + rho[c]) - 1) / 4 + DW_MAX * move * (1 + rho[a]) * (1 + rho[c])
        H[a, c] = H[c, a] = hv
        E[a, c] = E[c, a] = he + extra
    R = float(np.sqrt(np.sum((1 + rho) ** 2)))  # max |z_i| on the data as written
    eps = float(np.sqrt(np.sum(E**2)))  # |H_exact - H_revealed| in operator norm
    lam_rev = float(np.linalg.eigvalsh(H)[0])
    lam_rev -= 1e-12 * float(np.abs(H).max())  # float64's eigenvalue rounding
    lam = lam_rev - eps
    gnorm = float(np.linalg.norm(np.abs(g) + g_err))
    ratio = R * gnorm / lam if lam > 0 else math.inf
    llnull = _llnull(pos, rows)
    nan = np.full(k, np.nan)
    if not ratio < 1:
        why = ("the Hessian at the result is (nearly) singular: a feature without variation, "
               "collinear features, or separable data (the MLE does not exist)" if lam <= 0
               else f"the gradient at the result is too large against the Hessian "
                    f"(R |g| / lambda = {ratio:.3g}, needs < 1): separable data (no MLE) "
                    "or too few iterations")
        inf = np.full(k, np.inf)
        return LogitTable(b, nan, nan, nan, llf, llnull, math.nan, inf, inf, inf, inf,
                          math.inf, math.inf, math.inf, False, "logit: no certified "
                          f"maximum-likelihood estimate: {why}")
    t = -math.log1p(-ratio) / R
    T = lay.transform()
    params_err = np.linalg.norm(T, axis=1) * t * (1 + 1e-12) + np.abs(b) * 2.0**-52
    cov = T @ np.linalg.inv(H) @ T.T / rows
    se = np.sqrt(np.diag(cov))
    a_rel = eps / lam_rev
    hi = 1 / math.sqrt(math.exp(-R * t) * (1 - a_rel))
    lo = 1 / math.sqrt(math.exp(R * t) * (1 + a_rel))
    se_err = se * (max(hi - 1, 1 - lo) + 1e-9)  # + float64's inverse, generously
    table = coefficient_table(b, params_err, se, se_err, math.inf)
    llf_bound = llf_err + rows * move + rows * gnorm * t + 1e-12 * abs(llf)
    pr = 1 - llf / llnull if llnull < 0 else math.nan
    return LogitTable(b, se, table.t, table.p, llf, llnull, pr, params_err, se_err,
                      table.t_error, table.p_error, llf_bound,
                      llf_bound / abs(llnull) if llnull < 0 else math.inf, t, True)


def _llnull(positives: float, n: int) -> float:
    """The constant-only model's log-likelihood (statsmodels' llnull)."""
    m = positives / n
    if m <= 0 or m >= 1:
        return 0.0
    return n * (m * math.log(m) + (1 - m) * math.log(1 - m))
