"""Exceptions of the transport, one type per thing that can go wrong, each naming the peer.

Why a type per kind: the blame layer treats them differently. A timeout may be a slow
network; a TLS record that fails authentication means someone on the path (or the peer)
tampered with the stream; a failed handshake means a stranger or a misconfigured key.
Every instance carries `party`, the index of the peer concerned (None when no single
peer is), so callers need not parse messages.
"""

from __future__ import annotations


class NetError(Exception):
    """Base of every transport error; `party` is the peer concerned, if any."""

    def __init__(self, message: str, party: int | None = None) -> None:
        super().__init__(message)
        self.party = party


class AuthenticationError(NetError):
    """A handshake failed: unknown party, wrong key, other session or not our protocol."""


class MalformedKey(AuthenticationError):
    """A public key that is no Ed25519 key at all (off the curve, small order, all zeros)."""


class NotAdmitted(AuthenticationError):
    """The peer proved its key, and the listener's policy does not admit that key."""


class PeerTimeout(NetError):
    """A peer did not deliver (or accept) the next message within the timeout."""


class PeerDisconnected(PeerTimeout):
    """The peer closed the connection: a timeout that came early, as nothing more will come."""


class SetupStopped(PeerTimeout):
    """A mesh's setup was stopped from outside (its job was cancelled) while `party` had not
    connected. `first_hand` when it had been missing for at least the mesh's message timeout,
    the standard a silent peer is held to. Not proof on its own: the stop follows whatever
    failure came first, which another member may have chosen, so the owner weighs it only
    against a peer that answers nobody (`app.failures.SETUP`)."""

    def __init__(self, message: str, party: int, first_hand: bool) -> None:
        super().__init__(message, party)
        self.first_hand = first_hand


class FrameError(NetError):
    """The authenticated record stream from a peer is broken; the channel is unusable after it."""


class TruncatedFrame(FrameError):
    """The stream ended inside a record or inside a message."""


class TamperedFrame(FrameError):
    """The TLS stream broke: a record was altered, replayed, reordered, dropped or forged
    (TLS cannot tell which: each fails its record authentication alike)."""


class ProtocolError(NetError):
    """The peer sent something valid but unexpected here, e.g. a checkpoint instead of data."""


class TranscriptMismatch(ProtocolError):
    """A peer's signed checkpoint disagrees with what we received from it."""


class KeyFileError(NetError):
    """A key file is missing, unreadable, too widely readable or corrupted."""
