# pragma version ~=0.4.3
"""
@title Jobs: escrowed fees, verifiable quorums, result commitments, payment and blame
@notice A job costs a constant number of transactions whatever its rows or rounds:
        one post, one commit per quorum member, one accept (or one timeout, or one
        accusation).  Payments are credited here and pulled with `claim`.
"""

interface Registry:
    def draw(seed: bytes32, size: uint256) -> DynArray[address, MAX_QUORUM]: nonpayable
    def release(node: address): nonpayable
    def slash(node: address) -> uint256: nonpayable
    def suspend(node: address): nonpayable

interface Datasets:
    def owner_of(dataset_id: uint256) -> address: view
    def is_live(dataset_id: uint256) -> bool: view
    def may_run(dataset_id: uint256, poster: address, script_hash: bytes32) -> bool: view

MAX_QUORUM: constant(uint256) = 16
MIN_QUORUM: constant(uint256) = 2
OPEN: constant(uint8) = 1
ACCEPTED: constant(uint8) = 2
TIMED_OUT: constant(uint8) = 3
ABORTED: constant(uint8) = 4
PROOF_SIGNED: constant(uint8) = 1  # accusation signed by the owner or the rest of the quorum


struct Job:
    dataset_id: uint256
    owner: address
    poster: address
    script_hash: bytes32
    author: address
    escrow: uint256
    reward: uint256
    rounds: uint256
    multiplications: uint256
    quorum: DynArray[address, MAX_QUORUM]
    seed: bytes32
    deadline: uint256
    status: uint8
    commits: uint256


struct Commit:
    commitment: bytes32
    pointer: bytes32
    rounds: uint256
    multiplications: uint256


event JobPosted:
    job_id: indexed(uint256)
    dataset_id: indexed(uint256)
    owner: address
    poster: address
    script_hash: bytes32
    author: address
    escrow: uint256
    reward: uint256
    rounds: uint256
    multiplications: uint256
    seed: bytes32
    quorum: DynArray[address, MAX_QUORUM]
    deadline: uint256

event ResultCommitted:
    job_id: indexed(uint256)
    node: indexed(address)
    commitment: bytes32
    pointer: bytes32
    rounds: uint256
    multiplications: uint256

event JobAccepted:
    job_id: indexed(uint256)
    to_nodes: uint256
    reward: uint256
    refund: uint256

event JobTimedOut:
    job_id: indexed(uint256)
    refund: uint256

event Accused:
    job_id: indexed(uint256)
    culprit: indexed(address)
    proof_type: uint8
    evidence_hash: bytes32
    slashed: uint256

event AbsenceReported:
    job_id: indexed(uint256)
    absent: indexed(address)
    evidence_hash: bytes32
    refund: uint256

event Credited:
    job_id: indexed(uint256)
    account: indexed(address)
    amount: uint256

event Claimed:
    account: indexed(address)
    amount: uint256


REGISTRY: public(immutable(address))
DATASETS: public(immutable(address))
price_per_round: public(uint256)
price_per_multiplication: public(uint256)
job_timeout: public(uint256)
job_count: public(uint256)
jobs: HashMap[uint256, Job]
commits: HashMap[uint256, HashMap[address, Commit]]
balances: public(HashMap[address, uint256])


@deploy
def __init__(registry: address, datasets: address, price_per_round: uint256, price_per_multiplication: uint256, job_timeout: uint256):
    assert job_timeout > 0, "BadParameter: the job timeout must be positive"
    REGISTRY = registry
    DATASETS = datasets
    self.price_per_round = price_per_round
    self.price_per_multiplication = price_per_multiplication
    self.job_timeout = job_timeout


@external
@payable
def __default__():
    """Receives slashed deposits from the registry, and nothing from anyone else."""
    assert msg.sender == REGISTRY, "NoPayments: send fees through post_job"


@pure
@internal
def _eip191(digest: bytes32) -> bytes32:
    return keccak256(concat(b"\x19Ethereum Signed Message:\n32", digest))


