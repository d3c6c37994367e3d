"""The typed client of the ledger's contracts, over any Ethereum JSON-RPC endpoint.

One class, `Ledger`, acting as one account.  Every state-changing method sends one
transaction, waits for its receipt and returns what the contract returned (read from
the event it logged); a revert becomes the exception named by the contract's reason
(see errors.py).  The account is either an address the node unlocks (the embedded
chain's and anvil's dev accounts) or a private key that signs locally (a real chain).
What it reads comes back as the typed records of records.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import LogReceipt, TxReceipt

from . import artifacts, records
from .errors import LedgerError, revert_from_reason
from .signing import personal_sign

READ_ONLY = "0x0000000000000000000000000000000000000000"
MAX_ENDPOINT = 128  # bytes; registry.vy stores String[128]
log = logging.getLogger(__name__)

#: Gas limits of the transactions on every job's path, sent without `eth_estimateGas`
#: (a second EVM run of each: 40 % of the embedded chain's work per transaction).
#: Each is about twice what the call uses at the contracts' bounds (a quorum of 16; for
#: `post_job` the draw's walk over a registry of 128 nodes and 32 holders), measured in
#: tests/test_ledger_units.py `test_gas_table_covers_the_contract_bounds`.  Unused gas is
#: not paid for, and a revert pays only what ran before it.  Every other call is rare
#: and estimated as before.  A limit found too small (the transaction fails, yet the same
#: call replayed passes) is resent once with an estimate: see `Ledger._failed`.
GAS_LIMITS = {
    "jobs.post_job": 5_000_000,
    "jobs.start": 300_000,
    "jobs.commit_result": 450_000,
    "jobs.accept": 1_300_000,
}


def _b32(name: str, value: bytes) -> bytes:
    """Check a bytes32 argument here, where the message can name it, not in the ABI encoder."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        got = (
            f"{len(value)} bytes" if isinstance(value, bytes | bytearray) else type(value).__name__
        )
        raise ValueError(f"{name} must be 32 bytes (a hash or key), got {got}")
    return bytes(value)


