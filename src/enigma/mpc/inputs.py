"""Authenticated inputs: values that enter a computation from storage are checked against
the owner's tags before anything is opened.

Why: storage shares carry no SPDZ MACs. When a member converts its Shamir share into an
additive one and inputs it, nothing in SPDZ stops it from inputting any other number; the
MACs only protect what happens afterwards. So the owner stores, beside every value x, a
tag y = kappa x under a key kappa of its own (t-of-n shared like x, with independent
randomness), and hands the quorum fresh additive shares of kappa for each job. After the
input round (every value, tag and key share fixed and MAC'd) the quorum checks

    rho * sum_i r_i (kappa x_i - y_i) = 0

with public coefficients r_i tossed after the inputs and a random secret rho. A member that
shifts its contributions by (d, e) and its key share by g makes the sum
sum r_i (kappa d_i + g x_i + g d_i - e_i), which vanishes with probability at most 2/p unless
d = e = 0 and g = 0 (kappa is hidden, and the r_i are drawn after the shifts are fixed);
g alone is caught unless sum r_i x_i = 0. rho makes the opened value uniformly random when
the check fails, so a cheater who knows its own shift learns nothing about the data from
it; when nobody cheated it is 0 and reveals nothing.

Cost: the tags double the inputs; the check is two products of one element each, one
coin toss and one opening (docs/threat-model.md).
"""

from __future__ import annotations

import numpy as np

from enigma.sharing import MacCheckError

from .engine import Engine
from .secret import Secret


class InputCheckError(MacCheckError):
    """The values a quorum input are not the ones the owner stored (a tag check failed)."""


def check_tags(e: Engine, values: Secret, tags: Secret, key: Secret) -> None:
    """Abort unless tags = key * values elementwise (up to probability 2/p); see above.

    `values` and `tags` are flat secrets of one length, `key` a secret of one element.
    Ends with a MAC check, so a member cannot hide a failure by lying in the opening.
    """
    if values.shape != tags.shape or len(values.shape) != 1:
        raise ValueError(f"values {values.shape} and tags {tags.shape} must be flat and equal")
    F = e.field
    r = F.random(values.shape[0], e.public_coins(b"enigma.inputs.tags"))
    x, y = values.dot_public(r).reshape(1), tags.dot_public(r).reshape(1)
    (kx,) = e.mul_many([(key.reshape(1), x)])
    (masked,) = e.mul_many([(e.random(1), kx - y)])
    (opened,) = e.open(masked)
    e.check()
    if np.any(opened != 0):
        raise InputCheckError("the job's inputs are not the values the owner stored: a tag "
                              "check failed (a member changed its share, its tag share, its "
                              "conversion or its key share)")
