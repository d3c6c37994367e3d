"""Auditing a holder's copy of a generation: what scrub cannot see (lost chunks, a lost
store), named by chunk, column and kind."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from enigma.storage.audit import Damage, audit
from enigma.storage.store import ShareStore

COLUMNS = ["age", "age.tag", "income", "income.tag"]
CHUNKS = 4


@pytest.fixture
def store(tmp_path: Path):
    with ShareStore(tmp_path / "shares") as s:
        rng = np.random.default_rng(1)
        for chunk in range(CHUNKS):
            for column in COLUMNS:
                s.put("ds", chunk, column, rng.integers(0, 2**63, (50, 2), dtype=np.uint64))
        s.write_manifest("ds", bytes(32), expires_at=4e9, chunk_count=CHUNKS)
        yield s


def _found(store: ShareStore) -> list[tuple[int | None, str | None, str]]:
    return [(d.chunk, d.column, d.kind) for d in audit(store, "ds", CHUNKS, COLUMNS)]


def test_a_whole_generation_audits_clean_and_scrub_misses_what_audit_finds(store) -> None:
    assert _found(store) == []
    shutil.rmtree(store.root / "ds" / "00000001")
    (store.root / "ds" / "00000002" / "income.share").unlink()
    assert list(store.scrub("ds")) == []  # every file that is there checks out
    assert _found(store) == [(1, None, "missing"), (2, "income", "missing")]


def test_truncated_corrupt_and_swapped_files_are_told_apart(store) -> None:
    cut = store.path("ds", 0, "age")
    cut.write_bytes(cut.read_bytes()[:-100])
    empty = store.path("ds", 0, "income.tag")
    empty.write_bytes(b"")
    rot = store.path("ds", 2, "income")
    raw = bytearray(rot.read_bytes())
    raw[-3] ^= 1
    rot.write_bytes(bytes(raw))
    # chunk 3's files replaced by valid files of other values (an old copy restored)
    store.put("ds", 3, "age", np.zeros((50, 2), np.uint64))
    assert _found(store) == [(0, "age", "truncated"), (0, "income.tag", "truncated"),
                             (2, "income", "corrupt"), (3, None, "corrupt")]
    reasons = {(d.chunk, d.column): d.reason for d in audit(store, "ds", CHUNKS, COLUMNS)}
    assert "truncated file" in reasons[0, "age"]
    assert "checksum mismatch" in reasons[2, "income"]
    assert "sealed with" in reasons[3, None]


def test_a_lost_manifest_an_unknown_column_and_a_lost_store_are_named(store) -> None:
    (store.root / "ds" / "manifest.json").unlink()
    store.put("ds", 1, "planted", np.zeros((50, 2), np.uint64))
    assert _found(store) == [(None, "manifest", "missing"), (1, "planted", "corrupt")]
    shutil.rmtree(store.root)  # the node's whole store, deleted under it
    [whole] = audit(store, "ds", CHUNKS, COLUMNS)
    assert (whole.chunk, whole.column, whole.kind) == (None, None, "missing")
    assert str(whole).startswith("the whole generation: missing")
    store.put("ds", 0, "age", np.zeros((50, 2), np.uint64))  # a repair can write it again
    assert store.chunks("ds") == [0]


def test_damage_travels_as_json_and_refuses_unknown_kinds() -> None:
    damage = Damage("truncated", "payload is 3 bytes", 7, "age")
    assert Damage.from_json(damage.as_json()) == damage
    assert str(damage) == "chunk 7 column 'age': truncated (payload is 3 bytes)"
    with pytest.raises(ValueError, match="not one of"):
        Damage.from_json({**damage.as_json(), "kind": "fine"})
