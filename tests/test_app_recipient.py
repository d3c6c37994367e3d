"""Results sealed to a job's recipient (app/recipient.py), without a network.

The recipient alone opens a member's sealed copy; a stranger's key, another job or party,
or a flipped byte opens nothing. The result key is the same for every derivation from
one account and differs between accounts. The single-use output key comes back from the
sealed pair.
"""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from enigma.app.recipient import (
    ResultError,
    _owner_key,
    public_bytes,
    result_key,
    seal,
    unseal,
)
from enigma.field import Field
from enigma.ledger import Ledger

F = Field()
REPLY = {"layout": [["claimed", [2], 0, 0.0, 0.0, 60.0]], "exact": {}, "printed": [],
         "stats": {"rounds": 3}}


def _shares(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = F.from_ints([int(v) for v in rng.integers(0, 2**62, n)])
    return x, F.mul(x, F.from_ints([7] * n))


@settings(max_examples=20, deadline=None)
@given(job_id=st.integers(0, 2**40), party=st.integers(0, 15), n=st.integers(0, 6),
       seed=st.integers(0, 2**16))
def test_the_recipient_opens_exactly_what_was_sealed(job_id: int, party: int, n: int,
                                                     seed: int) -> None:
    key = X25519PrivateKey.generate()
    x, z = _shares(seed, n)
    meta, x2, z2 = unseal(key, job_id, party, seal(public_bytes(key), job_id, party, x, z,
                                                   REPLY))
    assert np.array_equal(x2, x.reshape(-1, 2)) and np.array_equal(z2, z.reshape(-1, 2))
    assert meta == {k: REPLY[k] for k in ("layout", "exact", "printed")}


def test_a_stranger_another_job_or_a_flipped_byte_opens_nothing() -> None:
    key, stranger = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    x, z = _shares(1, 3)
    blob = seal(public_bytes(key), 9, 1, x, z, REPLY)
    with pytest.raises(ResultError, match="not sealed to this key"):
        unseal(stranger, 9, 1, blob)
    for job_id, party in ((10, 1), (9, 0)):  # bound to its job and member
        with pytest.raises(ResultError, match="not sealed to this key"):
            unseal(key, job_id, party, blob)
    flipped = bytearray(blob)
    flipped[50] ^= 1
    with pytest.raises(ResultError, match="not sealed to this key"):
        unseal(key, 9, 1, bytes(flipped))
    with pytest.raises(ResultError, match="too short"):
        unseal(key, 9, 1, blob[:40])


def _offline(secret: bytes) -> Ledger:
    """An account that signs locally; no chain is needed to derive its key."""
    account = Account.from_key(keccak(secret))
    return Ledger(Web3(), account.address, None, 1.0, account)


def test_the_result_key_is_the_accounts_own() -> None:
    a, b = _offline(b"analyst"), _offline(b"someone else")
    assert public_bytes(result_key(a)) == public_bytes(result_key(a))
    assert public_bytes(result_key(a)) != public_bytes(result_key(b))


def test_the_single_use_output_key_comes_back_from_the_sealed_pair() -> None:
    k = F.random(1)
    x = F.from_ints([0, 5, 11])
    z = F.mul(x, np.repeat(k, 3, axis=0))
    assert np.array_equal(_owner_key(F, x, z), k)
    zero = F.zeros(2)
    assert np.array_equal(_owner_key(F, zero, zero), F.from_ints([1]))
