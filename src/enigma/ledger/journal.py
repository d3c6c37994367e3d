"""The embedded chain's memory on disk: the genesis it was built from and every block it mined.

Why blocks and not a snapshot of py-evm's database: the database is an in-memory dict that
keeps every trie node ever written, so a snapshot grows with history and would have to be
rewritten whole after each transaction to survive a crash. A block is small (a few KB),
is appended once, and replaying it with `import_block` re-executes and re-validates it:
the parent hash, the state root and the receipts must come out identical, so a journal
that does not describe this chain cannot be replayed into a different one unnoticed.

Format of `blocks.log`: records `length (4 bytes, big-endian) | sha256(payload) | payload`,
payload the block's RLP. A record is fsynced before the chain answers the request that
mined it, so an acknowledged block is on disk. On open:
  - a last record cut short (a crash mid-append: never acknowledged) is cut off, and the
    chain resumes from the block before; the opener is told how many bytes were dropped;
  - a complete record whose checksum fails, anywhere, is damage: JournalError names the
    file, the block and the byte offset. Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

from enigma.files import fsync_dir, write_atomic

from .errors import LedgerError

GENESIS_FILE = "genesis.json"
BLOCKS_FILE = "blocks.log"
_HEADER = struct.Struct(">I32s")
MAX_RECORD = 1 << 26  # a block of the 30M-gas chain is far below 64 MiB


class JournalError(LedgerError):
    """A chain state directory that cannot be resumed as it is; the message says why."""


@dataclass(frozen=True)
class Genesis:
    """What a chain was born with: replaying its blocks needs exactly the same first block."""

    timestamp: int
    accounts: int
    block_hash: str

    def save(self, folder: Path) -> None:
        write_atomic(folder / GENESIS_FILE, [json.dumps(asdict(self)).encode()])

    @classmethod
    def load(cls, folder: Path) -> Genesis | None:
        path = folder / GENESIS_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise JournalError(f"{path} is damaged ({exc}); the chain in {folder} cannot be "
                               "resumed: restore the file, or start a fresh chain elsewhere"
                               ) from exc


@dataclass
class Replay:
    """The blocks found on disk, in order, and what a torn last append cost."""

    blocks: list[bytes]
    dropped_bytes: int


def read_blocks(folder: Path) -> Replay:
    """Every complete, checked block record of `folder`'s journal; a torn tail is cut off."""
    path = folder / BLOCKS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Replay([], 0)
    blocks: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            break
        length, digest = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        if length > MAX_RECORD:
            raise _damaged(path, len(blocks) + 1, offset, f"a record claims {length} bytes")
        if start + length > len(data):
            break
        payload = data[start:start + length]
        if hashlib.sha256(payload).digest() != digest:
            raise _damaged(path, len(blocks) + 1, offset, "its checksum does not match")
        blocks.append(payload)
        offset = start + length
    dropped = len(data) - offset
    if dropped:
        with open(path, "r+b") as f:
            f.truncate(offset)
            os.fsync(f.fileno())
    return Replay(blocks, dropped)


def _damaged(path: Path, block: int, offset: int, why: str) -> JournalError:
    return JournalError(
        f"{path} is damaged at block {block} (byte {offset}): {why}. Blocks before it are "
        f"intact: keep a copy of the file and truncate it to {offset} bytes to resume from "
        f"block {block - 1} (later blocks are lost), or start a fresh chain elsewhere")


class BlockJournal:
    """Appends mined blocks to `blocks.log`, each durable before `append` returns."""

    def __init__(self, folder: Path) -> None:
        path = folder / BLOCKS_FILE
        existed = path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        if not existed:
            fsync_dir(folder)

    def append(self, payload: bytes) -> None:
        """Write and fsync one record; on failure the file is cut back to its last record."""
        record = _HEADER.pack(len(payload), hashlib.sha256(payload).digest()) + payload
        try:
            written = os.write(self._fd, record)
            if written != len(record):
                raise OSError(f"short write, {written} of {len(record)} bytes")
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a torn tail is cut off at the next open
                os.ftruncate(self._fd, self._size)
            raise JournalError(f"cannot write the chain journal ({exc}): is the disk full?"
                               ) from exc
        self._size += len(record)

    def close(self) -> None:
        os.close(self._fd)