class Ledger:
    """One account's view of the ledger: send transactions, read records."""

    def __init__(
        self,
        w3: Web3,
        address: str,
        deployment: records.Deployment | None,
        timeout: float,
        local: LocalAccount | None = None,
    ) -> None:
        self.w3 = w3
        self._local = local
        self.address = to_checksum_address(address)
        self.wait_timeout = timeout
        self._deployment: records.Deployment | None = None
        self._contracts: dict[str, Contract] = {}
        if deployment is not None:
            self.use(deployment)

    @classmethod
    def connect(
        cls,
        url: str,
        account: str | bytes | LocalAccount | None,
        deployment: records.Deployment | None = None,
        timeout: float = 120.0,
    ) -> Ledger:
        """Act as `account` (an unlocked address, or a private key / LocalAccount) at `url`.

        With `account=None` the ledger is read-only: calls work, transactions raise.
        """
        # web3 asks the chain id four times per transaction; a node's chain id never
        # changes, so it is asked once per connection (the check below) and then cached
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout},
                                    cache_allowed_requests=True,
                                    cacheable_requests={"eth_chainId"}))
        if isinstance(account, bytes):
            account = Account.from_key(account)
        if isinstance(account, LocalAccount):
            w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
            address = account.address
        else:
            address = account or READ_ONLY
        try:
            _ = w3.eth.chain_id
        except Exception as exc:  # requests' and web3's connection errors differ by version
            raise LedgerError(
                f"no Ethereum JSON-RPC node answers at {url}: {exc}; "
                "start one with `enigma ledger serve` or pass --rpc URL"
            ) from exc
        return cls(
            w3, address, deployment, timeout, account if isinstance(account, LocalAccount) else None
        )

    def sign(self, digest: bytes) -> bytes:
        """personal_sign over a 32-byte digest: locally with a key, else by the node (eth_sign)."""
        if self._local is not None:
            return personal_sign(self._local.key, digest)
        return bytes(self.w3.eth.sign(self.address, digest))

    def as_account(self, account: str | bytes | LocalAccount) -> Ledger:
        """The same chain and deployment seen by another account."""
        url = str(self.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        return Ledger.connect(url, account, self._deployment, self.wait_timeout)

    # ------------------------------------------------------------------ plumbing

    @property
    def deployment(self) -> records.Deployment:
        if self._deployment is None:
            raise LedgerError("no contracts chosen: call deploy() or pass a Deployment")
        return self._deployment

    def use(self, deployment: records.Deployment) -> None:
        chain_id = self.w3.eth.chain_id
        if deployment.chain_id != chain_id:
            raise LedgerError(
                f"the deployment is for chain {deployment.chain_id} but the node serves chain "
                f"{chain_id}; deploy the contracts on this chain"
            )
        self._deployment = deployment
        for name in artifacts.CONTRACT_NAMES:
            address = getattr(deployment, name)
            abi = artifacts.load(name).abi
            self._contracts[name] = self.w3.eth.contract(address=address, abi=abi)

    def _contract(self, name: str) -> Contract:
        self.deployment  # noqa: B018 - raises the helpful error when nothing is deployed
        return self._contracts[name]

    def _send(self, where: str, build: Callable[[], Any], value: int = 0) -> TxReceipt:
        """Send one transaction and wait for it; reverts become ContractRevert subclasses.

        A call in GAS_LIMITS goes out at its known limit; any other is estimated first
        (which also surfaces a revert before anything is sent)."""
        if self.address == READ_ONLY:
            raise LedgerError(f"{where}: this ledger is read-only; connect with an account")
        tx = {"from": self.address, "value": value}
        if where in GAS_LIMITS:
            tx["gas"] = GAS_LIMITS[where]
        receipt = self._mined(where, build, tx)
        if receipt["status"] != 1 and "gas" in tx:
            self._failed(where, build, tx, receipt)  # raises the revert, if it is one
            log.warning("%s: transaction %s failed at the known gas limit %d, yet the call "
                        "passes when replayed; resending it with a gas estimate", where,
                        receipt["transactionHash"].hex(), tx["gas"])
            del tx["gas"]
            receipt = self._mined(where, build, tx)
        if receipt["status"] != 1:
            self._failed(where, build, tx, receipt)
            raise LedgerError(
                f"{where}: transaction {receipt['transactionHash'].hex()} failed on chain "
                "(status 0), most likely out of gas; the call passed gas estimation"
            )
        return receipt

    def _mined(self, where: str, build: Callable[[], Any], tx: dict[str, Any]) -> TxReceipt:
        """Send `tx` and wait for its receipt, failed or not."""
        try:
            tx_hash = build().transact(dict(tx))
        except ContractLogicError as exc:
            raise revert_from_reason(str(exc.message or exc.args[0]), where) from None
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.wait_timeout, poll_latency=0.02
            )
        except TimeExhausted as exc:
            raise LedgerError(
                f"{where}: transaction {tx_hash.hex()} not mined within {self.wait_timeout} s; "
                "is the node mining?"
            ) from exc

    def _failed(self, where: str, build: Callable[[], Any], tx: dict[str, Any],
                receipt: TxReceipt) -> None:
        """A failed (status 0) transaction's reason: the same call replayed by eth_call on
        the state of the block it failed in, without its gas limit; its revert is raised
        as the ContractRevert it names. Returns when the replay passes (out of gas)."""
        replay = {k: v for k, v in tx.items() if k != "gas"}
        try:
            build().call(replay, block_identifier=receipt["blockNumber"])
        except ContractLogicError as exc:
            raise revert_from_reason(str(exc.message or exc.args[0]), where) from None

    def _call(self, where: str, fn: Any) -> Any:
        try:
            return fn.call({} if self.address == READ_ONLY else {"from": self.address})
        except ContractLogicError as exc:
            raise revert_from_reason(str(exc.message or exc.args[0]), where) from None

    def _event(self, contract: str, event: str, receipt: TxReceipt) -> Any:
        """The args of the first `event` that `contract` logged in this transaction."""
        c = self._contract(contract)
        decoder = c.events[event]()
        topic = event_abi_to_log_topic(decoder.abi)
        for log in receipt["logs"]:
            if log["address"] == c.address and bytes(log["topics"][0]) == topic:
                return decoder.process_log(log)["args"]
        raise LedgerError(f"{contract}.{event} missing from transaction receipt")

    def transact(self, contract: str, function: str, *args: Any, value: int = 0) -> TxReceipt:
        """Send any contract function by name, for what the typed methods do not cover."""
        c = self._contract(contract)
        where = f"{contract}.{function}"
        return self._send(where, lambda: c.functions[function](*args), value=value)

    def call(self, contract: str, function: str, *args: Any) -> Any:
        """Call any view function by name."""
        c = self._contract(contract)
        return self._call(f"{contract}.{function}", c.functions[function](*args))

    # ------------------------------------------------------------------ deployment

    def deploy(self, params: records.LedgerParams | None = None) -> records.Deployment:
        """
        Deploy and wire the three contracts (5 transactions):
            1. registry(min_deposit, unbonding_period)
            2. datasets(registry, storage_price)
            3. jobs(registry, datasets, price_per_round, price_per_multiplication, job_timeout,
                    challenge_period, voting_period, accusation_bond, committee_size)
            4. registry.set_jobs(jobs)
            5. datasets.set_jobs(jobs) (the one contract that spends privacy budgets)
        """
        p = params or records.LedgerParams()
        args = {
            "registry": lambda: (p.min_deposit, p.unbonding_period),
            "datasets": lambda: (addresses["registry"], p.storage_price),
            "jobs": lambda: (
                addresses["registry"],
                addresses["datasets"],
                p.price_per_round,
                p.price_per_multiplication,
                p.job_timeout,
                p.challenge_period,
                p.voting_period,
                p.accusation_bond,
                p.committee_size,
            ),
        }
        addresses: dict[str, str] = {}
        for name in artifacts.CONTRACT_NAMES:
            art = artifacts.load(name)
            factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
            ctor_args = args[name]()
            receipt = self._send(f"deploy {name}", lambda f=factory, a=ctor_args: f.constructor(*a))
            addresses[name] = receipt["contractAddress"]
        deployment = records.Deployment(chain_id=self.w3.eth.chain_id, **addresses)
        self.use(deployment)
        reg = self._contract("registry")
        self._send("registry.set_jobs", lambda: reg.functions.set_jobs(deployment.jobs))
        ds = self._contract("datasets")
        self._send("datasets.set_jobs", lambda: ds.functions.set_jobs(deployment.jobs))
        return deployment

    def params(self) -> records.LedgerParams:
        reg, ds, jobs = (self._contract(n) for n in artifacts.CONTRACT_NAMES)
        return records.LedgerParams(
            min_deposit=reg.functions.min_deposit().call(),
            unbonding_period=reg.functions.unbonding_period().call(),
            storage_price=ds.functions.storage_price().call(),
            price_per_round=jobs.functions.price_per_round().call(),
            price_per_multiplication=jobs.functions.price_per_multiplication().call(),
            job_timeout=jobs.functions.job_timeout().call(),
            challenge_period=jobs.functions.challenge_period().call(),
            voting_period=jobs.functions.voting_period().call(),
            accusation_bond=jobs.functions.accusation_bond().call(),
            committee_size=jobs.functions.committee_size().call(),
        )

    # ------------------------------------------------------------------ node registry

    def register_node(self, endpoint: str, transport_key: bytes, deposit: int) -> None:
        """Stake `deposit` wei under this account's identity, with where and how to reach it."""
        if len(endpoint.encode()) > MAX_ENDPOINT:
            raise ValueError(f"endpoint {endpoint[:40]!r}... is longer than {MAX_ENDPOINT} bytes")
        transport_key = _b32("transport_key", transport_key)
        reg = self._contract("registry")
        self._send(
            "registry.register",
            lambda: reg.functions.register(endpoint, transport_key),
            value=deposit,
        )

    def set_endpoint(self, endpoint: str) -> None:
        """Record where this registered node is reachable now (after a restart elsewhere)."""
        if len(endpoint.encode()) > MAX_ENDPOINT:
            raise ValueError(f"endpoint {endpoint[:40]!r}... is longer than {MAX_ENDPOINT} bytes")
        reg = self._contract("registry")
        self._send("registry.set_endpoint", lambda: reg.functions.set_endpoint(endpoint))

    def top_up(self, amount: int) -> int:
        """Add to this node's deposit; returns the new deposit."""
        reg = self._contract("registry")
        receipt = self._send("registry.top_up", lambda: reg.functions.top_up(), value=amount)
        return int(self._event("registry", "DepositToppedUp", receipt)["deposit"])

    def request_withdrawal(self) -> int:
        """Leave future quorums; returns the time (chain seconds) the deposit frees up."""
        reg = self._contract("registry")
        receipt = self._send(
            "registry.request_withdrawal", lambda: reg.functions.request_withdrawal()
        )
        return int(self._event("registry", "WithdrawalRequested", receipt)["available_at"])

    def resume(self) -> None:
        """Put this node back in the draw after `report_absent` suspended it."""
        reg = self._contract("registry")
        self._send("registry.resume", lambda: reg.functions.resume())

    def withdraw(self) -> int:
        """Take the deposit back after unbonding, when in no open job; returns the amount."""
        reg = self._contract("registry")
        receipt = self._send("registry.withdraw", lambda: reg.functions.withdraw())
        return int(self._event("registry", "NodeWithdrawn", receipt)["amount"])

    def node(self, address: str | None = None) -> records.NodeInfo:
        addr = to_checksum_address(address or self.address)
        raw = self._call("registry.nodes", self._contract("registry").functions.nodes(addr))
        return records.NodeInfo(addr, raw[0], bytes(raw[1]), *raw[2:])

    def active_nodes(self) -> list[str]:
        return list(
            self._call("registry.active_nodes", self._contract("registry").functions.active_nodes())
        )

    def candidates(
        self, pool: Sequence[str] | None = None, exclude: Sequence[str] = ()
    ) -> list[tuple[str, int]]:
        """The draw's input in contract order: (node, weight) for every listed node.

        With `pool` (a dataset's holders, for a job's quorum) only its members weigh;
        nodes in `exclude` (a committee's interested parties) weigh nothing.
        """
        reg = self._contract("registry")
        listed = self._call("registry.listed_nodes", reg.functions.listed_nodes())
        inside = None if not pool else {to_checksum_address(a) for a in pool}
        outside = {to_checksum_address(a) for a in exclude}
        out: list[tuple[str, int]] = []
        for addr in listed:
            info = self.node(addr)
            eligible = info.active and (inside is None or addr in inside) and addr not in outside
            out.append((addr, info.deposit if eligible else 0))
        return out

    def pending_accusations(self, address: str | None = None) -> int:
        """How many accusations naming this node are not finalized yet."""
        addr = to_checksum_address(address or self.address)
        reg = self._contract("registry")
        return int(self._call("registry.pending_accusations",
                              reg.functions.pending_accusations(addr)))

    def draw_view(self, seed: bytes, size: int) -> list[str]:
        seed = _b32("seed", seed)
        reg = self._contract("registry")
        return list(self._call("registry.draw_view", reg.functions.draw_view(seed, size)))

    # ------------------------------------------------------------------ datasets

    def storage_fee(self, holders: int, duration: int) -> int:
        price = self._contract("datasets").functions.storage_price().call()
        return int(price) * holders * duration

    def post_dataset(
        self,
        dht_key: bytes,
        schema_hash: bytes,
        holders: Sequence[str],
        commitments: Sequence[bytes],
        policy: records.Policy,
        duration: int,
        fee: int | None = None,
    ) -> int:
        """Record a dataset and pay its holders for `duration` seconds; returns its id."""
        dht_key, schema_hash = _b32("dht_key", dht_key), _b32("schema_hash", schema_hash)
        commitments = [_b32(f"commitments[{i}]", c) for i, c in enumerate(commitments)]
        ds = self._contract("datasets")
        value = self.storage_fee(len(holders), duration) if fee is None else fee
        receipt = self._send(
            "datasets.post_dataset",
            lambda: ds.functions.post_dataset(
                dht_key, schema_hash, list(holders), list(commitments), int(policy), duration
            ),
            value=value,
        )
        return int(self._event("datasets", "DatasetPosted", receipt)["dataset_id"])

    def renew(self, dataset_id: int, duration: int, fee: int | None = None) -> int:
        """Pay for `duration` more seconds of storage; returns the new expiry."""
        ds = self._contract("datasets")
        holders = len(self.dataset(dataset_id).holders)
        value = self.storage_fee(holders, duration) if fee is None else fee
        receipt = self._send(
            "datasets.renew", lambda: ds.functions.renew(dataset_id, duration), value=value
        )
        return int(self._event("datasets", "DatasetRenewed", receipt)["expires_at"])

    def set_policy(self, dataset_id: int, policy: records.Policy) -> None:
        ds = self._contract("datasets")
        self._send("datasets.set_policy", lambda: ds.functions.set_policy(dataset_id, int(policy)))

    def allow_analyst(self, dataset_id: int, analyst: str, allowed: bool = True) -> None:
        ds = self._contract("datasets")
        self._send(
            "datasets.allow_analyst",
            lambda: ds.functions.allow_analyst(dataset_id, analyst, allowed),
        )

    def allow_script(self, dataset_id: int, script_hash: bytes, allowed: bool = True) -> None:
        ds = self._contract("datasets")
        self._send(
            "datasets.allow_script",
            lambda: ds.functions.allow_script(dataset_id, script_hash, allowed),
        )

    def dataset(self, dataset_id: int) -> records.DatasetInfo:
        raw = self._call(
            "datasets.dataset", self._contract("datasets").functions.dataset(dataset_id)
        )
        return records.DatasetInfo(
            dataset_id=dataset_id,
            owner=raw[0],
            schema_hash=bytes(raw[1]),
            dht_key=bytes(raw[2]),
            expires_at=raw[3],
            policy=records.Policy(raw[4]),
            holders=list(raw[5]),
            commitments=[bytes(c) for c in raw[6]],
        )

    def set_release(self, dataset_id: int, n_min: int, dominance_k: int = 0,
                    dominance_p: float = 0.0, epsilon_budget: float = 0.0,
                    delta_budget: float = 0.0) -> records.ReleaseRecord:
        """As the owner: set or tighten the dataset's release policy (once set, it only
        tightens: datasets.vy `set_release`); returns the record now on chain. 0 turns a
        rule off: `dominance_k` the dominance rule, `epsilon_budget` differential privacy;
        the percentage, ε and δ go on chain × 10^18 (`records.to_fixed`)."""
        ds = self._contract("datasets")
        args = (n_min, dominance_k, records.to_fixed(dominance_p, "dominance p"),
                records.to_fixed(epsilon_budget, "the ε budget"),
                records.to_fixed(delta_budget, "the δ budget"))
        self._send("datasets.set_release", lambda: ds.functions.set_release(dataset_id, *args))
        return self.release(dataset_id)

    def release(self, dataset_id: int) -> records.ReleaseRecord:
        """The dataset's release policy and budget account (`.is_set` False: none set,
        also for an id no dataset has: one read, as a member makes it for every job)."""
        raw = self._call("datasets.release_of",
                         self._contract("datasets").functions.release_of(dataset_id))
        return records.ReleaseRecord(dataset_id, *(int(v) for v in raw))

    def may_run(self, dataset_id: int, poster: str, script_hash: bytes) -> bool:
        ds = self._contract("datasets")
        return bool(
            self._call("datasets.may_run", ds.functions.may_run(dataset_id, poster, script_hash))
        )

    # ------------------------------------------------------------------ jobs

    def job_price(
        self, quorum_size: int, rounds: int, multiplications: int, reward: int = 0
    ) -> int:
        jobs = self._contract("jobs")
        fn = jobs.functions.job_price(quorum_size, rounds, multiplications, reward)
        return int(self._call("jobs.job_price", fn))

    def post_job(
        self,
        dataset_id: int,
        script_hash: bytes,
        author: str,
        author_sig: bytes,
        quorum_size: int,
        rounds: int,
        multiplications: int,
        reward: int = 0,
        fee: int | None = None,
        epsilon: float = 0.0,
        delta: float = 0.0,
        recipient: bytes = bytes(32),
    ) -> records.JobInfo:
        """Open a job with its fee in escrow (default: the least accepted); returns the record.

        On a dataset with an ε budget the job must spend `epsilon` > 0 (and may spend
        `delta`); the contract books both against the budget and reverts with
        `BudgetExceeded` when they would overrun it. `recipient` (an X25519 public key)
        is whom members seal released results to besides the owner, under a release
        policy (app/recipient.py)."""
        script_hash = _b32("script_hash", script_hash)
        jobs = self._contract("jobs")
        value = self.job_price(quorum_size, rounds, multiplications, reward) if fee is None else fee
        receipt = self._send(
            "jobs.post_job",
            lambda: jobs.functions.post_job(
                dataset_id,
                script_hash,
                author,
                author_sig,
                quorum_size,
                rounds,
                multiplications,
                reward,
                records.to_fixed(epsilon, "the job's ε"),
                records.to_fixed(delta, "the job's δ"),
                _b32("recipient", recipient),
            ),
            value=value,
        )
        return self.job(int(self._event("jobs", "JobPosted", receipt)["job_id"]))

    def start(self, job_id: int) -> None:
        """As a quorum member, before computing a job that spends ε: make its spend final
        (a job closed before any member started gives it back). Idempotent."""
        jobs = self._contract("jobs")
        self._send("jobs.start", lambda: jobs.functions.start(job_id))

    def commit_result(
        self, job_id: int, commitment: bytes, pointer: bytes, rounds: int, multiplications: int
    ) -> None:
        """As a quorum member: bind to the hash of this node's result shares, report work."""
        commitment, pointer = _b32("commitment", commitment), _b32("pointer", pointer)
        jobs = self._contract("jobs")
        self._send(
            "jobs.commit_result",
            lambda: jobs.functions.commit_result(
                job_id, commitment, pointer, rounds, multiplications
            ),
        )

    def accept(self, job_id: int) -> dict[str, int]:
        """As the owner: accept the result and pay out; returns to_nodes, reward, refund."""
        jobs = self._contract("jobs")
        receipt = self._send("jobs.accept", lambda: jobs.functions.accept(job_id))
        args = self._event("jobs", "JobAccepted", receipt)
        return {"to_nodes": args["to_nodes"], "reward": args["reward"], "refund": args["refund"]}

    def timeout(self, job_id: int) -> int:
        """Close a job past its deadline; returns the refund credited to its poster."""
        jobs = self._contract("jobs")
        receipt = self._send("jobs.timeout", lambda: jobs.functions.timeout(job_id))
        return int(self._event("jobs", "JobTimedOut", receipt)["refund"])

    def cancel(self, job_id: int) -> int:
        """As the poster or the dataset's owner: stop an open job; returns the refund."""
        jobs = self._contract("jobs")
        receipt = self._send("jobs.cancel", lambda: jobs.functions.cancel(job_id))
        return int(self._event("jobs", "JobCancelled", receipt)["refund"])

    def accusation_digest(self, job_id: int, culprit: str, evidence_hash: bytes) -> bytes:
        jobs = self._contract("jobs")
        fn = jobs.functions.accusation_digest(job_id, culprit, evidence_hash)
        return bytes(self._call("jobs.accusation_digest", fn))

    def accuse(
        self,
        job_id: int,
        culprit: str,
        evidence_hash: bytes,
        signatures: Sequence[bytes],
        bond: int | None = None,
    ) -> int:
        """Abort a job on a signed accusation of `culprit`, locking the accuser's `bond`
        (default: the contract's `accusation_bond`); returns the accusation id. Nothing is
        slashed until `finalize`, after the challenge period (and a dispute's vote)."""
        evidence_hash = _b32("evidence_hash", evidence_hash)
        jobs = self._contract("jobs")
        value = (int(self._call("jobs.accusation_bond", jobs.functions.accusation_bond()))
                 if bond is None else bond)
        receipt = self._send(
            "jobs.accuse",
            lambda: jobs.functions.accuse(
                job_id, culprit, records.PROOF_SIGNED, evidence_hash, list(signatures)
            ),
            value=value,
        )
        return int(self._event("jobs", "Accused", receipt)["accusation_id"])

    def accusation(self, accusation_id: int) -> records.AccusationInfo:
        raw = self._call(
            "jobs.accusation", self._contract("jobs").functions.accusation(accusation_id)
        )
        return records.AccusationInfo(
            accusation_id, raw[0], raw[1], raw[2], bytes(raw[3]), raw[4], bytes(raw[5]),
            raw[6], raw[7], list(raw[8]), raw[9], raw[10], raw[11],
            records.AccusationStatus(raw[12]),
        )

    def accusation_count(self) -> int:
        return int(self._call("jobs.accusation_count",
                              self._contract("jobs").functions.accusation_count()))

    def accusation_of_job(self, job_id: int) -> int | None:
        """The id of the accusation that aborted `job_id`, if one did."""
        raw = self._call("jobs.job_accusation",
                         self._contract("jobs").functions.job_accusation(job_id))
        return int(raw) - 1 if raw else None

    def ballot(self, accusation_id: int, juror: str) -> bool | None:
        """A committee member's vote: True guilty, False not guilty, None not cast."""
        raw = self._call("jobs.ballots", self._contract("jobs").functions.ballots(
            accusation_id, to_checksum_address(juror)))
        return {0: None, 1: True, 2: False}[int(raw)]

    def dispute(self, accusation_id: int) -> list[str]:
        """As the accused, before the deadline: contest; returns the committee drawn."""
        jobs = self._contract("jobs")
        receipt = self._send("jobs.dispute", lambda: jobs.functions.dispute(accusation_id))
        return list(self._event("jobs", "Disputed", receipt)["committee"])

    def vote(self, accusation_id: int, guilty: bool) -> None:
        """As a committee member, before the voting deadline: the verdict on the evidence."""
        jobs = self._contract("jobs")
        self._send("jobs.vote", lambda: jobs.functions.vote(accusation_id, guilty))

    def finalize(self, accusation_id: int) -> dict[str, Any]:
        """Settle an accusation whose periods are over; returns the `Finalized` event's
        fields (guilty, disputed, slashed, guilty_votes, innocent_votes, ...)."""
        jobs = self._contract("jobs")
        receipt = self._send("jobs.finalize", lambda: jobs.functions.finalize(accusation_id))
        return dict(self._event("jobs", "Finalized", receipt))

    def chain_time(self) -> int:
        """The latest block's timestamp: the clock the contracts' deadlines use."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def absence_digest(self, job_id: int, absent: str, evidence_hash: bytes) -> bytes:
        jobs = self._contract("jobs")
        fn = jobs.functions.absence_digest(job_id, absent, _b32("evidence_hash", evidence_hash))
        return bytes(self._call("jobs.absence_digest", fn))

    def report_absent(
        self, job_id: int, absent: str, evidence_hash: bytes, signatures: Sequence[bytes]
    ) -> int:
        """Abort a job whose member was absent and suspend it (no slash); returns the refund."""
        evidence_hash = _b32("evidence_hash", evidence_hash)
        jobs = self._contract("jobs")
        receipt = self._send(
            "jobs.report_absent",
            lambda: jobs.functions.report_absent(job_id, absent, evidence_hash, list(signatures)),
        )
        return int(self._event("jobs", "AbsenceReported", receipt)["refund"])

    def job(self, job_id: int) -> records.JobInfo:
        raw = self._call("jobs.job", self._contract("jobs").functions.job(job_id))
        return records.JobInfo(
            job_id=job_id,
            dataset_id=raw[0],
            owner=raw[1],
            poster=raw[2],
            script_hash=bytes(raw[3]),
            author=raw[4],
            escrow=raw[5],
            reward=raw[6],
            rounds=raw[7],
            multiplications=raw[8],
            quorum=list(raw[9]),
            seed=bytes(raw[10]),
            deadline=raw[11],
            status=records.JobStatus(raw[12]),
            commits=raw[13],
            epsilon=int(raw[14]),
            delta=int(raw[15]),
            started=bool(raw[16]),
            recipient=bytes(raw[17]),
        )

    def jobs_for(self, node: str | None = None, from_block: int = 0) -> list[records.JobInfo]:
        """Open jobs whose quorum includes `node`: what a node daemon polls for its work.

        One eth_getLogs over JobPosted (the quorum is in the event, not indexed), then one
        read per job whose posted quorum includes `node` for its current status: a node's
        poll costs its own jobs' reads, not one per job the chain ever saw.
        """
        addr = to_checksum_address(node or self.address)
        jobs = self._contract("jobs")
        decoder = jobs.events["JobPosted"]()
        topic = event_abi_to_log_topic(decoder.abi)
        logs = self.w3.eth.get_logs(
            {"address": jobs.address, "topics": [topic], "fromBlock": from_block}
        )
        mine = [args["job_id"] for args in (decoder.process_log(log)["args"] for log in logs)
                if addr in {to_checksum_address(a) for a in args["quorum"]}]
        out = []
        for job_id in mine:
            job = self.job(int(job_id))
            if job.status is records.JobStatus.OPEN and addr in job.quorum:
                out.append(job)
        return out

    def commit_of(self, job_id: int, node: str) -> records.CommitInfo:
        raw = self._call("jobs.commit_of", self._contract("jobs").functions.commit_of(job_id, node))
        return records.CommitInfo(bytes(raw[0]), bytes(raw[1]), raw[2], raw[3])

    # ------------------------------------------------------------------ payments

    def claimable(self, address: str | None = None) -> int:
        """Wei this account may claim: job fees, rewards, refunds, shares of slashes, storage."""
        addr = to_checksum_address(address or self.address)
        return sum(
            int(self._contract(n).functions.balances(addr).call()) for n in ("jobs", "datasets")
        )

    def claim(self) -> int:
        """Pull everything claimable to this account; returns the amount."""
        total = 0
        for name in ("jobs", "datasets"):
            c = self._contract(name)
            if c.functions.balances(self.address).call() > 0:
                receipt = self._send(f"{name}.claim", lambda c=c: c.functions.claim())
                total += int(self._event(name, "Claimed", receipt)["amount"])
        return total

    def balance(self, address: str | None = None) -> int:
        return int(self.w3.eth.get_balance(to_checksum_address(address or self.address)))

    # ------------------------------------------------------------------ audit

    def raw_logs(self, from_block: int = 0) -> list[LogReceipt]:
        """Every log the three contracts emitted, in one eth_getLogs call."""
        d = self.deployment
        return list(
            self.w3.eth.get_logs(
                {"address": [d.registry, d.datasets, d.jobs], "fromBlock": from_block}
            )
        )

    def events(self, from_block: int = 0) -> list[tuple[str, dict[str, Any]]]:
        """Every event decoded as (Name, args), in chain order."""
        decoders: dict[tuple[str, bytes], tuple[str, Any]] = {}
        for name in artifacts.CONTRACT_NAMES:
            contract = self._contract(name)
            for entry in contract.abi:
                if entry["type"] == "event":
                    key = (contract.address, event_abi_to_log_topic(entry))
                    decoders[key] = (entry["name"], contract.events[entry["name"]]())
        out: list[tuple[str, dict[str, Any]]] = []
        for log in self.raw_logs(from_block):
            name, event = decoders[(log["address"], bytes(log["topics"][0]))]
            out.append((name, dict(event.process_log(log)["args"])))
        return out
