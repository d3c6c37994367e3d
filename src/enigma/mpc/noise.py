"""Jointly drawn discrete Laplace noise: no node, and not the owner, knows the sample.

Differential privacy adds noise to a released value; if any single party knew the noise it
could subtract it again, so the quorum draws it together from preprocessed random bits that
no one knows and that carry SPDZ MACs (a member that alters its share of a bit, or of the
noise, is caught by the MAC check when the noised value is opened).

Method (exact up to a stated total-variation distance `tv_distance`):

- Discrete Laplace with scale t: P(Z = z) ∝ q^|z|, q = exp(-1/t). Z = G1 - G2 for two
  independent geometric G on {0, 1, ...}, P(G = n) = (1 - q) q^n.
- The binary digits g_j of a geometric variable are independent: with n = Σ_j 2^j g_j,
  q^n = Π_j (q^(2^j))^(g_j), a product of one factor per digit, so the pmf factorizes and
  digit j is Bernoulli(p_j), p_j = q^(2^j) / (1 + q^(2^j)). Keeping m digits draws the
  geometric conditioned on G < 2^m; m is the least with q^(2^m) < 2^-60.
- Digit j is the biased bit [r < T_j] for r uniform on k bits (k shared random bits) and the
  public T_j = round(p_j 2^k): a comparison of shared bits with a public bound
  (`comparison.less_than_public`: base-4 digits, no opening), all digits of all samples in
  one batch.
- G = Σ_j 2^j g_j and Z = G1 - G2 are linear (free).

Distance: with p'_j = T_j / 2^k the drawn G' has TV(G', G) <= Σ_j |p'_j - p_j| + q^(2^m)
(independent coordinates: the TVs add; the conditioning costs P(G >= 2^m) = q^(2^m)), and
Z' = G1' - G2' is a function of two independent such draws, so
TV(Z', Z) <= 2 (Σ_j |p'_j - p_j| + q^(2^m)). The sum is computed in 60-digit decimals and the
bound rounded up, so it is a true upper bound (`Plan.tv_distance`, one sample); a draw of n
samples states n times that (`Noise.tv_distance`), which the caller adds to δ.

Cost per sample: 2 m' biased bits (m' <= m digits whose T_j is not 0; a digit with T_j = 0 is
the constant 0), each taking k random bits and about 1.5 k Beaver products (69 at k = 48);
1 + ceil(log2(k / 2)) openings for the whole batch (6 for the default k = 48), whatever n
is: a round each, two for an opening large enough to go through kings (`Engine._open_raw`).
"""

from __future__ import annotations

import decimal
import math
import numbers
from dataclasses import dataclass

import numpy as np

from .comparison import less_than_public
from .engine import MUL_ROW_BYTES, Engine
from .secret import Secret, concat

PRECISION = 48
"""Bits k of each digit's threshold: rounding costs at most 2^-(k+1) per digit, so the
default keeps a sample's distance below 2^-42 for every scale that fits 64-bit values."""
TAIL = 2.0 ** -60
"""The geometric is kept below 2^m for the least m with q^(2^m) < TAIL."""
MAX_DIGITS = 120
"""Refuse scales whose geometric needs more digits than this (about t > 10^34)."""

_CONTEXT = decimal.Context(prec=60)


@dataclass(frozen=True)
class Noise:
    """Noise drawn by the quorum: `value` (n,) signed integers in the field, nobody knows them.

    `plan` is the draw's public plan (its scale, and `plan.bound`: every sample z has
    |z| < bound, the range a caller's analysis needs); `tv_distance` bounds the total
    variation distance of the n samples' joint law from n ideal independent ones: n times a
    sample's (`Plan.tv_distance`; TVs of independent coordinates add), at most 1. That is
    what a release of these n values adds to δ; several draws add their distances."""

    value: Secret
    plan: Plan
    tv_distance: float


@dataclass(frozen=True)
class Plan:
    """The public parameters of a draw: digits m, precision k, thresholds T_j, the distance.

    `thresholds[j]` is T_j for digit j < m (0 for digits that are always 0); samples lie in
    (-2^m, 2^m); `tv_distance` is one sample's."""

    scale: float
    digits: int
    precision: int
    thresholds: tuple[int, ...]
    tv_distance: float

    @property
    def bound(self) -> int:
        """Every sample z satisfies |z| < bound = 2^m."""
        return 1 << self.digits

    @property
    def live(self) -> np.ndarray:
        """Indices j of the digits that are not constantly 0 (T_j > 0)."""
        return np.flatnonzero(np.array(self.thresholds, dtype=np.int64))


