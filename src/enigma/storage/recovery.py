"""Moving a chunk's Shamir shares to a new set of holders without reconstructing it.

Used for three things that are one protocol: replacing a holder that disappeared,
repairing a holder whose files rotted, and the proactive refresh that re-randomizes every
share of a dataset (Herzberg, Jarecki, Krawczyk, Yung, "Proactive secret sharing",
CRYPTO 1995, §3; the resharing step of Desmedt and Jajodia 1997).

Why every holder gets a fresh share, even those that lost nothing: a single replacement
share f(k) on the *old* polynomial would need the t + 1 senders to mask their Lagrange
terms with a zero-sum among themselves (an extra round between them), or the receiver
learns t + 1 old shares and with them the data. Resharing onto a new polynomial needs
one round and no masks, and re-randomizes the shares as a bonus: old shares, stolen or
not, say nothing about new ones. Its cost is that all n holders write a new generation.

Steps, for one chunk (all columns at once), with old points P (t + 1 of them taking part)
and new points Q (the new holders, any number n' > t):

  1. each participant i in P computes c_i = lambda_i * s_i (its additive share of x;
     lambda_i the Lagrange coefficient at 0 over P) and draws a fresh random polynomial
     g_i of degree t with g_i(0) = c_i                            (`reshare_chunk`)
  2. i sends g_i(j) to each new holder j in Q, over an authenticated channel
  3. each new holder j sums what it received: s'_j = sum_i g_i(j) (`combine_chunk`)
  4. s'_j is j's share of x under g = sum_i g_i, of degree t with g(0) = sum_i c_i = x

No party ever holds more than one point of any g_i, so no t of them learn anything.
A new holder must hear from all t + 1 participants (its share is wrong otherwise), so the
old generation is kept until every new holder confirmed: an interrupted reshare is
simply run again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from enigma.field import PRG, Field
from enigma.sharing import additive, shamir

Columns = Mapping[str, np.ndarray]


class RecoveryError(ValueError):
    """A reshare that cannot work as asked: too few holders, wrong points, mixed chunks."""


@dataclass(frozen=True)
class Plan:
    """Who takes part in one reshare and where each share goes."""

    participants: list[int]
    """Old points of the t + 1 holders that send (step 1-2)."""
    holders: dict[int, str]
    """New point -> holder, for every holder of the new generation (step 3)."""


def plan(holders: Mapping[int, str], lost: Sequence[str], replacements: Sequence[str],
         t: int, unusable: Sequence[str] = ()) -> Plan:
    """The reshare that replaces `lost` holders by `replacements`, point for point.

    `unusable` holders (e.g. with corrupt files) keep their point and receive new shares
    but do not send. Holders that stay keep their points, so the point of a holder never
    changes meaning; the refresh is `plan(holders, [], [], t)`.
    """
    if len(lost) != len(replacements):
        raise RecoveryError(f"{len(lost)} lost holders need as many replacements, "
                            f"got {len(replacements)}")
    unknown = [h for h in [*lost, *unusable] if h not in holders.values()]
    if unknown:
        raise RecoveryError(f"{unknown} are not holders of this chunk (holders: "
                            f"{sorted(holders.values())})")
    clash = [r for r in replacements if r in holders.values() and r not in lost]
    if clash or len(set(replacements)) != len(replacements):
        raise RecoveryError(f"replacements {list(replacements)} must be distinct and must not "
                            "already hold this chunk")
    out = set(lost) | set(unusable)
    senders = [p for p, h in sorted(holders.items()) if h not in out]
    if len(senders) < t + 1:
        raise RecoveryError(
            f"only {len(senders)} usable holders remain ({senders}) and a threshold-{t} "
            f"reshare needs t + 1 = {t + 1}: the data cannot be recovered from the network"
        )
    swap = dict(zip(lost, replacements, strict=True))
    return Plan(participants=senders[: t + 1],
                holders={p: swap.get(h, h) for p, h in sorted(holders.items())})


def _check_columns(what: str, columns: Columns, reference: Columns) -> None:
    if sorted(columns) != sorted(reference):
        raise RecoveryError(f"{what} has columns {sorted(columns)}, expected "
                            f"{sorted(reference)}")
    for name, arr in columns.items():
        if arr.shape != reference[name].shape or arr.dtype != np.uint64:
            raise RecoveryError(f"{what}: column {name!r} is {arr.dtype}{arr.shape}, expected "
                                f"uint64{reference[name].shape}")


def reshare_chunk(field: Field, shares: Columns, point: int, participants: Sequence[int],
                  new_points: Sequence[int], t: int,
                  prg: PRG | None = None) -> dict[int, dict[str, np.ndarray]]:
    """Steps 1-2 for participant `point`: what to send to each new point, per column."""
    if point not in participants:
        raise RecoveryError(f"point {point} is not among the participants {list(participants)}")
    prg = prg or PRG()
    out: dict[int, dict[str, np.ndarray]] = {j: {} for j in new_points}
    for name, share in sorted(shares.items()):
        messages = shamir.reshare_messages(field, np.ascontiguousarray(share), point,
                                           list(participants), list(new_points), t, prg)
        for j, m in messages.items():
            out[j][name] = m
    return out


def combine_chunk(field: Field, received: Mapping[int, Columns], participants: Sequence[int],
                  ) -> dict[str, np.ndarray]:
    """Step 3 for one new holder: its new shares from every participant's message."""
    missing = sorted(set(participants) - set(received))
    extra = sorted(set(received) - set(participants))
    if missing or extra:
        raise RecoveryError(f"a new share needs exactly the messages of participants "
                            f"{sorted(participants)}; missing {missing}, unexpected {extra}")
    first = received[participants[0]]
    for p in participants[1:]:
        _check_columns(f"the message of participant {p}", received[p], first)
    return {name: additive.combine(field, [received[p][name] for p in participants])
            for name in sorted(first)}
