"""Every failure a member meets ends in a record it signs; the owner judges from records.

Why: a member that fails without a word looks, to the owner, exactly like one that
withholds its result. Before this module, a failure outside the blame engine (a mesh that
never formed, an unreadable share file, a script that ran out of memory) closed the
member's request with an unsigned error, and the owner named whoever sent nothing back:
honest nodes were suspended for a script's appetite or a peer's crash. Now:

1. a member signs an `AbortRecord` (the blame layer's format, bound to the job's session)
   for any failure at any step: its reason (`classify`) and, for a silent or vanished
   peer, whom it waited for. The record rides on the error reply (`ServiceError.abort`);
2. the owner verifies each record against the member's transport key on the ledger
   (`records`) and judges (`judge`), in this order:
   - a member's record of a script limit or a script error (SCRIPT_REASONS): the script's
     fault; the job is cancelled and refunded, nobody is suspended;
   - a record of a request the owner got wrong: the same (a record of the owner's cancel
     is not weighed: the owner cancels the others at the first failure it hears of);
   - a member whose own record says its store is damaged: named by its own signature;
   - members named by the others' records as silent, gone or garbling (NAMING reasons)
     unless their own record gives a first-hand reason (a failed check: it stopped and
     said why, the others saw it leave), ranked as the blame layer ranks absences;
   - members that sent the owner nothing at all, not even a record (their connection
     died, or they kept silent past the owner's wait): named by the owner's observation;
     then members whose result was not what they committed to (`withheld`);
   - a member whose own record says it failed otherwise (an internal error): named by its
     own signature; last, because an error deep in a protocol is often the echo of a
     peer that vanished;
   - otherwise nobody (a failed MAC check outside blame mode says someone deviated, not
     who): the job is cancelled and refunded.
Proofs of deviation (the blame layer's) come before all of this (`culprits.blame_job`).

A malicious member can always make a job fail by signing a false script-limit record; it
costs it the fee and the owner a retry, and it never makes anyone else look guilty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from enigma.lang.budget import ScriptLimitError
from enigma.lang.errors import ScriptError
from enigma.mpc.blame import ABSENCE, AbortRecord, decode_aborts, encode_abort
from enigma.mpc.engine import ProtocolError as EngineProtocolError
from enigma.net.errors import AuthenticationError, NetError, PeerTimeout, SetupStopped
from enigma.net.identity import Identity
from enigma.sharing import MacCheckError
from enigma.sharing.commit import CommitmentError
from enigma.storage.container import CorruptShareError
from enigma.storage.store import StoreError

from .service import ServiceError

E = TypeVar("E", bound=BaseException)

SCRIPT_REASONS = frozenset({"script", "steps", "elements", "time", "memory", "work"})
OWNER_REASONS = frozenset({"request"})
"""The owner's request was malformed: its own doing, nobody is named."""
CANCELLED = "cancelled"
"""A member stopped because the owner cancelled it: the owner cancels the others at the
first failure, so these records are echoes of that failure and are not weighed."""
SETUP = "setup"
"""A member cancelled while its mesh formed, after it had waited a whole message timeout for
the peer it names to connect. Weighed only against a peer that sent the owner no record
at all: one that answered was not cut off, whatever the record says (a member can sign
anything), and a slow but live peer must not be named on a cancel someone else caused."""
SELF_REASONS = frozenset({"store", "error"})
BUDGET_REASONS = frozenset({*SCRIPT_REASONS - {"script"}, "cancelled"})
"""Reasons a member's budget gives (`budget.Guard`), whatever the exception said."""
SERVICE_REASONS = {"bad-request": "request", "store": "store"}
"""Service refusal kinds that say whose failure it is."""
NAMING = frozenset({*ABSENCE, "protocol", SETUP})
"""Reasons that name a peer: it went silent, left, or sent what the protocol cannot take."""


@dataclass(frozen=True)
class Judgement:
    """The owner's reading of a failed attempt: `kind` is one of script, request, self,
    absent, silent, withheld, none; `party` the member named (-1 for none); `records` the signed
    records behind it (the evidence of an absence report)."""

    kind: str
    party: int
    reason: str
    records: tuple[AbortRecord, ...] = ()

    @property
    def blames(self) -> bool:
        return self.kind in ("self", "absent", "silent", "withheld")

    @property
    def before_absence(self) -> bool:
        """Settled before any absence is weighed: nobody is named, or a member's own record
        says its store is damaged (the others' records of its leaving are echoes)."""
        return not self.blames or (self.kind == "self" and self.records[0].reason == "store")

    def evidence(self) -> bytes:
        return b"".join(encode_abort(r) for r in self.records)