def plan(scale: float, precision: int = PRECISION) -> Plan:
    """The digits, thresholds and distance of a discrete Laplace draw of scale `scale`.

    Pure and public: every party computes the same plan; tests check its distance exactly."""
    if (not isinstance(scale, numbers.Real) or isinstance(scale, bool)
            or not math.isfinite(scale) or scale <= 0):
        raise ValueError(f"the noise scale must be a finite number > 0, not {scale!r}")
    scale = float(scale)
    if not 1 <= precision <= 62:
        raise ValueError(f"the threshold precision must be 1..62 bits, not {precision}")
    ctx = _CONTEXT
    q = ctx.exp(ctx.divide(decimal.Decimal(-1), decimal.Decimal(scale)))
    tail = decimal.Decimal(TAIL)
    unit = decimal.Decimal(1 << precision)
    thresholds: list[int] = []
    error = decimal.Decimal(0)
    power = q  # q^(2^j)
    while power >= tail:
        if len(thresholds) >= MAX_DIGITS:
            raise ValueError(f"a noise scale of {scale} needs more than {MAX_DIGITS} binary "
                             "digits; no engine's values hold it")
        p = ctx.divide(power, ctx.add(1, power))
        t = int(ctx.multiply(p, unit).to_integral_value(decimal.ROUND_HALF_EVEN))
        thresholds.append(t)
        error = ctx.add(error, abs(ctx.subtract(ctx.divide(decimal.Decimal(t), unit), p)))
        power = ctx.multiply(power, power)
    bound = ctx.multiply(2, ctx.add(error, power))
    tv = math.nextafter(float(bound), math.inf)  # the float conversion may round down
    return Plan(scale, len(thresholds), precision, tuple(thresholds), tv)


def discrete_laplace(e: Engine, n: int, scale: float, *, precision: int = PRECISION) -> Noise:
    """n independent discrete Laplace samples of scale `scale`, drawn jointly, known to none.

    Refuses a scale <= 0, and a scale whose samples (|z| < 2^m) do not fit the engine's
    signed k-bit values. Every party must call it with the same n, scale and precision."""
    if n < 0:
        raise ValueError(f"cannot draw {n} noise samples")
    pl = plan(scale, precision)
    if pl.digits + 1 > e.k:
        raise ValueError(f"noise of scale {scale} reaches ±2^{pl.digits}, beyond the engine's "
                         f"signed {e.k}-bit values")
    F = e.field
    live = pl.live
    if n == 0 or live.size == 0:  # every digit is 0: the sample is 0 (within tv_distance)
        return Noise(e.constant(F.zeros(n)), pl, _joint(pl, n))
    # rows: (sample, which geometric, live digit), digits fastest
    thresholds = np.array(pl.thresholds, dtype=np.int64)[live]
    rows = 2 * n * live.size
    step = max(1, e.chunk_rows(pl.precision * MUL_ROW_BYTES))
    bounds = np.tile(thresholds, 2 * n)
    parts = []
    for start in range(0, rows, step):  # chunks of rows bound the memory, not a loop per row
        stop = min(rows, start + step)
        share = e.provider.random_bits((stop - start) * pl.precision)
        bits = Secret(e, share).reshape(stop - start, pl.precision)
        parts.append(less_than_public(e, bits, bounds[start:stop]))
    digits = concat(parts).reshape(n, 2, live.size)
    weights = np.broadcast_to(F.from_int64(1 << live), (n, 2, live.size, 2))
    g = digits.dot_public(np.ascontiguousarray(weights), axis=2)  # (n, 2): G1, G2
    return Noise(g[:, 0] - g[:, 1], pl, _joint(pl, n))


def _joint(pl: Plan, n: int) -> float:
    """The distance of n independent samples together: n times one's (rounded up), at most 1."""
    return min(1.0, math.nextafter(n * pl.tv_distance, math.inf)) if n else 0.0
