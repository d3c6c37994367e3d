"""What a release policy lets out of a script, before it runs: `enigma check --policy`.

The review runs the script's dry run under the policy (`disclosure.Tracked` in its
collecting mode, on synthetic data from the schema) and reports per output: its L1
sensitivity (one row added or removed, from the schema's ranges after the checker's
narrowing), what it is computed over (the public row count, or a private count decided
inside the MPC at run time), the noise scale the job's ε gives it, whether the policy
refuses it outright and why, and which synthetic cells the n_min rule withheld (the
synthetic data mean nothing: a real cell's fate is decided on shares at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .budget import Budget
from .disclosure import Output, Tracked
from .interpreter import Outcome
from .plain import dry_run, synthetic_backend
from .release import PolicyError, Release, ReleasePolicy
from .schema import Schema
from .syntax import Script


@dataclass
class Review:
    """The policy's verdict on one output (see the module docstring)."""

    name: str
    refused: str | None = None
    sensitivity: float | None = None
    kind: str | None = None
    """count, sum or mean (the mechanism DP noises), None for a derived value."""
    cells: bool = False
    support: str = "public"
    """public (every row, or public values only), private (a count decided on shares)."""
    noise_scale: float | None = None
    delta: float | None = None
    """What the output's noise adds to the job's δ (the joint draw's distance)."""
    dominance: bool = False
    """Whether the dominance rule is decided for it on shares (a sum's or mean's cells)."""
    withheld: int = 0
    """Synthetic cells the n_min rule withheld in the dry run."""
    size: int = 1

    def line(self) -> str:
        """One line for the terminal."""
        if self.refused:
            return f"  policy {self.name!r}: REFUSED: {self.refused}"
        parts = []
        if self.kind is not None:
            per = " per cell (disjoint cells)" if self.cells else ""
            unit = "of the sum (the count: 1)" if self.kind == "mean" else ""
            parts.append(f"{self.kind}, sensitivity {self.sensitivity:g}{per} {unit}".rstrip())
        else:
            parts.append("derived from aggregates" if self.support != "public"
                         else "public")
        parts.append(f"rows: {self.support}")
        if self.dominance:
            parts.append("dominance: decided on shares")
        if self.noise_scale is not None:
            parts.append(f"noise scale {self.noise_scale:.3g}")
        if self.delta is not None:
            parts.append(f"δ {self.delta:.2g}")
        if self.withheld:
            parts.append(f"{self.withheld} of {self.size} synthetic cell(s) withheld")
        return f"  policy {self.name!r}: " + "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def review(script: Script, schema: Schema, release: Release, rows: int | None = None,
           seed: int = 0, budget: Budget | None = None) -> tuple[Outcome, list[Review]]:
    """The dry run under `release`, and each output's review, in the script's order."""
    tracked = Tracked(synthetic_backend(script, schema, rows, seed), release,
                      strict=False)
    outcome = dry_run(script, schema, budget=budget, backend=tracked)
    found = {o.name: o for o in tracked.outputs + tracked.withheld}
    verdicts = [_review(found[o.name], outcome) for o in script.outputs if o.name in found]
    if tracked.delta_refused:  # the job states less δ than its noise needs: all of it waits
        for v in verdicts:
            if v.noise_scale is not None:
                v.refused = tracked.delta_refused
    return outcome, verdicts


def _review(o: Output, outcome: Outcome) -> Review:
    r = Review(o.name, refused=o.refused)
    d = o.disclosure
    if d is None or o.refused:
        return r
    m = d.mechanism
    r.support = "private (decided on shares)" if any(
        not isinstance(p, np.ndarray | float | int) for p in d.supports) else "public"
    if m is not None:
        r.kind, r.sensitivity, r.cells = m.kind, m.sensitivity, m.cells
    r.dominance = bool(d.passes)
    if o.scale is not None:
        r.noise_scale, r.delta = float(np.max(o.scale)), o.delta
    got = outcome.results.get(o.name)
    if got is not None and got.suppressed is not None:
        r.withheld = int(np.count_nonzero(got.suppressed != ""))
        r.size = int(got.suppressed.size)
    return r


def load_policy(path: str | Path) -> ReleasePolicy:
    """A release policy from a TOML, YAML or JSON file (the fields of `ReleasePolicy`)."""
    text = Path(path).read_text()
    if str(path).endswith(".toml"):
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: not valid TOML: {exc}") from exc
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{path}: not valid YAML or JSON: "
                              f"{' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a release policy is a table of fields "
                          f"({', '.join(ReleasePolicy.__dataclass_fields__)})")
    return ReleasePolicy.from_dict(data.get("release", data))


def release_of(policy_path: str | None, n_min: int | None, dominance: tuple[int, float] | None,
               epsilon: float | None, delta: float = 0.0) -> Release | None:
    """The release a command's options describe: a policy file, flags over it, or None.

    Flags override the file's fields; `epsilon` is the job's spend, and with no file's
    ε budget it is also the budget (a single job's view)."""
    if policy_path is None and n_min is None and dominance is None and epsilon is None:
        return None
    fields = load_policy(policy_path).as_dict() if policy_path else {}
    if n_min is not None:
        fields["n_min"] = n_min
    if dominance is not None:
        fields["dominance_k"], fields["dominance_p"] = dominance
    if epsilon is not None and fields.get("epsilon_budget") is None:
        fields["epsilon_budget"] = epsilon
        fields["delta_budget"] = delta
    policy = ReleasePolicy.from_dict(fields)
    return Release(policy, epsilon if policy.private else None, delta)
