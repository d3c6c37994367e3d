"""Layer 7: the public ledger: Vyper contracts and a typed web3 client.

The chain holds identities, deposits, pointers, commitments, fees, rewards and blame;
never data, shares or results.  See docs/ledger.md.
"""

from .client import Ledger
from .devchain import DevChainProcess, DevChainServer, spawn_devchain, start_devchain
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
    "draw_quorum",
    "personal_sign",
    "recover_signer",
    "script_hash",
    "spawn_devchain",
    "start_devchain",
]
