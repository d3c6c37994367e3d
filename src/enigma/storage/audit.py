"""What is wrong with a holder's copy of a dataset generation: every missing, truncated or
corrupt piece, by chunk and column.

Why not `ShareStore.scrub`: scrub reads the files that are there, so a store that lost
whole chunks, or the whole generation, scrubs clean. An audit starts from what *should*
be there (the chunk count and column names the owner shared, and the chunk commitments
the generation was sealed with) and names each piece that is absent or fails its checks:

  1. no directory for the generation: the whole generation is missing;
  2. the manifest: missing (never sealed, or deleted), or failing its checksum;
  3. each chunk 0..chunk_count-1: its directory, then each expected column's file, read
     in full (header and payload checksums; a short file is "truncated");
  4. a chunk whose files all pass but whose commitment differs from the sealed one holds
     valid files of something else (an old generation restored, files swapped).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .container import CorruptShareError
from .store import CorruptManifestError, ShareStore

KINDS = ("missing", "truncated", "corrupt")


@dataclass(frozen=True)
class Damage:
    """One piece of a generation a holder cannot serve: what, where and why."""

    kind: str
    """"missing", "truncated" or "corrupt"."""
    reason: str
    chunk: int | None = None
    """None: the damage is to the whole generation (its directory or manifest)."""
    column: str | None = None

    def where(self) -> str:
        if self.chunk is None:
            return "the whole generation" if self.column is None else self.column
        return f"chunk {self.chunk}" + ("" if self.column is None else f" column {self.column!r}")

    def __str__(self) -> str:
        return f"{self.where()}: {self.kind} ({self.reason})"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "chunk": self.chunk,
                "column": self.column}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Damage:
        """A holder's report back to a Damage; ValueError if it is not one."""
        kind = str(body["kind"])
        if kind not in KINDS:
            raise ValueError(f"damage kind {kind!r} is not one of {KINDS}")
        chunk, column = body.get("chunk"), body.get("column")
        return cls(kind, str(body["reason"]), None if chunk is None else int(chunk),
                   None if column is None else str(column))


def audit(store: ShareStore, dataset: str, chunk_count: int,
          columns: Sequence[str]) -> Iterator[Damage]:
    """Every damage to `dataset` in `store` (steps 1-4 of the module docstring), in chunk
    order; nothing if the generation is whole. A generator, so that a caller may stop
    after the first few of a generation that lost everything."""
    if dataset not in store.datasets():
        yield Damage("missing", f"this store ({store.root}) holds no file of {dataset}")
        return
    try:
        manifest = store.manifest(dataset)
    except CorruptManifestError as exc:
        manifest = None
        yield Damage("corrupt", str(exc), column="manifest")
    else:
        if manifest is None:
            yield Damage("missing", "no manifest: the generation is not sealed here",
                         column="manifest")
        elif manifest.chunk_count != chunk_count:
            yield Damage("corrupt", f"it lists {manifest.chunk_count} chunks, the dataset "
                                    f"has {chunk_count}", column="manifest")
            manifest = None
    present = set(store.chunks(dataset))
    for chunk in range(chunk_count):
        if chunk not in present:
            yield Damage("missing", "its directory is gone", chunk)
            continue
        stored = set(store.columns(dataset, chunk))
        found = [Damage("missing", "no file", chunk, c) for c in columns if c not in stored]
        for column in sorted(stored & set(columns)):
            try:
                store.get(dataset, chunk, column)
            except CorruptShareError as exc:
                found.append(Damage(exc.kind, exc.reason, chunk, column))
        found += [Damage("corrupt", "a file for a column the dataset does not have", chunk,
                         extra) for extra in sorted(stored - set(columns))]
        if (not found and manifest is not None
                and store.commitment(dataset, chunk) != manifest.commitments[chunk]):
            found.append(Damage("corrupt", "its files pass their checksums but are not the "
                                           "ones the generation was sealed with", chunk))
        yield from found
