# pragma version ~=0.4.3
"""
@title Dataset records: who owns what, who holds it, until when, and who may run on it
@notice Only pointers and hashes live here: the schema hash, the DHT key and one
        commitment per holder to its share set.  Storage is paid up front for a time
        and is renewable; once it expires the holders may delete the shares.
"""

interface Registry:
    def is_active(node: address) -> bool: view

MAX_HOLDERS: constant(uint256) = 32
OWNER_ONLY: constant(uint8) = 0
ALLOW_LIST: constant(uint8) = 1
OPEN: constant(uint8) = 2


struct Dataset:
    owner: address
    schema_hash: bytes32
    dht_key: bytes32
    expires_at: uint256
    policy: uint8
    holders: DynArray[address, MAX_HOLDERS]
    commitments: DynArray[bytes32, MAX_HOLDERS]


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

event Credited:
    dataset_id: indexed(uint256)
    account: indexed(address)
    amount: uint256

event Claimed:
    account: indexed(address)
    amount: uint256


registry: public(Registry)
storage_price: public(uint256)  # wei per holder per second of storage
dataset_count: public(uint256)
records: HashMap[uint256, Dataset]
analyst_allowed: public(HashMap[uint256, HashMap[address, bool]])
script_allowed: public(HashMap[uint256, HashMap[bytes32, bool]])
balances: public(HashMap[address, uint256])


@deploy
def __init__(registry: address, storage_price: uint256):
    self.registry = Registry(registry)
    self.storage_price = storage_price


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