@pure
@internal
def _signer(digest: bytes32, sig: Bytes[65]) -> address:
    """The address whose personal_sign (EIP-191) over `digest` is `sig`, or zero."""
    if len(sig) != 65:
        return empty(address)
    r: bytes32 = extract32(sig, 0)
    s: bytes32 = extract32(sig, 32)
    v: uint256 = convert(slice(sig, 64, 1), uint256)
    return ecrecover(self._eip191(digest), v, r, s)


@view
@internal
def _work_price(rounds: uint256, multiplications: uint256) -> uint256:
    return self.price_per_round * rounds + self.price_per_multiplication * multiplications


@view
@external
def job_price(quorum_size: uint256, rounds: uint256, multiplications: uint256, reward: uint256) -> uint256:
    """The least fee post_job accepts: every member paid for the whole budget, plus the reward."""
    return quorum_size * self._work_price(rounds, multiplications) + reward


@external
@payable
def post_job(
    dataset_id: uint256,
    script_hash: bytes32,
    author: address,
    author_sig: Bytes[65],
    quorum_size: uint256,
    rounds: uint256,
    multiplications: uint256,
    reward: uint256,
) -> uint256:
    """
    @notice Open a job and draw its quorum.
        1. the dataset is live and its policy lets msg.sender run script_hash
        2. author_sig is the author's personal_sign over script_hash
        3. msg.value covers quorum_size * price(rounds, multiplications) + reward
        4. seed = keccak256(blockhash(block.number - 1) ++ uint256(job_id))
        5. the registry draws and locks the quorum from the seed, weighted by deposit
    """
    owner: address = staticcall Datasets(DATASETS).owner_of(dataset_id)
    assert owner != empty(address), "UnknownDataset: no dataset has this id"
    assert staticcall Datasets(DATASETS).is_live(dataset_id), "DatasetExpired: renew the dataset's storage first"
    assert staticcall Datasets(DATASETS).may_run(dataset_id, msg.sender, script_hash), "AccessDenied: the dataset's policy does not let this sender run this script"
    assert quorum_size >= MIN_QUORUM and quorum_size <= MAX_QUORUM, "BadQuorum: the quorum size must be between 2 and 16"
    assert author != empty(address), "BadSignature: the author address is zero"
    assert self._signer(script_hash, author_sig) == author, "BadSignature: author_sig is not the author's signature over the script hash"
    assert msg.value >= quorum_size * self._work_price(rounds, multiplications) + reward, "InsufficientFee: send at least job_price(quorum_size, rounds, multiplications, reward)"
    job_id: uint256 = self.job_count
    self.job_count = job_id + 1
    seed: bytes32 = keccak256(concat(blockhash(block.number - 1), convert(job_id, bytes32)))
    quorum: DynArray[address, MAX_QUORUM] = extcall Registry(REGISTRY).draw(seed, quorum_size)
    deadline: uint256 = block.timestamp + self.job_timeout
    self.jobs[job_id] = Job(
        dataset_id=dataset_id,
        owner=owner,
        poster=msg.sender,
        script_hash=script_hash,
        author=author,
        escrow=msg.value,
        reward=reward,
        rounds=rounds,
        multiplications=multiplications,
        quorum=quorum,
        seed=seed,
        deadline=deadline,
        status=OPEN,
        commits=0,
    )
    log JobPosted(
        job_id=job_id,
        dataset_id=dataset_id,
        owner=owner,
        poster=msg.sender,
        script_hash=script_hash,
        author=author,
        escrow=msg.value,
        reward=reward,
        rounds=rounds,
        multiplications=multiplications,
        seed=seed,
        quorum=quorum,
        deadline=deadline,
    )
    return job_id


@view
@internal
def _open(job_id: uint256) -> Job:
    job: Job = self.jobs[job_id]
    assert job.status != 0, "UnknownJob: no job has this id"
    assert job.status == OPEN, "JobClosed: the job was accepted, timed out or aborted"
    return job


