"""Preprocessing produced ahead and handed out first-in first-out, within a memory budget.

Why a budget: a node may produce ahead for a whole job, and a job on 10^6 rows takes
hundreds of millions of triples (about 96 bytes each per party). What exceeds the budget
goes to a spill file and comes back one part at a time, when it reaches the head of the
queue, so the memory held stays near the budget however much is in stock.

The spill file holds shares, so it is as secret as the stock: it is an anonymous temporary
file (created readable by its owner only and unlinked at once, so it disappears with the
process), and each part carries a SHA-256 that is checked when it is read back.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass

import numpy as np

BUFFER_BUDGET = 256 << 20
"""Bytes of one kind of preprocessing a buffer keeps in memory."""


class SpillError(RuntimeError):
    """A part read back from the spill file is not what was written (disk corruption)."""


@dataclass(frozen=True)
class _Spilled:
    """Where a part lies in the spill file: offset, rows, arrays and their digest."""

    offset: int
    rows: int
    width: int
    digest: bytes

    @property
    def nbytes(self) -> int:
        return self.rows * self.width * 16


class _SpillFile:
    """An anonymous private temporary file that parts are appended to and read back from."""

    def __init__(self) -> None:
        # lives as long as the buffer (no `with`): closed and gone when the buffer is
        self._file = tempfile.TemporaryFile(prefix="enigma-stock-")  # noqa: SIM115
        self._end = 0

    def write(self, arrays: tuple[np.ndarray, ...]) -> _Spilled:
        digest = hashlib.sha256()
        self._file.seek(self._end)
        for a in arrays:
            raw = np.ascontiguousarray(a, dtype="<u8").data
            digest.update(raw)
            self._file.write(raw)
        part = _Spilled(self._end, arrays[0].shape[0], len(arrays), digest.digest())
        self._end += part.nbytes
        return part

    def read(self, part: _Spilled) -> tuple[np.ndarray, ...]:
        self._file.seek(part.offset)
        raw = self._file.read(part.nbytes)
        if len(raw) != part.nbytes or hashlib.sha256(raw).digest() != part.digest:
            raise SpillError("preprocessing read back from the spill file differs from what "
                             "was written (disk corruption?): this stock is discarded")
        words = np.frombuffer(raw, dtype="<u8").reshape(part.width, part.rows, 2)
        return tuple(w.copy() for w in words)

    def reset(self) -> None:
        """Everything written has been read back: start the file over."""
        self._file.truncate(0)
        self._end = 0


class Buffer:
    """Arrays produced ahead (value and MAC shares, clear masks), handed out first-in first-out.

    Parts stay in memory while they fit `budget`; after the first part that does not, every
    later part is spilled too (so the order holds), and a spilled part is read back when it
    becomes the head."""

    def __init__(self, width: int, budget: int = BUFFER_BUDGET) -> None:
        self.width = width
        self.budget = budget
        self.parts: list[tuple[np.ndarray, ...] | _Spilled] = []
        self.size = 0
        self.held = 0
        """Bytes of the parts in memory."""
        self._spill: _SpillFile | None = None

    def add(self, *arrays: np.ndarray) -> None:
        if len(arrays) != self.width:
            raise ValueError(f"this stock holds {self.width} arrays per item, got {len(arrays)}")
        nbytes = sum(a.nbytes for a in arrays)
        spilling = bool(self.parts) and isinstance(self.parts[-1], _Spilled)
        if spilling or (self.parts and self.held + nbytes > self.budget):
            if self._spill is None:
                self._spill = _SpillFile()
            self.parts.append(self._spill.write(arrays))
        else:
            self.parts.append(arrays)
            self.held += nbytes
        self.size += arrays[0].shape[0]

    def _head(self) -> tuple[np.ndarray, ...]:
        head = self.parts[0]
        if isinstance(head, _Spilled):
            assert self._spill is not None
            arrays = self._spill.read(head)
            self.parts[0] = arrays
            self.held += head.nbytes
            if not any(isinstance(p, _Spilled) for p in self.parts):
                self._spill.reset()
            return arrays
        return head

    def take(self, n: int) -> tuple[np.ndarray, ...]:
        if n > self.size:
            raise ValueError(f"asked for {n} items, {self.size} in stock")
        out: list[list[np.ndarray]] = [[np.zeros((0, 2), dtype=np.uint64)]
                                       for _ in range(self.width)]
        need = n
        while need:
            head = self._head()
            k = min(need, head[0].shape[0])
            for i, a in enumerate(head):
                out[i].append(a[:k])
            self.held -= sum(a[:k].nbytes for a in head)
            if k == head[0].shape[0]:
                self.parts.pop(0)
            else:
                self.parts[0] = tuple(a[k:] for a in head)
            need -= k
        self.size -= n
        return tuple(np.concatenate(parts) for parts in out)
