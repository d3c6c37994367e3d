"""Layer 7: the public ledger: Vyper contracts and a typed web3 client.

The chain holds identities, deposits, pointers, commitments, fees, rewards and blame;
never data, shares or results.  See docs/ledger.md.
"""

from typing import Any

from .client import Ledger
from .errors import ContractRevert, LedgerError
from .quorum import draw_quorum
from .records import (
    PROOF_SIGNED,
    AccusationInfo,
    AccusationStatus,
    CommitInfo,
    DatasetInfo,
    Deployment,
    JobInfo,
    JobStatus,
    LedgerParams,
    NodeInfo,
    Policy,
    ReleaseRecord,
)
from .signing import personal_sign, recover_signer, script_hash

__all__ = [
    "PROOF_SIGNED",
    "AccusationInfo",
    "AccusationStatus",
    "CommitInfo",
    "ContractRevert",
    "DatasetInfo",
    "Deployment",
    "DevChainProcess",
    "DevChainServer",
    "JobInfo",
    "JobStatus",
    "Ledger",
    "LedgerError",
    "LedgerParams",
    "NodeInfo",
    "Policy",
    "ReleaseRecord",
    "draw_quorum",
    "personal_sign",
    "recover_signer",
    "script_hash",
    "spawn_devchain",
    "start_devchain",
]

_DEVCHAIN = ("DevChainProcess", "DevChainServer", "spawn_devchain", "start_devchain")


def __getattr__(name: str) -> Any:
    """The embedded dev chain loads when asked for: it brings the whole EVM (py-evm) with
    it, which a client of a running chain (every `enigma` command but `up` and `chain`)
    never needs."""
    if name in _DEVCHAIN:
        from . import devchain
        return getattr(devchain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
