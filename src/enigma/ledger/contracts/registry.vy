# pragma version ~=0.4.3
"""
@title Node registry: identities, endpoints, transport keys and deposits
@notice A node stakes a deposit so that misbehaviour has a price.  The jobs contract
        draws quorums from here, locks members while their job is open and slashes a
        blamed node; slashed nodes never return to a quorum.
"""

MAX_NODES: constant(uint256) = 128
MAX_QUORUM: constant(uint256) = 16
MAX_POOL: constant(uint256) = 32  # a dataset's holders; a committee's excluded nodes


struct Node:
    endpoint: String[128]
    transport_key: bytes32
    deposit: uint256
    registered: bool
    active: bool
    slashed: bool
    open_jobs: uint256
    unbond_at: uint256


event NodeRegistered:
    node: indexed(address)
    endpoint: String[128]
    transport_key: bytes32
    deposit: uint256

event EndpointChanged:
    node: indexed(address)
    endpoint: String[128]

event DepositToppedUp:
    node: indexed(address)
    amount: uint256
    deposit: uint256

event WithdrawalRequested:
    node: indexed(address)
    available_at: uint256

event NodeWithdrawn:
    node: indexed(address)
    amount: uint256

event NodeSlashed:
    node: indexed(address)
    amount: uint256

event NodeSuspended:
    node: indexed(address)

event NodeResumed:
    node: indexed(address)

event OpenJobsChanged:
    node: indexed(address)
    open_jobs: uint256

event JobsContractSet:
    jobs: address


admin: public(address)
jobs: public(address)
min_deposit: public(uint256)
unbonding_period: public(uint256)
nodes: public(HashMap[address, Node])
pending_accusations: public(HashMap[address, uint256])  # open accusations naming the node
node_list: DynArray[address, MAX_NODES]
position: HashMap[address, uint256]  # index in node_list plus one; 0 means absent


@deploy
def __init__(min_deposit: uint256, unbonding_period: uint256):
    assert min_deposit > 0, "BadParameter: the minimum deposit must be positive"
    self.admin = msg.sender
    self.min_deposit = min_deposit
    self.unbonding_period = unbonding_period


@external
def set_jobs(jobs: address):
    """Wire the one jobs contract allowed to draw, lock and slash; only once."""
    assert msg.sender == self.admin, "NotAdmin: only the deployer wires the contracts"
    assert self.jobs == empty(address), "AlreadySet: the jobs contract is wired already"
    assert jobs != empty(address), "BadParameter: the jobs address is zero"
    self.jobs = jobs
    log JobsContractSet(jobs=jobs)


@external
@payable
def register(endpoint: String[128], transport_key: bytes32):
    assert not self.nodes[msg.sender].registered, "AlreadyRegistered: this identity has a record; top up instead"
    assert msg.value >= self.min_deposit, "InsufficientDeposit: send at least min_deposit wei"
    assert len(self.node_list) < MAX_NODES, "RegistryFull: no room for another node"
    self.nodes[msg.sender] = Node(
        endpoint=endpoint,
        transport_key=transport_key,
        deposit=msg.value,
        registered=True,
        active=True,
        slashed=False,
        open_jobs=0,
        unbond_at=0,
    )
    self.node_list.append(msg.sender)
    self.position[msg.sender] = len(self.node_list)
    log NodeRegistered(node=msg.sender, endpoint=endpoint, transport_key=transport_key, deposit=msg.value)


@external
def set_endpoint(endpoint: String[128]):
    """A registered node restarted elsewhere (other ports, other host) says where it is now:
    whoever reaches it reads this, so a stale endpoint would make it unreachable."""
    assert self.nodes[msg.sender].registered, "NotRegistered: register this identity first"
    self.nodes[msg.sender].endpoint = endpoint
    log EndpointChanged(node=msg.sender, endpoint=endpoint)


@external
@payable
def top_up():
    assert self.nodes[msg.sender].registered, "NotRegistered: register this identity first"
    assert not self.nodes[msg.sender].slashed, "Slashed: a slashed node cannot stake again"
    assert self.nodes[msg.sender].unbond_at == 0, "Unbonding: the node asked to withdraw"
    assert msg.value > 0, "InsufficientDeposit: send a positive amount"
    self.nodes[msg.sender].deposit += msg.value
    log DepositToppedUp(node=msg.sender, amount=msg.value, deposit=self.nodes[msg.sender].deposit)


