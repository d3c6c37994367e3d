"""Layer 1: prime-field arithmetic over numpy arrays and the encodings of values into the field."""

from .encoding import (
    VALUE_BITS,
    BoolEncoding,
    CategoryEncoding,
    Encoding,
    EncodingError,
    FixedEncoding,
    IntEncoding,
)
from .prg import PRG
from .prime import MERSENNE_127, Field, FieldError

__all__ = [
    "MERSENNE_127",
    "PRG",
    "VALUE_BITS",
    "BoolEncoding",
    "CategoryEncoding",
    "Encoding",
    "EncodingError",
    "Field",
    "FieldError",
    "FixedEncoding",
    "IntEncoding",
]
