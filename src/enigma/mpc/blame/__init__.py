"""Identifiable abort: after a failed check, name who cheated, with evidence anyone can check.

SPDZ with one global MAC key says *that* someone cheated, never *who*: no party's share is
authenticated on its own. This module adds what attribution needs without touching the
engine's normal path (the protocol and its arguments are in docs/blame.md):

* Before the run, each party commits (BLAKE3, with a nonce) to its `Material`: its MAC key
  share, the seed of its own coins (MAC-check seeds and commitment nonces), a digest naming
  its preprocessing and one of its private inputs. The commitment is its first message on
  every channel.
* During the run (`SignedChannel`, between the engine and the mesh), every message is
  followed on the same channel by a signed `Statement`: the sender's message counts and
  BLAKE3 chain heads, in both directions, with every peer. So each message is attributable
  the moment it arrives (no cooperation is needed after an abort), and each statement is
  also the sender's signed receipt of everything it had received.
* After an abort, each party hands over a `Package` (its material, the frames it sent and
  received, the statements it holds, a signed `AbortRecord`); in a deployment it goes sealed
  to the job's owner, who may see its own data's intermediate values (docs/blame.md says
  why the quorum must not see them). `identify` replays each party's program from its
  material and the inputs it signed for, and compares the messages the replay produces with
  the ones the party signed. A party whose signed message differs from its replay has
  deviated; `prove` packs that into evidence holding only the culprit's material and view,
  and `verify_evidence` checks it with the public keys alone.

Why replay and not a check per message: the engine's messages are deterministic functions
of a party's material and what it received, so replay attributes every deviation (a wrong
share, a wrong MAC-check value, corrupted preprocessing, garbage, equivocation, a replayed
or misdirected message) with one mechanism, and an honest party's replay reproduces its
messages exactly, so it can never be blamed.

A party that stops (drop-out, stall) deviates in time, not in content: nothing it signed is
wrong. It is named `absent` from the signed abort records of the parties that waited for it,
unless its own replay shows it was itself waiting: an attestation, not a proof.

The modules follow the protocol's parts: `material` (what a party commits to), `records`
(statements, abort records, packages), `channel` (signing every message), `replay`,
`evidence` (proving a deviation) and `verdict` (naming the culprits); `codec` frames them
as bytes.
"""

from .channel import SignedChannel, UnsignedMessage, blame_mode
from .evidence import (
    EvidenceError,
    decode_evidence,
    evidence_material,
    prove,
    replay_output,
    signed_material,
    verify_evidence,
    view_evidence,
)
from .material import Material, coins, open_session, prep_digest
from .records import (
    ABSENCE,
    AbortRecord,
    Head,
    Package,
    Statement,
    chain_of,
    decode_aborts,
    encode_abort,
)
from .replay import Outcome, Program, ReplayChannel, replay
from .verdict import Verdict, identify

__all__ = [
    "ABSENCE",
    "AbortRecord",
    "EvidenceError",
    "Head",
    "Material",
    "Outcome",
    "Package",
    "Program",
    "ReplayChannel",
    "SignedChannel",
    "Statement",
    "UnsignedMessage",
    "Verdict",
    "blame_mode",
    "chain_of",
    "coins",
    "decode_aborts",
    "decode_evidence",
    "encode_abort",
    "evidence_material",
    "identify",
    "open_session",
    "prep_digest",
    "prove",
    "replay",
    "replay_output",
    "signed_material",
    "verify_evidence",
    "view_evidence",
]
