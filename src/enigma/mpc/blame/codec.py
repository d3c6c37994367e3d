"""The byte framing of blame's records: length-prefixed fields and lists of messages.

Statements, abort records, packages and evidence all travel as bytes (a node hands its
package over a service channel; evidence is published). One framing serves them all, and
a `Reader` that refuses truncated or trailing bytes, so that a malformed record is a
ValueError at decoding, never a half-read object.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence


def lv(b: bytes) -> bytes:
    return struct.pack("<I", len(b)) + b


class Reader:
    def __init__(self, raw: bytes) -> None:
        self.raw, self.pos = raw, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.raw):
            raise ValueError("truncated")
        out = self.raw[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def lv(self) -> bytes:
        (n,) = self.unpack("<I")
        return self.take(n)

    def end(self) -> None:
        if self.pos != len(self.raw):
            raise ValueError("trailing bytes")


def encode_msgs(msgs: Sequence[Sequence[bytes]]) -> bytes:
    out = [struct.pack("<I", len(msgs))]
    for frames in msgs:
        out.append(struct.pack("<I", len(frames)))
        out += [lv(f) for f in frames]
    return b"".join(out)


def decode_msgs(r: Reader) -> list[tuple[bytes, ...]]:
    (n,) = r.unpack("<I")
    msgs = []
    for _ in range(n):
        (k,) = r.unpack("<I")
        msgs.append(tuple(r.lv() for _ in range(k)))
    return msgs

