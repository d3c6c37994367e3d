"""Layer 3: the authenticated, encrypted full mesh between the nodes of a quorum."""
