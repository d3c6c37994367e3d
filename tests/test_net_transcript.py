"""Transcript chains and checkpoints: a third party can tell what a peer sent, and no more."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.net import (
    AuthenticationError,
    Identity,
    Mesh,
    TranscriptMismatch,
    local_quorum,
    message_digest,
    verify_message,
)
from enigma.net.transcript import (
    Checkpoint,
    chain_next,
    chain_start,
    encode_head,
    session_id,
    split_head,
    statement,
)

CTX = mp.get_context("spawn")


def _signed(sender: Identity, messages: list[list[bytes]]) -> tuple[Checkpoint, list[bytes]]:
    sid = session_id(b"job")
    digests = [message_digest(m) for m in messages]
    chain = chain_start(sid, 1, 0)
    for d in digests:
        chain = chain_next(chain, d)
    sig = sender.sign(statement(sid, 1, 0, len(digests), chain))
    return Checkpoint(sid, 1, 0, len(digests), chain, sig), digests


@given(st.lists(st.integers(0, 2**40), max_size=50), st.binary(max_size=20))
def test_head_encoding_round_trips_and_tells_where_frames_start(lengths, rest):
    head = encode_head(lengths)
    assert split_head(head + rest) == (lengths, len(head))
    if lengths:
        with pytest.raises(ValueError, match="announces"):
            split_head(head[:-1])


def test_digest_separates_frame_boundaries():
    assert message_digest([b"ab", b"c"]) != message_digest([b"a", b"bc"])
    assert message_digest([b"abc"]) != message_digest([b"abc", b""])
    assert message_digest([np.arange(4, dtype=np.uint64)]) == message_digest(
        [np.arange(4, dtype=np.uint64).tobytes()]
    )


def test_a_third_party_checks_a_message_against_a_checkpoint():
    sender = Identity.generate()
    messages = [[b"first"], [b"second", b"frame"], []]
    cp, digests = _signed(sender, messages)
    for i, m in enumerate(messages):
        verify_message(cp, sender.public_key, digests, i, m)
    with pytest.raises(TranscriptMismatch, match="not message 1"):
        verify_message(cp, sender.public_key, digests, 1, [b"second", b"frame!"])
    with pytest.raises(TranscriptMismatch, match="do not chain"):
        verify_message(cp, sender.public_key, digests[::-1], 0, messages[2])
    with pytest.raises(TranscriptMismatch, match="covers 3 messages"):
        verify_message(cp, sender.public_key, digests[:2], 0, messages[0])
    with pytest.raises(AuthenticationError, match="party 1"):
        verify_message(cp, Identity.generate().public_key, digests, 0, messages[0])


def _talk(me: int, secret: bytes, peers, results) -> None:
    with Mesh(me, Identity.from_private_bytes(secret), peers, b"t", timeout=20) as mesh:
        for n in (3, 70_000):
            mesh.broadcast(np.full(n, me, np.uint64))
        mesh.checkpoint()
        results.put(me)


def test_checkpoints_of_a_real_session_prove_what_each_peer_sent():
    identities, peers = local_quorum(3)
    results = CTX.Queue()
    procs = [CTX.Process(target=_talk, args=(j, identities[j].private_bytes(), peers, results))
             for j in (1, 2)]
    for p in procs:
        p.start()
    with Mesh(0, identities[0], peers, b"t", timeout=20) as mesh:
        received = {j: [] for j in (1, 2)}
        for n in (3, 70_000):
            for j, frames in mesh.broadcast(np.full(n, 0, np.uint64)).items():
                received[j].append(frames)
        signed = mesh.checkpoint()
        transcript = mesh.transcript()
    assert sorted(results.get(timeout=20) for _ in procs) == [1, 2]
    for p in procs:
        p.join(10)
    for j in (1, 2):
        cp = signed[j]
        assert (cp.sender, cp.receiver, cp.count) == (j, 0, 2)
        assert transcript[j].checkpoint == cp and transcript[j].sent_count == 2
        digests = transcript[j].received_digests
        for i, frames in enumerate(received[j]):
            verify_message(cp, peers[j].public_key, digests, i, frames)
            got = np.frombuffer(frames[0], np.uint64)
            assert np.array_equal(got, np.full(got.size, j, np.uint64))
        forged = [np.full(3, 0, np.uint64)]
        with pytest.raises(TranscriptMismatch):
            verify_message(cp, peers[j].public_key, digests, 0, forged)
