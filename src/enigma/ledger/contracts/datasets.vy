# pragma version ~=0.4.3
"""
@title Dataset records: who owns what, who holds it, until when, and who may run on it
@notice Only pointers and hashes live here: the schema hash, the DHT key and one
        commitment per holder to its share set.  Storage is paid up front for a time
        and is renewable; once it expires the holders may delete the shares.
        A dataset may carry a release policy (minimum cell size, a dominance rule, a
        differential-privacy budget): a public promise that only ever tightens, and the
        budget's account, which only the jobs contract spends (docs/disclosure.md).
"""

interface Registry:
    def is_active(node: address) -> bool: view

MAX_HOLDERS: constant(uint256) = 32
OWNER_ONLY: constant(uint8) = 0
ALLOW_LIST: constant(uint8) = 1
OPEN: constant(uint8) = 2
FIXED: constant(uint256) = 10**18  # epsilon, delta and the dominance percentage, x 10^18


struct Dataset:
    owner: address
    schema_hash: bytes32
    dht_key: bytes32
    expires_at: uint256
    policy: uint8
    holders: DynArray[address, MAX_HOLDERS]
    commitments: DynArray[bytes32, MAX_HOLDERS]


struct Release:
    n_min: uint256  # 0: no release policy
    dominance_k: uint256  # 0: no dominance rule
    dominance_p: uint256  # percent x FIXED
    epsilon_budget: uint256  # x FIXED; 0: no differential privacy
    delta_budget: uint256  # x FIXED
    epsilon_spent: uint256
    delta_spent: uint256


event DatasetPosted:
    dataset_id: indexed(uint256)
    owner: indexed(address)
    dht_key: bytes32
    schema_hash: bytes32
    holders: DynArray[address, MAX_HOLDERS]
    commitments: DynArray[bytes32, MAX_HOLDERS]
    policy: uint8
    expires_at: uint256

event DatasetRenewed:
    dataset_id: indexed(uint256)
    expires_at: uint256

event PolicyChanged:
    dataset_id: indexed(uint256)
    policy: uint8

event AnalystAllowed:
    dataset_id: indexed(uint256)
    analyst: indexed(address)
    allowed: bool

event ScriptAllowed:
    dataset_id: indexed(uint256)
    script_hash: indexed(bytes32)
    allowed: bool

event ReleaseSet:
    dataset_id: indexed(uint256)
    n_min: uint256
    dominance_k: uint256
    dominance_p: uint256
    epsilon_budget: uint256
    delta_budget: uint256

event BudgetSpent:
    dataset_id: indexed(uint256)
    job_id: indexed(uint256)
    epsilon: uint256
    delta: uint256
    epsilon_spent: uint256
    delta_spent: uint256

event BudgetRefunded:
    dataset_id: indexed(uint256)
    job_id: indexed(uint256)
    epsilon: uint256
    delta: uint256
    epsilon_spent: uint256
    delta_spent: uint256

event JobsContractSet:
    jobs: address

event Credited:
    dataset_id: indexed(uint256)
    account: indexed(address)
    amount: uint256

event Claimed:
    account: indexed(address)
    amount: uint256


registry: public(Registry)
admin: public(address)
jobs: public(address)
storage_price: public(uint256)  # wei per holder per second of storage
dataset_count: public(uint256)
records: HashMap[uint256, Dataset]
analyst_allowed: public(HashMap[uint256, HashMap[address, bool]])
script_allowed: public(HashMap[uint256, HashMap[bytes32, bool]])
balances: public(HashMap[address, uint256])
releases: HashMap[uint256, Release]


@deploy
def __init__(registry: address, storage_price: uint256):
    self.registry = Registry(registry)
    self.storage_price = storage_price
    self.admin = msg.sender


@external
def set_jobs(jobs: address):
    """Wire the one jobs contract allowed to spend release budgets; only once."""
    assert msg.sender == self.admin, "NotAdmin: only the deployer wires the contracts"
    assert self.jobs == empty(address), "AlreadySet: the jobs contract is wired already"
    assert jobs != empty(address), "BadParameter: the jobs address is zero"
    self.jobs = jobs
    log JobsContractSet(jobs=jobs)


@internal
def _pay_holders(dataset_id: uint256, holders: DynArray[address, MAX_HOLDERS], amount: uint256):
    """Split `amount` equally; the first holder also gets the remainder, so no wei is lost."""
    share: uint256 = amount // len(holders)
    first: uint256 = amount - share * (len(holders) - 1)
    for i: uint256 in range(len(holders), bound=MAX_HOLDERS):
        pay: uint256 = share
        if i == 0:
            pay = first
        self.balances[holders[i]] += pay
        log Credited(dataset_id=dataset_id, account=holders[i], amount=pay)


