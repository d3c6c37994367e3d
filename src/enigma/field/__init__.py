"""Layer 1: prime-field arithmetic over numpy arrays and the encodings of values into the field."""
