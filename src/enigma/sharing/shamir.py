"""Shamir t-of-n sharing for storage, and its conversion into additive shares.

A secret x is the value at 0 of a random polynomial f of degree t; holder j
(points 1..n) keeps f(j). Any t holders learn nothing; any t + 1 reconstruct;
the data survives the loss of n - t - 1 holders. Shamir, "How to share a
secret", CACM 1979. Lagrange coefficients at 0 turn the shares of any t + 1
holders into additive shares (x = sum_j lambda_j f(j)), which is how stored
data enters a SPDZ computation. Resharing lets holders move a dataset to a new
holder, or re-randomize it, without reconstructing it (Herzberg et al.,
"Proactive secret sharing", CRYPTO 1995).
"""

from __future__ import annotations

import numpy as np

from enigma.field import PRG, Field


class ShamirError(ValueError):
    """Too few shares, duplicate points, or shares that disagree."""


def _check_points(field: Field, points: list[int]) -> None:
    if len(set(points)) != len(points):
        raise ShamirError(f"duplicate share points in {points}")
    bad = [j for j in points if not 0 < j < field.p]
    if bad:
        raise ShamirError(f"share points must be nonzero field elements, got {bad}")


def share(field: Field, x: np.ndarray, t: int, n: int, prg: PRG | None = None) -> list[np.ndarray]:
    """Shares of x for holders at points 1..n under a random degree-t polynomial."""
    if not 0 <= t < n:
        raise ShamirError(f"need 0 <= t < n, got t={t}, n={n}")
    if n >= field.p:
        raise ShamirError(f"{n} holders do not fit in a field of {field.p} elements")
    prg = prg or PRG()
    coeffs = [field.random(x.shape[:-1], prg) for _ in range(t)]
    return [_evaluate(field, x, coeffs, j) for j in range(1, n + 1)]


def _evaluate(field: Field, constant: np.ndarray, coeffs: list[np.ndarray], point: int):
    """Horner: f(point) = c_0 + point (c_1 + point (c_2 + ...)) over whole vectors."""
    acc = coeffs[-1].copy() if coeffs else field.zeros(constant.shape[:-1])
    for c in reversed(coeffs[:-1]):
        field.mul(acc, point, out=acc)
        field.add(acc, c, out=acc)
    if coeffs:
        field.mul(acc, point, out=acc)
    return field.add(acc, constant)


def lagrange(field: Field, points: list[int], at: int = 0) -> list[int]:
    """Coefficients l_j with f(at) = sum_j l_j f(points[j]) for deg f < len(points)."""
    _check_points(field, points)
    p = field.p
    out = []
    for j in points:
        num, den = 1, 1
        for m in points:
            if m != j:
                num = num * (at - m) % p
                den = den * (j - m) % p
        out.append(num * pow(den, -1, p) % p)
    return out


def to_additive(field: Field, share_: np.ndarray, point: int, points: list[int]) -> np.ndarray:
    """This holder's additive share of the secret when exactly `points` take part."""
    if point not in points:
        raise ShamirError(f"point {point} is not among the participating points {points}")
    coeff = lagrange(field, points)[points.index(point)]
    return field.mul(share_, coeff)


def interpolate(field: Field, shares: dict[int, np.ndarray], at: int = 0) -> np.ndarray:
    """The value at `at` of the polynomial through all given shares."""
    points = sorted(shares)
    coeffs = lagrange(field, points, at)
    acc = field.mul(shares[points[0]], coeffs[0])
    for j, c in zip(points[1:], coeffs[1:], strict=True):
        field.add(acc, field.mul(shares[j], c), out=acc)
    return acc


def reconstruct(field: Field, shares: dict[int, np.ndarray], t: int) -> np.ndarray:
    """The secret from at least t + 1 shares; extra shares are checked for consistency."""
    if len(shares) < t + 1:
        raise ShamirError(f"need at least t + 1 = {t + 1} shares to reconstruct, got {len(shares)}")
    points = sorted(shares)
    _check_points(field, points)
    base = {j: shares[j] for j in points[: t + 1]}
    for j in points[t + 1:]:
        expected = interpolate(field, base, at=j)
        if not field.equal(expected, shares[j]).all():
            raise ShamirError(
                f"the share at point {j} disagrees with the shares at points {points[: t + 1]}: "
                "at least one share is corrupt")
    return interpolate(field, base)


def reshare_messages(field: Field, share_: np.ndarray, point: int, points: list[int],
                     new_points: list[int], t: int,
                     prg: PRG | None = None) -> dict[int, np.ndarray]:
    """Step 1 of resharing: holder `point` (one of t + 1 `points`) shares lambda * share.

    Each new holder then sums what it receives (`additive.combine`) to get a share
    of the same secret under a fresh polynomial; no one sees the secret.
    """
    if len(points) != t + 1:
        raise ShamirError(f"resharing takes exactly t + 1 = {t + 1} holders, got {len(points)}")
    _check_points(field, new_points)
    contribution = to_additive(field, share_, point, points)
    prg = prg or PRG()
    coeffs = [field.random(share_.shape[:-1], prg) for _ in range(t)]
    return {j: _evaluate(field, contribution, coeffs, j) for j in new_points}