@external
@payable
def post_dataset(
    dht_key: bytes32,
    schema_hash: bytes32,
    holders: DynArray[address, MAX_HOLDERS],
    commitments: DynArray[bytes32, MAX_HOLDERS],
    policy: uint8,
    duration: uint256,
) -> uint256:
    assert len(holders) > 0, "NoHolders: a dataset needs at least one holder"
    assert len(holders) == len(commitments), "BadCommitments: give one commitment per holder"
    assert policy <= OPEN, "BadPolicy: policy is 0 (owner only), 1 (allow-list) or 2 (open)"
    assert duration > 0, "BadDuration: storage must last a positive number of seconds"
    assert msg.value >= self.storage_price * duration * len(holders), "InsufficientFee: send storage_price * duration * holders wei"
    for i: uint256 in range(len(holders), bound=MAX_HOLDERS):
        assert staticcall self.registry.is_active(holders[i]), "NotActiveNode: every holder must be an active registered node"
        for j: uint256 in range(i + 1, len(holders), bound=MAX_HOLDERS):
            assert holders[j] != holders[i], "DuplicateHolder: a node appears twice among the holders"
    dataset_id: uint256 = self.dataset_count
    self.dataset_count = dataset_id + 1
    expires_at: uint256 = block.timestamp + duration
    self.records[dataset_id] = Dataset(
        owner=msg.sender,
        schema_hash=schema_hash,
        dht_key=dht_key,
        expires_at=expires_at,
        policy=policy,
        holders=holders,
        commitments=commitments,
    )
    log DatasetPosted(
        dataset_id=dataset_id,
        owner=msg.sender,
        dht_key=dht_key,
        schema_hash=schema_hash,
        holders=holders,
        commitments=commitments,
        policy=policy,
        expires_at=expires_at,
    )
    self._pay_holders(dataset_id, holders, msg.value)
    return dataset_id


@internal
@view
def _owned(dataset_id: uint256) -> Dataset:
    record: Dataset = self.records[dataset_id]
    assert record.owner != empty(address), "UnknownDataset: no dataset has this id"
    assert record.owner == msg.sender, "NotOwner: only the dataset's owner may do this"
    return record


@external
@payable
def renew(dataset_id: uint256, duration: uint256):
    """Extend storage from the later of now and the current expiry."""
    record: Dataset = self._owned(dataset_id)
    assert duration > 0, "BadDuration: storage must last a positive number of seconds"
    assert msg.value >= self.storage_price * duration * len(record.holders), "InsufficientFee: send storage_price * duration * holders wei"
    expires_at: uint256 = max(block.timestamp, record.expires_at) + duration
    self.records[dataset_id].expires_at = expires_at
    log DatasetRenewed(dataset_id=dataset_id, expires_at=expires_at)
    self._pay_holders(dataset_id, record.holders, msg.value)


@external
def set_policy(dataset_id: uint256, policy: uint8):
    self._owned(dataset_id)
    assert policy <= OPEN, "BadPolicy: policy is 0 (owner only), 1 (allow-list) or 2 (open)"
    self.records[dataset_id].policy = policy
    log PolicyChanged(dataset_id=dataset_id, policy=policy)


@external
def allow_analyst(dataset_id: uint256, analyst: address, allowed: bool):
    self._owned(dataset_id)
    self.analyst_allowed[dataset_id][analyst] = allowed
    log AnalystAllowed(dataset_id=dataset_id, analyst=analyst, allowed=allowed)


@external
def allow_script(dataset_id: uint256, script_hash: bytes32, allowed: bool):
    self._owned(dataset_id)
    self.script_allowed[dataset_id][script_hash] = allowed
    log ScriptAllowed(dataset_id=dataset_id, script_hash=script_hash, allowed=allowed)


@external
def set_release(dataset_id: uint256, n_min: uint256, dominance_k: uint256, dominance_p: uint256, epsilon_budget: uint256, delta_budget: uint256):
    """
    @notice Set or tighten the dataset's release policy (owner only).  Once set, every
        field only tightens: n_min up, dominance k up and p down, the epsilon and delta
        budgets down (never below what jobs spent) and never off.  The record is a promise
        to analysts and to the people in the data; one that could be relaxed would promise
        nothing, and spent privacy is never refunded.  Looser rules need a new dataset,
        a separate public record.
    """
    self._owned(dataset_id)
    assert n_min >= 1, "BadRelease: n_min must be at least 1"
    assert (dominance_k == 0) == (dominance_p == 0), "BadRelease: the dominance rule needs both k and p, or neither"
    assert dominance_p < 100 * FIXED, "BadRelease: dominance p is a percentage below 100"
    assert delta_budget < FIXED, "BadRelease: the delta budget must be below 1"
    assert delta_budget == 0 or epsilon_budget > 0, "BadRelease: a delta budget needs an epsilon budget"
    old: Release = self.releases[dataset_id]
    if old.n_min > 0:
        assert n_min >= old.n_min, "Loosening: n_min can only be raised"
        if old.dominance_k > 0:
            assert dominance_k >= old.dominance_k and dominance_p <= old.dominance_p and dominance_k > 0, "Loosening: the dominance rule can only tighten (k up, p down)"
        if old.epsilon_budget > 0:
            assert epsilon_budget > 0 and epsilon_budget <= old.epsilon_budget, "Loosening: the epsilon budget can never be raised or removed"
            assert delta_budget <= old.delta_budget, "Loosening: the delta budget can never be raised"
    assert epsilon_budget >= old.epsilon_spent and delta_budget >= old.delta_spent, "Loosening: a budget cannot go below what jobs spent already"
    self.releases[dataset_id] = Release(
        n_min=n_min,
        dominance_k=dominance_k,
        dominance_p=dominance_p,
        epsilon_budget=epsilon_budget,
        delta_budget=delta_budget,
        epsilon_spent=old.epsilon_spent,
        delta_spent=old.delta_spent,
    )
    log ReleaseSet(dataset_id=dataset_id, n_min=n_min, dominance_k=dominance_k, dominance_p=dominance_p, epsilon_budget=epsilon_budget, delta_budget=delta_budget)


