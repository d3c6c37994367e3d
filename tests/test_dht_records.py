"""Signed DHT records: what verifies, what is refused, and why."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from enigma.storage.records import (
    MAX_RECORD_BYTES,
    InvalidRecordError,
    RecordTooLargeError,
    claimed_key,
    record_key,
    sign_record,
    verify_record,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
WRITER = KEY.public_key().public_bytes_raw()

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@given(body=st.dictionaries(st.text(max_size=8), _json, max_size=5),
       name=st.text(min_size=1, max_size=30), seq=st.integers(0, 2**63))
def test_signed_records_verify_under_their_key(body: dict, name: str, seq: int) -> None:
    record = sign_record(KEY, "dataset", name, body, seq)
    back = verify_record(record.encode(), record_key("dataset", name, WRITER))
    assert back == record
    assert claimed_key(record.encode()) == record.key


@given(position=st.integers(0, 10_000), replacement=st.characters(codec="ascii"))
def test_any_edit_is_refused_or_changes_nothing(position: int, replacement: str) -> None:
    record = sign_record(KEY, "chunk", "ds-1/0", {"holders": ["ab" * 32, "cd" * 32]}, 7)
    text = record.encode()
    position %= len(text)
    edited = text[:position] + replacement + text[position + 1:]
    try:
        back = verify_record(edited, record.key)
    except InvalidRecordError:
        return
    # Only edits that parse to the same record survive (e.g. hex digits in another case).
    assert back == record


def _tampered_body(text: str) -> str:
    fields = json.loads(text)
    fields["body"]["holders"] = ["ee" * 32]
    return json.dumps(fields)


def test_altered_body_is_refused_with_a_reason() -> None:
    record = sign_record(KEY, "chunk", "ds-1/0", {"holders": ["ab" * 32]}, 1)
    with pytest.raises(InvalidRecordError, match="signature that does not verify"):
        verify_record(_tampered_body(record.encode()), record.key)


def test_unsigned_record_is_refused() -> None:
    fields = json.loads(sign_record(KEY, "dataset", "d", {}, 1).encode())
    del fields["sig"]
    with pytest.raises(InvalidRecordError, match="unsigned"):
        verify_record(json.dumps(fields), record_key("dataset", "d", WRITER))


def test_a_strangers_record_does_not_answer_for_the_owner() -> None:
    forged = sign_record(OTHER, "dataset", "d", {"chunks": [], "holders": []}, 99)
    with pytest.raises(InvalidRecordError, match="not what that key names"):
        verify_record(forged.encode(), record_key("dataset", "d", WRITER))


def test_resigned_by_stranger_with_owners_name_is_refused() -> None:
    fields = json.loads(sign_record(OTHER, "dataset", "d", {}, 1).encode())
    fields["writer"] = WRITER.hex()
    with pytest.raises(InvalidRecordError, match="does not verify"):
        verify_record(json.dumps(fields), record_key("dataset", "d", WRITER))


def test_node_records_are_written_by_their_node() -> None:
    with pytest.raises(ValueError, match="node record's name"):
        sign_record(KEY, "node", OTHER.public_key().public_bytes_raw().hex(), {}, 1)
    own = sign_record(KEY, "node", WRITER.hex(), {"host": "127.0.0.1"}, 1)
    assert verify_record(own.encode(), own.key).body == {"host": "127.0.0.1"}


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"v": 2}', b"\xff\xfe", 42, "not json"])
def test_garbage_is_refused(text: object) -> None:
    with pytest.raises(InvalidRecordError):
        verify_record(text, record_key("dataset", "d", WRITER))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="record kind"):
        record_key("file", "x", WRITER)


def test_oversize_record_is_refused_before_sending() -> None:
    with pytest.raises(RecordTooLargeError, match=rf"at most {MAX_RECORD_BYTES}.*per-chunk"):
        sign_record(KEY, "dataset", "big", {"holders": ["ab" * 32] * 200}, 1)