def classify(exc: BaseException, limit: str | None = None) -> tuple[str, int | None]:
    """A failure's reason for its record, and the peer it names (if any). `limit` is the
    limit the job's budget stopped it at (`budget.Guard.limit`), which wins over what the
    exception says: a peer that vanished because this member stopped is no peer's fault.
    A service refusal says whose it is by its kind (the owner's request, this store),
    else by its cause."""
    if isinstance(exc, ServiceError) and exc.kind in SERVICE_REASONS:
        return SERVICE_REASONS[exc.kind], None
    if isinstance(exc, MemoryError):
        return "memory", None
    stopped = _cause(exc, SetupStopped)
    if limit == CANCELLED and stopped is not None and stopped.first_hand:
        return SETUP, stopped.party  # weighed only against a member that sent nothing
    if limit is not None:
        return limit, None
    if isinstance(exc, ServiceError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ScriptLimitError):
        return exc.limit, None
    if isinstance(exc, ScriptError):
        return "script", None
    if isinstance(exc, CorruptShareError | StoreError):
        return "store", None
    if isinstance(exc, MacCheckError | CommitmentError | EngineProtocolError):
        return "mac", None  # somebody deviated; without blame mode nobody can say who
    exc = _cause(exc, NetError) or exc  # a protocol error over a vanished peer
    peer = getattr(exc, "party", None)
    if isinstance(exc, PeerTimeout):  # PeerDisconnected is a PeerTimeout
        return ("disconnect" if type(exc).__name__ == "PeerDisconnected" else "timeout"), peer
    if isinstance(exc, AuthenticationError) and peer is not None:
        return "unsigned", peer
    if isinstance(exc, NetError) and peer is not None:
        return "protocol", peer
    return "error", None


def _cause(exc: BaseException, kind: type[E]) -> E | None:
    """`exc` or the first exception of `kind` in its chain of causes and contexts."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, kind):
        cause = cause.__cause__ or cause.__context__
    return cause


def sign_record(identity: Identity, session: bytes, party: int, reason: str,
                peer: int | None, detail: str) -> AbortRecord:
    """This member's signed record of why it stopped (blame layer format, index -1)."""
    rec = AbortRecord(session, party, reason, -1 if peer is None or peer == party else peer,
                      -1, detail[:300])
    return AbortRecord(rec.session_id, rec.party, rec.reason, rec.peer, rec.index,
                       rec.detail, identity.sign(rec.body()))


def verified(raw: bytes, session: bytes, party: int, key: bytes) -> AbortRecord | None:
    """The record `raw` if it is one record of `party` for this session, signed by `key`."""
    try:
        recs = decode_aborts(raw)
    except ValueError:
        return None
    if len(recs) != 1 or recs[0].party != party or recs[0].session_id != session:
        return None
    try:
        recs[0].verify(key)
    except AuthenticationError:
        return None
    return recs[0]


FIRST_HAND = frozenset({"timeout", SETUP})
"""Records of a whole wait: the signer waited a message timeout for the peer it names."""


def absence_rank(records: Sequence[AbortRecord], party: int, answered: bool = True
                 ) -> tuple[bool, int, bool, int]:
    """Which of several members named absent to report: first one that someone waited a
    whole timeout for, then the one named by the most signers, then one that sent the owner
    no record of its own (`answered` False), then the lowest index.

    Why: a member that aborts closes its channels, so its peers see a disconnect naming
    it, and a staller that wakes up finds its sends failing and signs a disconnect naming
    whoever already left. Disconnects are often the echo of another member's abort; a
    timeout is a first-hand wait. Taking the lowest index instead named an honest node
    after a stall whenever it came first in the quorum (seen in the fault matrix). A
    member cut off while the mesh forms (docs/blame.md) is named by a SETUP record of the
    peer that waited for it, and a peer whose mesh was complete names that waiting peer:
    two parties named alike, of which only the cut one answers the owner nothing.
    """
    return (not any(r.reason in FIRST_HAND for r in records), -len({r.party for r in records}),
            answered, party)


def judge(records: Mapping[int, AbortRecord], parties: int, silent: Sequence[int] = (),
          withheld: Sequence[int] = ()) -> Judgement:
    """The owner's verdict from the members' verified records, the members that sent it
    nothing (`silent`) and those whose result was not what they committed to (`withheld`);
    see the module docstring for the order."""
    own = sorted((p, r) for p, r in records.items() if r.reason != CANCELLED)
    for p, r in own:
        if r.reason in SCRIPT_REASONS:
            return Judgement("script", -1, f"member {p}: {r.detail}", (r,))
    for p, r in own:
        if r.reason in OWNER_REASONS:
            return Judgement("request", -1, f"member {p}: {r.detail}", (r,))
    for p, r in own:
        if r.reason == "store":
            return Judgement("self", p, f"member {p} failed itself: {r.detail}", (r,))
    named: dict[int, list[AbortRecord]] = {}
    # a peer that signed a first-hand reason of its own (a failed check, an error: not a
    # peer, not the owner's cancel) did not vanish: the echoes of its leaving are not
    # weighed, its own record is (below); a peer whose record names yet another peer is
    # ranked with the rest (a staller that wakes up finds its peers gone, and says so)
    said = {p for p, r in own if r.reason not in NAMING}
    for p, r in own:
        if r.reason in NAMING and 0 <= r.peer < parties and r.peer != p \
                and r.peer not in said and (r.reason != SETUP or r.peer not in records):
            named.setdefault(r.peer, []).append(r)
    if named:
        party = min(named, key=lambda q: absence_rank(named[q], q, q in records))
        return Judgement("absent", party, f"member {party} named absent by members "
                                          f"{sorted(r.party for r in named[party])}",
                         tuple(named[party]))
    if silent:
        return Judgement("silent", silent[0], f"member {silent[0]} sent no reply and no "
                                              "signed record")
    if withheld:
        return Judgement("withheld", withheld[0], f"member {withheld[0]} delivered a result "
                                                  "other than the one it committed to")
    for p, r in own:
        if r.reason in SELF_REASONS:
            return Judgement("self", p, f"member {p} failed itself: {r.detail}", (r,))
    return Judgement("none", -1, "no member is named by any record")
