"""Signatures the contracts check with ecrecover: personal_sign (EIP-191) over 32 bytes.

The analyst signs the hash of a script so that a job names its author verifiably; an
owner or a quorum signs an accusation digest.  Both use the same Ethereum scheme so
that the jobs contract can verify them with the ecrecover precompile.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak


def script_hash(source: bytes) -> bytes:
    """The script's identity on the ledger: keccak256 of its exact bytes."""
    return keccak(source)


def personal_sign(private_key: bytes, digest: bytes) -> bytes:
    """A 65-byte r‖s‖v signature over `digest` as eth_sign/personal_sign produces it."""
    if len(digest) != 32:
        raise ValueError(f"sign a 32-byte digest, got {len(digest)} bytes")
    signed = Account.sign_message(encode_defunct(primitive=digest), private_key=private_key)
    return bytes(signed.signature)


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address that produced `signature` over `digest`."""
    return Account.recover_message(encode_defunct(primitive=digest), signature=signature)
