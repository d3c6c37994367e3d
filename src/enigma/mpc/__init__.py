"""Layer 4: the SPDZ online phase and the protocols built on it."""
