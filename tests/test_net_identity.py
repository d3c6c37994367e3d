"""Node keys on disk: 0600, atomic, checked on read; public facts validated."""

from __future__ import annotations

import os
import stat

import pytest

from enigma.net import AuthenticationError, Identity, KeyFileError, PeerInfo
from enigma.net.identity import verify_signature


def test_saved_key_is_private_and_loads_back(tmp_path):
    ident = Identity.generate()
    path = tmp_path / "node.key"
    ident.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load(path).public_key == ident.public_key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]  # no temp file left
    sig = Identity.load(path).sign(b"m")
    verify_signature(ident.public_key, sig, b"m", 4)
    with pytest.raises(AuthenticationError, match="party 4"):
        verify_signature(ident.public_key, sig, b"other", 4)


def test_save_replaces_an_existing_key_atomically(tmp_path):
    path = tmp_path / "node.key"
    Identity.generate().save(path)
    second = Identity.generate()
    second.save(path)
    assert Identity.load(path).public_key == second.public_key


def test_repr_never_shows_the_secret():
    ident = Identity.generate()
    assert ident.private_bytes().hex() not in repr(ident)
    assert ident.public_key.hex() in repr(ident)


@pytest.mark.parametrize("position", [20, 60, 100, 150])
def test_a_corrupted_key_file_is_refused(tmp_path, position):
    path = tmp_path / "node.key"
    Identity.generate().save(path)
    text = bytearray(path.read_bytes())
    text[position] = ord("0") if text[position] != ord("0") else ord("1")
    path.write_bytes(bytes(text))
    with pytest.raises(KeyFileError, match=str(path)):
        Identity.load(path)


def test_a_truncated_or_foreign_key_file_is_refused(tmp_path):
    path = tmp_path / "node.key"
    Identity.generate().save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(KeyFileError, match="not an 'enigma-node-key v1' file"):
        Identity.load(path)
    with pytest.raises(KeyFileError, match="cannot read"):
        Identity.load(tmp_path / "missing.key")


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "node.key"
    Identity.generate().save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        Identity.load(path)


def test_peer_info_rejects_malformed_keys_and_ports():
    with pytest.raises(ValueError, match="32 raw Ed25519 bytes"):
        PeerInfo(0, "127.0.0.1", 5000, b"short")
    with pytest.raises(ValueError, match="port"):
        PeerInfo(0, "127.0.0.1", 0, bytes(32))
