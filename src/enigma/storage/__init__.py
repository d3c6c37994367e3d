"""Layer 8: discovery (Kademlia DHT) and the durable local share store.

`ShareStore` keeps a node's share columns on disk, checked on every read; `DhtNode` says
who holds which dataset and chunk, with signed records. See docs/storage.md.
"""

from .commitment import chunk_commitment, dataset_commitment, describe
from .container import CorruptShareError
from .dht import DatasetPointer, DhtNode, Endpoint
from .records import DhtError, InvalidRecordError, Record, RecordTooLargeError
from .store import Manifest, MissingShareError, ShareStore, StoreBusyError

__all__ = [
    "CorruptShareError",
    "DatasetPointer",
    "DhtError",
    "DhtNode",
    "Endpoint",
    "InvalidRecordError",
    "Manifest",
    "MissingShareError",
    "Record",
    "RecordTooLargeError",
    "ShareStore",
    "StoreBusyError",
    "chunk_commitment",
    "dataset_commitment",
    "describe",
]
