"""A dataset's release policy: what a job on it may let out, set by the owner.

Why here, in the language layer: the rules are about revealed values (cells of a count,
a sum, a mean, a group-by) and the compiler is what knows which output is which and how
far one person can move it (its sensitivity, from the schema's ranges). The ledger stores
the policy as a record of the dataset and the app hands it to the run; both only carry
this object, neither interprets it.

The three rules, each optional but the first:
- `n_min`: a cell computed over fewer than `n_min` rows is suppressed (never opened).
- dominance `(k, p)`: a cell of a sum where the `k` largest contributors hold more than
  `p` percent of it is suppressed.
- differential privacy: a total budget `(epsilon, delta)` for the dataset, spent job by
  job; each released value gets noise drawn inside the computation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

DEFAULT_N_MIN = 10
"""Statistical offices' usual floor for a published cell (5 to 10 contributors)."""


class PolicyError(ValueError):
    """A release policy or a job's privacy request that cannot be honoured, and why."""


@dataclass(frozen=True)
class ReleasePolicy:
    n_min: int = DEFAULT_N_MIN
    dominance_k: int | None = None
    dominance_p: float | None = None
    """Percent (0 < p < 100) of a cell's sum the top `dominance_k` contributors may hold."""
    epsilon_budget: float | None = None
    """The dataset's total ε over all jobs; None turns differential privacy off."""
    delta_budget: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.n_min, int) or isinstance(self.n_min, bool) or self.n_min < 1:
            raise PolicyError(f"n_min must be a whole number ≥ 1, not {self.n_min!r}")
        if (self.dominance_k is None) != (self.dominance_p is None):
            raise PolicyError("the dominance rule needs both k and p (or neither)")
        if self.dominance_k is not None:
            if not isinstance(self.dominance_k, int) or self.dominance_k < 1:
                raise PolicyError(f"dominance k must be a whole number ≥ 1, not "
                                  f"{self.dominance_k!r}")
            if not 0 < float(self.dominance_p) < 100:  # type: ignore[arg-type]
                raise PolicyError(f"dominance p is a percentage strictly between 0 and 100, "
                                  f"not {self.dominance_p!r}")
        if self.epsilon_budget is not None and not (
                math.isfinite(self.epsilon_budget) and self.epsilon_budget > 0):
            raise PolicyError(f"the ε budget must be a positive number, not "
                              f"{self.epsilon_budget!r}")
        if not (0.0 <= self.delta_budget < 1.0):
            raise PolicyError(f"the δ budget must be in [0, 1), not {self.delta_budget!r}")
        if self.epsilon_budget is None and self.delta_budget:
            raise PolicyError("a δ budget without an ε budget means nothing: set both")

    @property
    def dominance_ratio(self) -> tuple[int, int]:
        """p as a fraction a / b of whole numbers (p to 6 decimals), so both backends test
        100 b top_k > a total exactly, on integers (the MPC's fixed-point codes)."""
        if self.dominance_p is None:
            raise PolicyError("this release policy has no dominance rule")
        f = Fraction(float(self.dominance_p)).limit_denominator(10**6)
        return f.numerator, f.denominator

    @property
    def private(self) -> bool:
        """True when released values get differentially private noise."""
        return self.epsilon_budget is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleasePolicy:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise PolicyError(f"unknown release policy field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class Release:
    """What one job may let out: the dataset's policy and this job's privacy spend.

    The app builds it (the policy from the ledger, `epsilon` from the job's request, checked
    against what is left of the budget) and hands it to the run; the backends enforce it
    (`MpcBackend`, `PlainBackend`). `epsilon` is None when the policy has no ε budget, and
    must be set when it has one: a private job without a spend has nothing to noise with.
    """

    policy: ReleasePolicy
    epsilon: float | None = None
    """This job's ε, split over its released outputs (sequential composition)."""
    delta: float = 0.0
    sizing: bool = field(default=False, compare=False, repr=False)
    """True only in a dry run on synthetic data that sizes a job's preprocessing (blame
    mode on HE): every cell counts as kept, since how many cells the real data keeps is
    not known before the run and sealing costs a product per kept cell. Never carried
    (`as_dict`), never set on a real run."""

    def __post_init__(self) -> None:
        if self.epsilon is not None and not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise PolicyError(f"a job's ε must be a positive number, not {self.epsilon!r}")
        if self.policy.private and self.epsilon is None:
            raise PolicyError("the dataset's policy has an ε budget: the job must say how much "
                              "of it it spends (epsilon)")
        if not self.policy.private and self.epsilon is not None:
            raise PolicyError("the dataset's policy has no ε budget: a job cannot spend ε on it")
        if not (0.0 <= self.delta < 1.0):
            raise PolicyError(f"a job's δ must be in [0, 1), not {self.delta!r}")
        if self.delta > self.policy.delta_budget:
            raise PolicyError(f"a job's δ ({self.delta:g}) cannot exceed the dataset's δ "
                              f"budget ({self.policy.delta_budget:g})")

    def as_dict(self) -> dict[str, Any]:
        """The release as plain data (JSON): what a job's run header and a blame evidence
        file carry, so that a replay runs under exactly the release the members ran."""
        return {"policy": self.policy.as_dict(), "epsilon": self.epsilon, "delta": self.delta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Release:
        if not isinstance(data, dict) or set(data) - {"policy", "epsilon", "delta"} \
                or not isinstance(data.get("policy"), dict):
            raise PolicyError(f"a release is {{policy, epsilon, delta}}, not {data!r}")
        eps = data.get("epsilon")
        return cls(ReleasePolicy.from_dict(data["policy"]),
                   None if eps is None else float(eps), float(data.get("delta", 0.0)))