@external
def request_withdrawal():
    """Leave future quorums now; the deposit is free after the unbonding period."""
    assert self.nodes[msg.sender].registered, "NotRegistered: register this identity first"
    assert not self.nodes[msg.sender].slashed, "Slashed: the deposit was slashed"
    assert self.nodes[msg.sender].unbond_at == 0, "Unbonding: withdrawal already requested"
    available_at: uint256 = block.timestamp + self.unbonding_period
    self.nodes[msg.sender].active = False
    self.nodes[msg.sender].unbond_at = available_at
    log WithdrawalRequested(node=msg.sender, available_at=available_at)


@external
@nonreentrant
def withdraw():
    node: Node = self.nodes[msg.sender]
    assert node.registered, "NotRegistered: register this identity first"
    assert not node.slashed, "Slashed: the deposit was slashed; nothing to withdraw"
    assert node.unbond_at != 0, "NotUnbonding: call request_withdrawal first"
    assert block.timestamp >= node.unbond_at, "Unbonding: the unbonding period has not passed"
    assert node.open_jobs == 0, "InJob: the node is in an open job; wait for it to close"
    assert self.pending_accusations[msg.sender] == 0, "UnderAccusation: an accusation against the node is not finalized yet"
    amount: uint256 = node.deposit
    self._remove(msg.sender)
    self.nodes[msg.sender] = empty(Node)
    log NodeWithdrawn(node=msg.sender, amount=amount)
    if amount > 0:
        raw_call(msg.sender, b"", value=amount)


@internal
def _remove(node: address):
    pos: uint256 = self.position[node]
    if pos == 0:
        return
    last: address = self.node_list.pop()
    if last != node:
        self.node_list[pos - 1] = last
        self.position[last] = pos
    self.position[node] = 0


@view
@external
def active_nodes() -> DynArray[address, MAX_NODES]:
    out: DynArray[address, MAX_NODES] = []
    for node: address in self.node_list:
        if self.nodes[node].active:
            out.append(node)
    return out


@view
@external
def listed_nodes() -> DynArray[address, MAX_NODES]:
    """Registered nodes not withdrawn nor slashed, in the order the draw walks them."""
    return self.node_list


@view
@external
def is_active(node: address) -> bool:
    return self.nodes[node].active


@view
@internal
def _draw(seed: bytes32, size: uint256, pool: DynArray[address, MAX_POOL], exclude: DynArray[address, MAX_POOL], strict: bool) -> DynArray[address, MAX_QUORUM]:
    """
    @notice Weighted sampling without replacement, reproducible off chain.
        1. weight of each listed node = its deposit if active (registered, not
           unbonding, not slashed, not suspended) and, when `pool` is not empty, in
           `pool`; 0 if in `exclude`; total = sum of weights
        2. for k = 0 .. size-1: r = uint256(keccak256(seed ++ uint256(k))) mod total
        3. pick the first node (in listing order) whose running weight sum exceeds r
        4. zero its weight and subtract it from total, so no node is picked twice
        With `strict`, fewer than `size` eligible nodes revert; without, the draw
        returns the eligible nodes it could pick (a committee may be smaller than asked).
        With an empty pool and nothing excluded this is the draw of every active node.
    """
    count: uint256 = len(self.node_list)
    weights: DynArray[uint256, MAX_NODES] = []
    if len(pool) == 0:
        for node: address in self.node_list:
            w: uint256 = 0
            if self.nodes[node].active:
                w = self.nodes[node].deposit
            weights.append(w)
    else:
        for i: uint256 in range(count, bound=MAX_NODES):
            weights.append(0)
        for node: address in pool:
            pos: uint256 = self.position[node]
            if pos != 0 and self.nodes[node].active:
                weights[pos - 1] = self.nodes[node].deposit
    for node: address in exclude:
        pos: uint256 = self.position[node]
        if pos != 0:
            weights[pos - 1] = 0
    total: uint256 = 0
    for w: uint256 in weights:
        total += w
    chosen: DynArray[address, MAX_QUORUM] = []
    for k: uint256 in range(size, bound=MAX_QUORUM):
        if total == 0:
            assert not strict, "NotEnoughNodes: fewer active staked nodes than the quorum size"
            break
        r: uint256 = convert(keccak256(concat(seed, convert(k, bytes32))), uint256) % total
        acc: uint256 = 0
        for i: uint256 in range(count, bound=MAX_NODES):
            acc += weights[i]
            if r < acc:
                chosen.append(self.node_list[i])
                total -= weights[i]
                weights[i] = 0
                break
    return chosen


