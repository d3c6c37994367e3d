"""The share store: round trips, checks on every read, manifests, expiry, commitments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from enigma.storage.commitment import chunk_commitment, dataset_commitment, describe
from enigma.storage.container import CorruptShareError
from enigma.storage.store import (
    CorruptManifestError,
    MissingShareError,
    ShareStore,
    StoreBusyError,
)


@pytest.fixture
def store(tmp_path: Path):
    with ShareStore(tmp_path / "store") as s:
        yield s


def _column(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, size=(rows, 2), dtype=np.uint64)


_dtypes = st.one_of(
    hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(),
    hnp.boolean_dtypes(), hnp.byte_string_dtypes(max_len=5),
    st.just(np.dtype([("lo", "<u8"), ("hi", ">u8")])),
)


@settings(max_examples=40)
@given(array=hnp.arrays(_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                 max_side=6)))
def test_any_dtype_and_shape_round_trips(tmp_path_factory, array: np.ndarray) -> None:
    with ShareStore(tmp_path_factory.mktemp("s")) as s:
        s.put("d", 0, "c", array)
        back = s.get("d", 0, "c")
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    assert back.tobytes() == np.ascontiguousarray(array).tobytes()


def test_share_column_reads_back_read_only_with_meta(store: ShareStore) -> None:
    col = _column(1000, 1)
    digest = store.put("ds-1", 3, "salary", col, meta={"scheme": "shamir", "t": 2})
    back = store.get("ds-1", 3, "salary")
    np.testing.assert_array_equal(back, col)
    assert not back.flags.writeable
    header = store.header("ds-1", 3, "salary")
    assert header.meta == {"scheme": "shamir", "t": 2}
    assert header.sha256 == digest == describe(col).sha256


def test_non_contiguous_array_is_stored_in_c_order(store: ShareStore) -> None:
    col = _column(100, 2)
    store.put("d", 0, "t", col.T)
    np.testing.assert_array_equal(store.get("d", 0, "t"), col.T)


def test_object_arrays_are_refused(store: ShareStore) -> None:
    with pytest.raises(TypeError, match="Python objects"):
        store.put("d", 0, "o", np.array([1, "x"], dtype=object))


def test_put_replaces_and_listings_follow(store: ShareStore) -> None:
    store.put("b", 1, "x", _column(5, 1))
    store.put("b", 1, "x", _column(7, 2))
    store.put("b", 0, "y", _column(5, 3))
    store.put("a", 2, "z", _column(5, 4))
    np.testing.assert_array_equal(store.get("b", 1, "x"), _column(7, 2))
    assert store.datasets() == ["a", "b"]
    assert store.chunks("b") == [0, 1]
    assert store.columns("b", 1) == ["x"]
    assert store.has("a", 2, "z") and not store.has("a", 2, "x")
    assert store.delete_dataset("b") and not store.delete_dataset("b")
    assert store.datasets() == ["a"]
    assert store.chunks("b") == []


def test_missing_column_error_says_what_is_there(store: ShareStore) -> None:
    store.put("d", 0, "x", _column(3, 0))
    with pytest.raises(MissingShareError, match=r"no column 'y' of chunk 0 .*\['x'\]"):
        store.get("d", 0, "y")
    with pytest.raises(KeyError):
        store.header("d", 1, "x")


@pytest.mark.parametrize("name", ["../etc", ".hidden", "", "a/b", "x" * 129, "-rf"])
def test_unsafe_names_are_refused(store: ShareStore, name: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        store.put(name, 0, "c", _column(1, 0))
    with pytest.raises(ValueError, match="not allowed"):
        store.put("d", 0, name, _column(1, 0))


@pytest.mark.parametrize("chunk", [-1, 10**8, True, 1.0, "3"])
def test_bad_chunk_index_is_refused(store: ShareStore, chunk: object) -> None:
    with pytest.raises(ValueError, match="chunk index"):
        store.put("d", chunk, "c", _column(1, 0))


def _corrupt(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("where", ["payload", "payload-end", "header", "magic", "version"])
def test_every_read_detects_a_flipped_bit(store: ShareStore, where: str) -> None:
    col = _column(200, 5)
    store.put("ds", 4, "age", col)
    path = store.path("ds", 4, "age")
    offset = {"payload": store.header("ds", 4, "age").payload_offset + 17,
              "payload-end": path.stat().st_size - 1, "header": 60, "magic": 0,
              "version": 8}[where]
    _corrupt(path, offset)
    with pytest.raises(CorruptShareError) as err:
        store.get("ds", 4, "age")
    message = str(err.value)
    for part in (str(path), "'ds'", "chunk 4", "'age'"):
        assert part in message
    assert (err.value.dataset, err.value.chunk, err.value.column) == ("ds", 4, "age")
    assert [e.path for e in store.scrub()] == [str(path)]


def test_truncated_empty_and_misplaced_files_are_refused(store: ShareStore) -> None:
    col = _column(50, 6)
    store.put("ds", 0, "a", col)
    store.put("ds", 0, "b", col)
    path_a = store.path("ds", 0, "a")
    path_b = store.path("ds", 0, "b")
    path_b.write_bytes(path_a.read_bytes())
    with pytest.raises(CorruptShareError, match="copied or renamed into the wrong place"):
        store.get("ds", 0, "b")
    path_a.write_bytes(path_a.read_bytes()[:-8])
    with pytest.raises(CorruptShareError, match="truncated"):
        store.get("ds", 0, "a")
    with pytest.raises(CorruptShareError, match="truncated"):
        store.header("ds", 0, "a")
    path_a.write_bytes(b"")
    with pytest.raises(CorruptShareError, match="empty file"):
        store.get("ds", 0, "a")


def test_leftovers_of_a_crash_are_swept_on_open_and_never_listed(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ShareStore(root) as s:
        s.put("d", 0, "a", _column(4, 0))
        chunk_dir = s.path("d", 0, "a").parent
        (chunk_dir / ".tmp.b.share.abc123").write_bytes(b"half a file")
        (root / ".deleted.old.abc123" / "00000000").mkdir(parents=True)
        assert s.columns("d", 0) == ["a"]
        assert s.datasets() == ["d"]
        with pytest.raises(MissingShareError):
            s.get("d", 0, "b")
    with ShareStore(root) as s:
        assert s.swept == 2
        assert sorted(p.name for p in chunk_dir.iterdir()) == ["a.share"]
        assert not (root / ".deleted.old.abc123").exists()


def test_one_owner_at_a_time(tmp_path: Path) -> None:
    first = ShareStore(tmp_path)
    with pytest.raises(StoreBusyError, match="already open"):
        ShareStore(tmp_path)
    first.close()
    ShareStore(tmp_path).close()


def test_share_files_are_private(store: ShareStore) -> None:
    store.put("d", 0, "a", _column(4, 0))
    assert store.path("d", 0, "a").stat().st_mode & 0o077 == 0


def test_manifest_round_trip_and_commitments(store: ShareStore) -> None:
    cols = {i: {"x": _column(10, i), "y": _column(10, 100 + i)} for i in range(3)}
    for i, chunk in cols.items():
        for name, col in chunk.items():
            store.put("ds", i, name, col)
    with pytest.raises(MissingShareError, match=r"chunks \[3\] are not stored"):
        store.write_manifest("ds", b"\x07" * 32, 1e12, 4)
    sealed = store.write_manifest("ds", b"\x07" * 32, 1e12, 3)
    assert store.manifest("ds") == sealed
    assert store.manifest("other") is None
    owner_side = [
        chunk_commitment("ds", i, {n: describe(c) for n, c in chunk.items()})
        for i, chunk in cols.items()
    ]
    assert list(sealed.commitments) == owner_side
    assert len(dataset_commitment(sealed.commitments)) == 32


def test_tampered_manifest_is_refused(store: ShareStore) -> None:
    store.put("ds", 0, "x", _column(2, 0))
    store.write_manifest("ds", b"\x01" * 32, 2e9, 1)
    path = store.root / "ds" / "manifest.json"
    envelope = json.loads(path.read_text())
    envelope["body"]["expires_at"] = 9e12
    path.write_text(json.dumps(envelope))
    with pytest.raises(CorruptManifestError, match="fails its checksum"):
        store.manifest("ds")
    path.write_text("{not json")
    with pytest.raises(CorruptManifestError, match="does not parse"):
        store.manifest("ds")


def test_purge_removes_only_expired_sealed_datasets(store: ShareStore) -> None:
    for ds, expiry in [("old", 1000.0), ("new", 3000.0), ("unsealed", None)]:
        store.put(ds, 0, "x", _column(2, 0))
        if expiry is not None:
            store.write_manifest(ds, b"\0" * 32, expiry, 1)
    assert store.purge_expired(now=2000.0) == ["old"]
    assert store.datasets() == ["new", "unsealed"]
    assert store.purge_expired(now=2000.0) == []


def test_commitment_binds_every_byte_and_the_address(store: ShareStore) -> None:
    col = _column(64, 9)
    base = chunk_commitment("d", 0, {"x": describe(col)})
    flipped = col.copy()
    flipped[63, 1] ^= np.uint64(1)
    assert chunk_commitment("d", 0, {"x": describe(flipped)}) != base
    assert chunk_commitment("d", 1, {"x": describe(col)}) != base
    assert chunk_commitment("e", 0, {"x": describe(col)}) != base
    assert chunk_commitment("d", 0, {"y": describe(col)}) != base
    assert chunk_commitment("d", 0, {"x": describe(col.view(np.int64))}) != base
    a, b = base, chunk_commitment("d", 1, {"x": describe(col)})
    assert dataset_commitment([a, b]) != dataset_commitment([b, a])
    with pytest.raises(ValueError, match="expected 32"):
        dataset_commitment([b"short"])
