"""Layer 3: the authenticated, encrypted full mesh between the nodes of a quorum.

Public API (details in `mesh`, wire format in `channel`, TLS 1.3 with pinned keys in
`handshake` and `tls`, evidence in `transcript`, numbers and decisions in
docs/transport.md):

    Identity.generate() / .load(path) / .save(path)      this node's Ed25519 key
    PeerInfo(party, host, port, public_key)              a quorum member
    Mesh(me, identity, peers, session, timeout=30.0)     connect; send/recv/exchange/
                                                         broadcast/checkpoint/transcript/close
    local_quorum(parties=3) -> (identities, peers)       a quorum on 127.0.0.1
    verify_message(checkpoint, public_key, digests, index, frames)   third-party check
"""

from .errors import (
    AuthenticationError,
    FrameError,
    KeyFileError,
    NetError,
    PeerDisconnected,
    PeerTimeout,
    ProtocolError,
    TamperedFrame,
    TranscriptMismatch,
    TruncatedFrame,
)
from .identity import Identity, PeerInfo
from .local import free_ports, local_quorum
from .mesh import Mesh
from .transcript import ChannelTranscript, Checkpoint, message_digest, verify_message

__all__ = [
    "AuthenticationError",
    "ChannelTranscript",
    "Checkpoint",
    "FrameError",
    "Identity",
    "KeyFileError",
    "Mesh",
    "NetError",
    "PeerDisconnected",
    "PeerInfo",
    "PeerTimeout",
    "ProtocolError",
    "TamperedFrame",
    "TranscriptMismatch",
    "TruncatedFrame",
    "free_ports",
    "local_quorum",
    "message_digest",
    "verify_message",
]
