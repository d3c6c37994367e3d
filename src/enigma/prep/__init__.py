"""Layer 5: preprocessing providers (Beaver triples, random bits, input masks)."""