@external
def spend_budget(dataset_id: uint256, job_id: uint256, spend_epsilon: uint256, spend_delta: uint256):
    """
    @notice The jobs contract books a posted job's epsilon and delta against the budget
        (at post_job, so two jobs can never together overrun it); a dataset without an
        epsilon budget takes jobs that spend nothing.
    """
    assert msg.sender == self.jobs, "NotJobs: only the jobs contract spends a budget"
    r: Release = self.releases[dataset_id]
    if r.epsilon_budget == 0:
        assert spend_epsilon == 0 and spend_delta == 0, "NotPrivate: the dataset has no epsilon budget; post the job without epsilon"
        return
    assert spend_epsilon > 0, "EpsilonMissing: the dataset is differentially private; say the epsilon the job spends"
    assert r.epsilon_spent + spend_epsilon <= r.epsilon_budget, "BudgetExceeded: the job asks more epsilon than the dataset has left"
    assert r.delta_spent + spend_delta <= r.delta_budget, "BudgetExceeded: the job asks more delta than the dataset has left"
    self.releases[dataset_id].epsilon_spent = r.epsilon_spent + spend_epsilon
    self.releases[dataset_id].delta_spent = r.delta_spent + spend_delta
    log BudgetSpent(dataset_id=dataset_id, job_id=job_id, epsilon=spend_epsilon, delta=spend_delta, epsilon_spent=r.epsilon_spent + spend_epsilon, delta_spent=r.delta_spent + spend_delta)


@external
def refund_budget(dataset_id: uint256, job_id: uint256, spend_epsilon: uint256, spend_delta: uint256):
    """The jobs contract gives back the spend of a job closed before any member started it."""
    assert msg.sender == self.jobs, "NotJobs: only the jobs contract refunds a budget"
    r: Release = self.releases[dataset_id]
    self.releases[dataset_id].epsilon_spent = r.epsilon_spent - spend_epsilon
    self.releases[dataset_id].delta_spent = r.delta_spent - spend_delta
    log BudgetRefunded(dataset_id=dataset_id, job_id=job_id, epsilon=spend_epsilon, delta=spend_delta, epsilon_spent=r.epsilon_spent - spend_epsilon, delta_spent=r.delta_spent - spend_delta)


@view
@external
def release_of(dataset_id: uint256) -> Release:
    """The release policy and its budget's account (n_min 0: none is set)."""
    return self.releases[dataset_id]


@view
@external
def dataset(dataset_id: uint256) -> Dataset:
    record: Dataset = self.records[dataset_id]
    assert record.owner != empty(address), "UnknownDataset: no dataset has this id"
    return record


@view
@external
def owner_of(dataset_id: uint256) -> address:
    return self.records[dataset_id].owner


@view
@external
def holders_of(dataset_id: uint256) -> DynArray[address, MAX_HOLDERS]:
    """The nodes holding the dataset's shares: the only ones a job on it can be drawn from."""
    return self.records[dataset_id].holders


@view
@external
def is_live(dataset_id: uint256) -> bool:
    return block.timestamp < self.records[dataset_id].expires_at


@view
@external
def may_run(dataset_id: uint256, poster: address, script_hash: bytes32) -> bool:
    """The access policy: the owner always; else open, or allow-listed analyst or script."""
    record: Dataset = self.records[dataset_id]
    if record.owner == empty(address):
        return False
    if poster == record.owner or record.policy == OPEN:
        return True
    if record.policy == ALLOW_LIST:
        return self.analyst_allowed[dataset_id][poster] or self.script_allowed[dataset_id][script_hash]
    return False


@external
@nonreentrant
def claim():
    amount: uint256 = self.balances[msg.sender]
    assert amount > 0, "NothingToClaim: this account has no storage fees to claim"
    self.balances[msg.sender] = 0
    log Claimed(account=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)
