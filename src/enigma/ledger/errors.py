"""Contract reverts as Python exceptions a person can act on.

Every `assert` in the contracts carries a reason "Kind: what to do".  The client turns
the Kind into the class of the same name below (unknown kinds stay ContractRevert) and
adds which contract function reverted, so a caller can catch `InsufficientDeposit`
rather than parse strings.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Anything that went wrong talking to the ledger."""


class ContractRevert(LedgerError):
    """A contract refused a call; `kind` names the rule, `detail` says what to do."""

    def __init__(self, kind: str, detail: str, where: str) -> None:
        self.kind = kind
        self.detail = detail
        self.where = where
        super().__init__(f"{where} reverted ({kind}): {detail}")


class InsufficientDeposit(ContractRevert):
    pass


class InsufficientFee(ContractRevert):
    pass


class NotOwner(ContractRevert):
    pass


class NotPoster(ContractRevert):
    """Only the job's poster or the dataset's owner may cancel the job."""


class NotRegistered(ContractRevert):
    pass


class AlreadyRegistered(ContractRevert):
    pass


class Slashed(ContractRevert):
    pass


class Unbonding(ContractRevert):
    pass


class NotUnbonding(ContractRevert):
    pass


class InJob(ContractRevert):
    pass


class NotEnoughNodes(ContractRevert):
    pass


class UnknownDataset(ContractRevert):
    pass


class DatasetExpired(ContractRevert):
    pass


class AccessDenied(ContractRevert):
    pass


class BudgetExceeded(ContractRevert):
    """A job would spend more ε or δ than its dataset's release policy has left."""


class EpsilonMissing(ContractRevert):
    """A job on a differentially private dataset must say the ε it spends."""


class NotPrivate(ContractRevert):
    """A job spends ε on a dataset that has no ε budget."""


class Loosening(ContractRevert):
    """A release policy, once set, only tightens (datasets.vy `set_release`)."""


class NotActiveNode(ContractRevert):
    pass


class UnknownJob(ContractRevert):
    pass


class JobClosed(ContractRevert):
    pass


class NotInQuorum(ContractRevert):
    pass


class AlreadyCommitted(ContractRevert):
    pass


class WorkOverBudget(ContractRevert):
    pass


class ResultsMissing(ContractRevert):
    pass


class TooEarly(ContractRevert):
    pass


class BadSignature(ContractRevert):
    pass


class BadProof(ContractRevert):
    pass


class NothingToClaim(ContractRevert):
    pass


class NotSuspended(ContractRevert):
    pass


class InsufficientBond(ContractRevert):
    """An accusation came without the accuser's bond (`accusation_bond` wei)."""


class UnderAccusation(ContractRevert):
    """The node has a pending accusation: no resume, no withdrawal until it is finalized."""


class UnknownAccusation(ContractRevert):
    pass


class Settled(ContractRevert):
    """The accusation was finalized already."""


class NotAccused(ContractRevert):
    """Only the accused node disputes its accusation."""


class AlreadyDisputed(ContractRevert):
    pass


class TooLate(ContractRevert):
    """The challenge (or voting) period is over."""


class NotCommittee(ContractRevert):
    """Only the members drawn for the accusation's committee vote."""


class AlreadyVoted(ContractRevert):
    pass


KINDS: dict[str, type[ContractRevert]] = {
    cls.__name__: cls for cls in ContractRevert.__subclasses__()
}


def revert_from_reason(reason: str, where: str) -> ContractRevert:
    """Build the exception for a revert reason such as 'execution reverted: NotOwner: ...'."""
    text = reason.removeprefix("execution reverted:").strip()
    kind, sep, detail = text.partition(":")
    if not sep or not kind.isidentifier():
        return ContractRevert("Revert", text or "no reason given", where)
    return KINDS.get(kind, ContractRevert)(kind, detail.strip(), where)
