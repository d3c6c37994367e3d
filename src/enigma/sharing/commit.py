"""Hash commitments, for the commit-then-open steps of the MAC check and coin tossing.

SHA-256 over a 32-byte random nonce and the value: hiding because the nonce is
uniform, binding because SHA-256 is collision resistant.
"""

from __future__ import annotations

import hashlib
import hmac
import os

_DOMAIN = b"enigma.commit.v1"


class CommitmentError(ValueError):
    """An opening that does not match its commitment."""


def commit(value: bytes, nonce: bytes | None = None) -> tuple[bytes, bytes]:
    """(commitment, nonce): send the commitment now, the nonce and value later."""
    nonce = os.urandom(32) if nonce is None else nonce
    return hashlib.sha256(_DOMAIN + nonce + value).digest(), nonce


def verify(commitment: bytes, value: bytes, nonce: bytes, who: str = "a party") -> None:
    """Raise CommitmentError unless (value, nonce) opens the commitment."""
    expected = hashlib.sha256(_DOMAIN + nonce + value).digest()
    if not hmac.compare_digest(expected, commitment):
        raise CommitmentError(f"the value opened by {who} does not match its commitment")
