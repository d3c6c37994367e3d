"""Layer 2: additive shares with SPDZ MACs, Shamir t-of-n shares, and conversions between them."""
