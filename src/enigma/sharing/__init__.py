"""Layer 2: additive shares with SPDZ MACs, Shamir t-of-n shares, and conversions between them."""

from . import additive, commit, shamir, spdz, tags
from .spdz import AuthShare, MacCheckError

__all__ = ["AuthShare", "MacCheckError", "additive", "commit", "shamir", "spdz", "tags"]
