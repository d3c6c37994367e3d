"""What an owner learns about its holders' storage: who `collect` skipped and why, and what
`repair` found on each holder and did about it.

Why reports and not log lines: an owner who gets its data back from t + 1 of n holders
has lost its margin without noticing, unless the call says which holder failed; and a
repair that says "healthy" about a holder it could not ask, or that lost whole chunks,
hides the damage it exists to find. Both are returned to the caller, and the CLI prints
one line per holder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from enigma.storage.audit import Damage


class Collected(dict[str, np.ndarray]):
    """A collected dataset's decoded columns, with a warning per holder that was skipped."""

    def __init__(self, columns: Mapping[str, np.ndarray], warnings: list[str]) -> None:
        super().__init__(columns)
        self.warnings = warnings


class Skipped:
    """The holders `collect` could not use, per holder: the chunks and the first reason."""

    def __init__(self) -> None:
        self._by_holder: dict[str, tuple[list[int] | None, str]] = {}

    def holder(self, address: str, why: str) -> None:
        """`address` could not be used at all (not reached)."""
        self._by_holder.setdefault(address, (None, why))

    def chunk(self, address: str, chunk: int, why: str) -> None:
        chunks, _ = self._by_holder.setdefault(address, ([], why))
        if chunks is not None:
            chunks.append(chunk)

    def warnings(self) -> list[str]:
        return [f"holder {address} skipped for "
                + ("every chunk" if chunks is None else
                   f"chunk{'s' if len(chunks) > 1 else ''} {_ranges(chunks)}") + f": {why}"
                for address, (chunks, why) in self._by_holder.items()]


def _ranges(chunks: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5": a holder that lost a thousand chunks is one short line."""
    spans: list[list[int]] = []
    for c in sorted(set(chunks)):
        if spans and spans[-1][1] == c - 1:
            spans[-1][1] = c
        else:
            spans.append([c, c])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


@dataclass(frozen=True)
class HolderAudit:
    """One holder's answer to `repair`'s audit."""

    address: str
    damage: list[Damage] = field(default_factory=list)
    more: int = 0
    """Damaged pieces beyond those the holder listed."""
    unreachable: str | None = None
    """Why the holder could not be audited (then `damage` is unknown, not empty)."""

    @property
    def healthy(self) -> bool:
        return self.unreachable is None and not self.damage and not self.more

    def lines(self) -> list[str]:
        if self.unreachable is not None:
            return [f"holder {self.address} could not be checked: {self.unreachable}"]
        out = [f"holder {self.address} {d}" for d in self.damage]
        if self.more:
            out.append(f"holder {self.address}: {self.more} more damaged pieces")
        return out


@dataclass(frozen=True)
class RepairReport:
    """What `Owner.repair` found and did; `gen` is the dataset's generation afterwards."""

    name: str
    gen: int
    holders: list[HolderAudit]
    repaired: list[str]
    """Holders that received fresh shares of every chunk (a reshare onto them)."""
    left: str | None = None
    """Why damage or unreachable holders remain (then the owner has something to do)."""

    @property
    def healthy(self) -> bool:
        return all(h.healthy for h in self.holders)

    def lines(self) -> list[str]:
        """One line per finding, then what was done: what the CLI prints."""
        out = [line for h in self.holders for line in h.lines()]
        if self.repaired:
            out.append(f"repaired {self.repaired}: generation {self.gen} holds fresh shares "
                       "of every chunk on every holder")
        if self.left is not None:
            out.append(f"not repaired: {self.left}")
        if not out:
            out.append("every holder is healthy")
        return out
