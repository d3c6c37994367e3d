"""SPDZ-authenticated additive shares and the local half of the MAC check.

Party i holds, for a secret x, a value share x_i and a MAC share m_i with
sum(x_i) = x and sum(m_i) = alpha * x, where alpha is a global MAC key that is
itself additively shared (party i holds alpha_i) and never opened.
Linear operations act on both components; adding a public constant c changes
one value share but every MAC share (by alpha_i * c). A party that lies about
its value share when x is opened must also shift the MAC sum by alpha * delta,
which without alpha it can do with probability 1/p (Damgard, Pastro, Smart,
Zakarias, "Multiparty computation from somewhat homomorphic encryption",
CRYPTO 2012, section 2; the batched check follows Damgard, Keller, Larraia,
Pastro, Scholl, Smart, ESORICS 2013, "MAC check" protocol).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from enigma.field import PRG, Field

from .additive import split


class MacCheckError(RuntimeError):
    """Opened values are inconsistent with their MACs: someone cheated. Abort."""


@dataclass
class AuthShare:
    """One party's share of a vector of secrets: value shares and MAC shares."""

    value: np.ndarray
    mac: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape[:-1]

    def __len__(self) -> int:
        return self.value.shape[0]

    def __getitem__(self, index) -> AuthShare:
        return AuthShare(self.value[index], self.mac[index])


def share_mac_key(field: Field, n: int,
                  prg: PRG | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """A fresh global key alpha and its n additive shares (for dealers and tests)."""
    prg = prg or PRG()
    alpha = field.random(1, prg)
    return alpha, split(field, alpha, n, prg)


def authenticate(field: Field, x: np.ndarray, alpha: np.ndarray, n: int,
                 prg: PRG | None = None) -> list[AuthShare]:
    """n authenticated shares of x under alpha. Only a party that knows x and alpha may call it."""
    prg = prg or PRG()
    mac = field.mul(x, alpha.reshape(2))
    values = split(field, x, n, prg)
    macs = split(field, mac, n, prg)
    return [AuthShare(v, m) for v, m in zip(values, macs, strict=True)]


def add(field: Field, a: AuthShare, b: AuthShare) -> AuthShare:
    return AuthShare(field.add(a.value, b.value), field.add(a.mac, b.mac))


def sub(field: Field, a: AuthShare, b: AuthShare) -> AuthShare:
    return AuthShare(field.sub(a.value, b.value), field.sub(a.mac, b.mac))


def scale(field: Field, a: AuthShare, c: np.ndarray | int) -> AuthShare:
    """Multiply by a public scalar or a public vector of the same shape."""
    return AuthShare(field.mul(a.value, c), field.mul(a.mac, c))


def add_public(field: Field, a: AuthShare, c: np.ndarray, alpha_share: np.ndarray,
               party: int) -> AuthShare:
    """x + c for public c: party 0 shifts its value share, every party its MAC share."""
    value = field.add(a.value, c) if party == 0 else a.value.copy()
    shift = field.mul(c.reshape(-1, 2), alpha_share.reshape(2)).reshape(c.shape)
    return AuthShare(value, field.add(a.mac, shift))


def mac_residue(field: Field, opened: np.ndarray, mac_share: np.ndarray,
                alpha_share: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """sigma_i = sum_j r_j m_ij - alpha_i * sum_j r_j x_j for public random coefficients r.

    The parties commit to their sigma_i, then open; sum_i sigma_i = 0 iff the
    opened values carry consistent MACs (except with probability 2/p).
    """
    flat = opened.reshape(-1, 2)
    gamma = field.dot(mac_share.reshape(-1, 2), coeffs.reshape(-1, 2))
    a = field.dot(flat, coeffs.reshape(-1, 2))
    return field.sub(gamma, field.mul(a.reshape(1, 2), alpha_share.reshape(2)).reshape(2))


def check_residues(field: Field, residues: list[np.ndarray]) -> None:
    """Raise MacCheckError unless the opened residues sum to zero."""
    total = residues[0].reshape(1, 2).copy()
    for r in residues[1:]:
        field.add(total, r.reshape(1, 2), out=total)
    if total.any():
        raise MacCheckError(
            "MAC check failed: an opened value does not match its MAC; a party sent a wrong "
            "share or MAC, so the computation is aborted and no result is released")