@external
def commit_result(job_id: uint256, commitment: bytes32, pointer: bytes32, rounds: uint256, multiplications: uint256):
    """A quorum member binds itself to the hash of its result shares and reports its work."""
    job: Job = self._open(job_id)
    assert block.timestamp < job.deadline, "JobClosed: the job's deadline has passed"
    assert msg.sender in job.quorum, "NotInQuorum: only the job's quorum commits results"
    assert self.commits[job_id][msg.sender].commitment == empty(bytes32), "AlreadyCommitted: this node committed already"
    assert commitment != empty(bytes32), "BadCommitment: the commitment is zero"
    assert rounds <= job.rounds and multiplications <= job.multiplications, "WorkOverBudget: reported work exceeds the job's budget"
    self.commits[job_id][msg.sender] = Commit(commitment=commitment, pointer=pointer, rounds=rounds, multiplications=multiplications)
    self.jobs[job_id].commits = job.commits + 1
    log ResultCommitted(job_id=job_id, node=msg.sender, commitment=commitment, pointer=pointer, rounds=rounds, multiplications=multiplications)


@internal
def _credit(job_id: uint256, account: address, amount: uint256):
    if amount > 0:
        self.balances[account] += amount
        log Credited(job_id=job_id, account=account, amount=amount)


@internal
def _release(job: Job):
    for node: address in job.quorum:
        extcall Registry(REGISTRY).release(node)


@external
def accept(job_id: uint256):
    """
    @notice The owner has checked the result; pay out the escrow exactly.
        1. every quorum member is paid price(rounds, multiplications) it reported
        2. the author gets the reward
        3. the poster gets back the rest, so paid + reward + refund = escrow
    """
    job: Job = self._open(job_id)
    assert msg.sender == job.owner, "NotOwner: only the dataset's owner accepts a result"
    assert job.commits == len(job.quorum), "ResultsMissing: not every quorum member has committed"
    paid: uint256 = 0
    for node: address in job.quorum:
        c: Commit = self.commits[job_id][node]
        pay: uint256 = self._work_price(c.rounds, c.multiplications)
        self._credit(job_id, node, pay)
        paid += pay
    self._credit(job_id, job.author, job.reward)
    refund: uint256 = job.escrow - paid - job.reward
    self._credit(job_id, job.poster, refund)
    self.jobs[job_id].status = ACCEPTED
    self._release(job)
    log JobAccepted(job_id=job_id, to_nodes=paid, reward=job.reward, refund=refund)


@external
def timeout(job_id: uint256):
    """Anyone may close a job past its deadline; the poster gets the whole escrow back."""
    job: Job = self._open(job_id)
    assert block.timestamp >= job.deadline, "TooEarly: the job's deadline has not passed"
    self._credit(job_id, job.poster, job.escrow)
    self.jobs[job_id].status = TIMED_OUT
    self._release(job)
    log JobTimedOut(job_id=job_id, refund=job.escrow)


@view
@external
def accusation_digest(job_id: uint256, culprit: address, evidence_hash: bytes32) -> bytes32:
    """What accusers sign (with personal_sign): bound to this contract, job and culprit."""
    return keccak256(abi_encode(self, job_id, culprit, evidence_hash))


@view
@internal
def _signed_by_owner_or_others(job: Job, accused: address, digest: bytes32, signatures: DynArray[Bytes[65], MAX_QUORUM]) -> bool:
    """Is `digest` signed by the job's owner, or by every quorum member other than `accused`?"""
    signers: DynArray[address, MAX_QUORUM] = []
    for sig: Bytes[65] in signatures:
        signers.append(self._signer(digest, sig))
    by_others: bool = True
    for node: address in job.quorum:
        if node != accused and node not in signers:
            by_others = False
    return job.owner in signers or by_others