@view
@external
def draw_view(seed: bytes32, size: uint256) -> DynArray[address, MAX_QUORUM]:
    """The quorum `draw` would pick among all active nodes for this seed now."""
    return self._draw(seed, size, [], [], True)


@view
@external
def draw_among(seed: bytes32, size: uint256, pool: DynArray[address, MAX_POOL], exclude: DynArray[address, MAX_POOL]) -> DynArray[address, MAX_QUORUM]:
    """
    @notice Up to `size` active nodes drawn from `pool` (every active node if empty)
        without those in `exclude`; anyone can check a job's quorum (pool = its dataset's
        holders) or an accusation's committee (exclude = the job's quorum, owner, accuser).
    """
    return self._draw(seed, size, pool, exclude, False)


@external
def draw(seed: bytes32, size: uint256, pool: DynArray[address, MAX_POOL]) -> DynArray[address, MAX_QUORUM]:
    """Draw and lock a job's quorum among `pool` (its dataset's holders: only they can compute)."""
    assert msg.sender == self.jobs, "NotJobs: only the jobs contract draws quorums"
    chosen: DynArray[address, MAX_QUORUM] = self._draw(seed, size, pool, [], True)
    for node: address in chosen:
        self.nodes[node].open_jobs += 1
        log OpenJobsChanged(node=node, open_jobs=self.nodes[node].open_jobs)
    return chosen


@external
def release(node: address):
    assert msg.sender == self.jobs, "NotJobs: only the jobs contract releases nodes"
    self.nodes[node].open_jobs -= 1
    log OpenJobsChanged(node=node, open_jobs=self.nodes[node].open_jobs)


@external
@nonreentrant
def slash(node: address) -> uint256:
    """Take the whole deposit to the jobs contract, which shares it; exclude the node."""
    assert msg.sender == self.jobs, "NotJobs: only the jobs contract slashes"
    amount: uint256 = self.nodes[node].deposit
    self.nodes[node].deposit = 0
    self.nodes[node].slashed = True
    self.nodes[node].active = False
    self._remove(node)
    log NodeSlashed(node=node, amount=amount)
    if amount > 0:
        raw_call(msg.sender, b"", value=amount)
    return amount


@external
def suspend(node: address):
    """
    @notice Take a node named absent out of future draws, deposit untouched.
        Absence (a drop-out, a stall) is attested by the others' signed abort records, not
        proved, and colluders can attest falsely, so it costs no wei: the node only stops
        being drawn until its operator calls `resume`.
    """
    assert msg.sender == self.jobs, "NotJobs: only the jobs contract suspends nodes"
    if self.nodes[node].active:
        self.nodes[node].active = False
        log NodeSuspended(node=node)


@external
def hold(node: address):
    """
    @notice An accusation against `node` is pending: out of every draw, and no withdrawal,
        until the jobs contract finalizes it (the deposit may still be slashed).
    """
    assert msg.sender == self.jobs, "NotJobs: only the jobs contract holds accused nodes"
    self.pending_accusations[node] += 1
    if self.nodes[node].active:
        self.nodes[node].active = False
        log NodeSuspended(node=node)


@external
def unhold(node: address, reinstate: bool):
    """
    @notice An accusation against `node` is finalized.  Acquitted (`reinstate`): it goes
        back into the draw once no other accusation is pending, unless it was slashed
        or asked to withdraw meanwhile.
    """
    assert msg.sender == self.jobs, "NotJobs: only the jobs contract releases accused nodes"
    self.pending_accusations[node] -= 1
    n: Node = self.nodes[node]
    if reinstate and self.pending_accusations[node] == 0 and n.registered and not n.slashed and n.unbond_at == 0 and not n.active:
        self.nodes[node].active = True
        log NodeResumed(node=node)


@external
def resume():
    """A suspended node's operator puts it back in the draw (it is up again)."""
    node: Node = self.nodes[msg.sender]
    assert node.registered, "NotRegistered: register this identity first"
    assert not node.slashed, "Slashed: a slashed node cannot stake again"
    assert node.unbond_at == 0, "Unbonding: the node asked to withdraw"
    assert not node.active, "NotSuspended: the node is active"
    assert self.pending_accusations[msg.sender] == 0, "UnderAccusation: the node stays out of draws until its accusation is finalized"
    self.nodes[msg.sender].active = True
    log NodeResumed(node=msg.sender)