@external
def accuse(job_id: uint256, culprit: address, proof_type: uint8, evidence_hash: bytes32, signatures: DynArray[Bytes[65], MAX_QUORUM]):
    """
    @notice Abort a job on proof of misbehaviour and slash the culprit.
        1. the proof (type 1): personal_sign over accusation_digest by the job's owner,
           or by every quorum member other than the culprit; evidence_hash is the keccak256
           of the public deviation evidence (enigma.mpc.blame), which anyone can fetch and
           check off chain (the EVM can neither replay the MPC nor check Ed25519)
        2. the registry takes the culprit's whole deposit here and excludes it for good
        3. the deposit is shared equally among the other members, the remainder
           to the first of them, so no wei is created or lost
        4. the poster gets the escrow back, since an aborted job yields no result
    """
    job: Job = self._open(job_id)
    assert proof_type == PROOF_SIGNED, "BadProof: unknown proof type; type 1 is a signed accusation"
    assert culprit in job.quorum, "NotInQuorum: the accused node is not in this job's quorum"
    digest: bytes32 = keccak256(abi_encode(self, job_id, culprit, evidence_hash))
    assert self._signed_by_owner_or_others(job, culprit, digest, signatures), "BadProof: the accusation must be signed by the owner or by every other quorum member"
    self.jobs[job_id].status = ABORTED
    slashed: uint256 = extcall Registry(REGISTRY).slash(culprit)
    honest: DynArray[address, MAX_QUORUM] = []
    for node: address in job.quorum:
        if node != culprit:
            honest.append(node)
    # quorums have at least two distinct members, so `honest` is never empty
    share: uint256 = slashed // len(honest)
    self._credit(job_id, honest[0], slashed - share * (len(honest) - 1))
    for i: uint256 in range(1, len(honest), bound=MAX_QUORUM):
        self._credit(job_id, honest[i], share)
    self._credit(job_id, job.poster, job.escrow)
    self._release(job)
    log Accused(job_id=job_id, culprit=culprit, proof_type=proof_type, evidence_hash=evidence_hash, slashed=slashed)


@view
@external
def absence_digest(job_id: uint256, absent: address, evidence_hash: bytes32) -> bytes32:
    """What reporters of an absence sign: distinct from an accusation's digest."""
    return keccak256(abi_encode(self, job_id, absent, evidence_hash, b"absent"))


@external
def report_absent(job_id: uint256, absent: address, evidence_hash: bytes32, signatures: DynArray[Bytes[65], MAX_QUORUM]):
    """
    @notice Abort a job whose member dropped out or stalled; suspend it, slash nothing.
        1. signed (personal_sign over absence_digest) by the owner or by every other member;
           evidence_hash is the keccak256 of the signed abort records naming it
        2. absence is attested, never proved (colluders can sign false records), so no
           deposit moves: the registry suspends the node (out of every draw until its
           operator calls resume), which keeps it out of the job's re-drawn quorum
        3. the poster gets the escrow back; the owner re-posts the job to re-draw
    """
    job: Job = self._open(job_id)
    assert absent in job.quorum, "NotInQuorum: the absent node is not in this job's quorum"
    digest: bytes32 = keccak256(abi_encode(self, job_id, absent, evidence_hash, b"absent"))
    assert self._signed_by_owner_or_others(job, absent, digest, signatures), "BadProof: the report must be signed by the owner or by every other quorum member"
    self.jobs[job_id].status = ABORTED
    extcall Registry(REGISTRY).suspend(absent)
    self._credit(job_id, job.poster, job.escrow)
    self._release(job)
    log AbsenceReported(job_id=job_id, absent=absent, evidence_hash=evidence_hash, refund=job.escrow)


@view
@external
def job(job_id: uint256) -> Job:
    job: Job = self.jobs[job_id]
    assert job.status != 0, "UnknownJob: no job has this id"
    return job


@view
@external
def commit_of(job_id: uint256, node: address) -> Commit:
    return self.commits[job_id][node]


@external
@nonreentrant
def claim():
    amount: uint256 = self.balances[msg.sender]
    assert amount > 0, "NothingToClaim: this account has no fees, rewards or refunds to claim"
    self.balances[msg.sender] = 0
    log Claimed(account=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)
