# pragma version ~=0.4.3
"""
@title Jobs: escrowed fees, verifiable quorums, result commitments, payment and blame
@notice A job costs a constant number of transactions whatever its rows or rounds:
        one post, one commit per quorum member, one accept (or one timeout, or one
        accusation).  Payments are credited here and pulled with `claim`.
        An accusation slashes only after a challenge period in which the accused may
        dispute it before a committee of uninvolved nodes (docs/blame.md).
"""

interface Registry:
    def draw(seed: bytes32, size: uint256, pool: DynArray[address, MAX_POOL]) -> DynArray[address, MAX_QUORUM]: nonpayable
    def draw_among(seed: bytes32, size: uint256, pool: DynArray[address, MAX_POOL], exclude: DynArray[address, MAX_POOL]) -> DynArray[address, MAX_QUORUM]: view
    def release(node: address): nonpayable
    def slash(node: address) -> uint256: nonpayable
    def suspend(node: address): nonpayable
    def hold(node: address): nonpayable
    def unhold(node: address, reinstate: bool): nonpayable

interface Datasets:
    def holders_of(dataset_id: uint256) -> DynArray[address, MAX_POOL]: view
    def owner_of(dataset_id: uint256) -> address: view
    def is_live(dataset_id: uint256) -> bool: view
    def may_run(dataset_id: uint256, poster: address, script_hash: bytes32) -> bool: view
    def spend_budget(dataset_id: uint256, job_id: uint256, spend_epsilon: uint256, spend_delta: uint256): nonpayable
    def refund_budget(dataset_id: uint256, job_id: uint256, spend_epsilon: uint256, spend_delta: uint256): nonpayable

MAX_QUORUM: constant(uint256) = 16
MIN_QUORUM: constant(uint256) = 2
OPEN: constant(uint8) = 1
ACCEPTED: constant(uint8) = 2
TIMED_OUT: constant(uint8) = 3
ABORTED: constant(uint8) = 4
CANCELLED: constant(uint8) = 5
PROOF_SIGNED: constant(uint8) = 1  # accusation signed by the owner or the rest of the quorum
MAX_POOL: constant(uint256) = 32  # a dataset's holders; the nodes a committee excludes
PENDING: constant(uint8) = 1
GUILTY: constant(uint8) = 2
ACQUITTED: constant(uint8) = 3
GUILTY_VOTE: constant(uint8) = 1
INNOCENT_VOTE: constant(uint8) = 2
JUROR_PERCENT: constant(uint256) = 10  # of the loser's money, to the jurors who voted with the outcome


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
    epsilon: uint256  # x 10^18: the privacy this job spends of the dataset's budget
    delta: uint256
    started: bool  # a member began computing: the spend is final
    recipient: bytes32  # X25519 key members seal released results to, besides the owner (0: none)


struct Accusation:
    job_id: uint256
    culprit: address
    accuser: address
    evidence_hash: bytes32
    bond: uint256
    seed: bytes32
    deadline: uint256
    disputed: bool
    committee: DynArray[address, MAX_QUORUM]
    voting_deadline: uint256
    guilty_votes: uint256
    innocent_votes: uint256
    status: uint8


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
    epsilon: uint256
    delta: uint256

event JobStarted:
    job_id: indexed(uint256)
    node: indexed(address)

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

event JobCancelled:
    job_id: indexed(uint256)
    by: indexed(address)
    refund: uint256

event Accused:
    job_id: indexed(uint256)
    culprit: indexed(address)
    proof_type: uint8
    evidence_hash: bytes32
    accusation_id: uint256
    accuser: address
    bond: uint256
    deadline: uint256

event Disputed:
    accusation_id: indexed(uint256)
    culprit: indexed(address)
    committee: DynArray[address, MAX_QUORUM]
    voting_deadline: uint256

event Voted:
    accusation_id: indexed(uint256)
    juror: indexed(address)
    guilty: bool

event Finalized:
    accusation_id: indexed(uint256)
    job_id: indexed(uint256)
    culprit: address
    guilty: bool
    disputed: bool
    slashed: uint256
    guilty_votes: uint256
    innocent_votes: uint256

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
challenge_period: public(uint256)
voting_period: public(uint256)
accusation_bond: public(uint256)
committee_size: public(uint256)
job_count: public(uint256)
accusation_count: public(uint256)
jobs: HashMap[uint256, Job]
commits: HashMap[uint256, HashMap[address, Commit]]
accusations: HashMap[uint256, Accusation]
job_accusation: public(HashMap[uint256, uint256])  # job id -> accusation id + 1 (0: none)
ballots: public(HashMap[uint256, HashMap[address, uint8]])
balances: public(HashMap[address, uint256])


@deploy
def __init__(registry: address, datasets: address, price_per_round: uint256, price_per_multiplication: uint256, job_timeout: uint256, challenge_period: uint256, voting_period: uint256, accusation_bond: uint256, committee_size: uint256):
    assert job_timeout > 0, "BadParameter: the job timeout must be positive"
    assert challenge_period > 0 and voting_period > 0, "BadParameter: the challenge and voting periods must be positive"
    assert committee_size > 0 and committee_size <= MAX_QUORUM, "BadParameter: the committee size must be between 1 and 16"
    REGISTRY = registry
    DATASETS = datasets
    self.price_per_round = price_per_round
    self.price_per_multiplication = price_per_multiplication
    self.job_timeout = job_timeout
    self.challenge_period = challenge_period
    self.voting_period = voting_period
    self.accusation_bond = accusation_bond
    self.committee_size = committee_size


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
    spend_epsilon: uint256,
    spend_delta: uint256,
    recipient: bytes32,
) -> uint256:
    """
    @notice Open a job and draw its quorum.
        1. the dataset is live and its policy lets msg.sender run script_hash
        2. author_sig is the author's personal_sign over script_hash
        3. msg.value covers quorum_size * price(rounds, multiplications) + reward
        4. seed = keccak256(blockhash(block.number - 1) ++ uint256(job_id))
        5. the registry draws and locks the quorum from the seed, weighted by deposit,
           among the dataset's active holders (only they hold shares to compute on)
        6. epsilon and delta (x 10^18) are booked against the dataset's privacy budget,
           which reverts if they would overrun it; given back only if the job closes
           before any member `start`s it
        7. recipient: the poster's key for released results under the dataset's release
           policy (members seal to it as well as to the owner; ignored without a policy)
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
    extcall Datasets(DATASETS).spend_budget(dataset_id, job_id, spend_epsilon, spend_delta)
    seed: bytes32 = keccak256(concat(blockhash(block.number - 1), convert(job_id, bytes32)))
    holders: DynArray[address, MAX_POOL] = staticcall Datasets(DATASETS).holders_of(dataset_id)
    quorum: DynArray[address, MAX_QUORUM] = extcall Registry(REGISTRY).draw(seed, quorum_size, holders)
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
        epsilon=spend_epsilon,
        delta=spend_delta,
        started=False,
        recipient=recipient,
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
        epsilon=spend_epsilon,
        delta=spend_delta,
    )
    return job_id


@view
@internal
def _open(job_id: uint256) -> Job:
    job: Job = self.jobs[job_id]
    assert job.status != 0, "UnknownJob: no job has this id"
    assert job.status == OPEN, "JobClosed: the job was accepted, timed out, aborted or cancelled"
    return job


@external
def start(job_id: uint256):
    """
    @notice A quorum member says it begins computing; from then on the job's privacy spend
        is final (nothing is given back after a member may have computed).  Members of a
        job that spends epsilon call it before their first step; idempotent.
    """
    job: Job = self._open(job_id)
    assert msg.sender in job.quorum, "NotInQuorum: only the job's quorum starts it"
    if not job.started:
        self.jobs[job_id].started = True
        log JobStarted(job_id=job_id, node=msg.sender)


@internal
def _refund_unstarted(job_id: uint256, job: Job):
    """A job closed before any member started gives its privacy spend back."""
    if not job.started and (job.epsilon > 0 or job.delta > 0):
        extcall Datasets(DATASETS).refund_budget(job.dataset_id, job_id, job.epsilon, job.delta)


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
    self.jobs[job_id].started = True
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
    self._refund_unstarted(job_id, job)
    log JobTimedOut(job_id=job_id, refund=job.escrow)


@external
def cancel(job_id: uint256):
    """
    @notice The poster or the dataset's owner stops an open job; the poster gets the whole
        escrow back and nobody is suspended.  For a script that ran over its budget, a job
        its runner gave up on (Ctrl-C, `enigma job cancel`) and a failure that names no
        member.  Nodes lose nothing they were owed: an open job pays nobody until `accept`,
        and `timeout` would refund the same escrow at the deadline.
    """
    job: Job = self._open(job_id)
    assert msg.sender == job.poster or msg.sender == job.owner, "NotPoster: only the job's poster or the dataset's owner cancels it"
    self._credit(job_id, job.poster, job.escrow)
    self.jobs[job_id].status = CANCELLED
    self._release(job)
    self._refund_unstarted(job_id, job)
    log JobCancelled(job_id=job_id, by=msg.sender, refund=job.escrow)


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


@internal
def _share(job_id: uint256, amount: uint256, among: DynArray[address, MAX_QUORUM]):
    """Credit `amount` equally among `among`, the remainder to the first: no wei lost."""
    if len(among) == 0 or amount == 0:
        return
    share: uint256 = amount // len(among)
    self._credit(job_id, among[0], amount - share * (len(among) - 1))
    for i: uint256 in range(1, len(among), bound=MAX_QUORUM):
        self._credit(job_id, among[i], share)


@external
@payable
def accuse(job_id: uint256, culprit: address, proof_type: uint8, evidence_hash: bytes32, signatures: DynArray[Bytes[65], MAX_QUORUM]) -> uint256:
    """
    @notice Abort a job on a signed accusation and open its challenge period; slash nothing yet.
        1. the proof (type 1): personal_sign over accusation_digest by the job's owner,
           or by every quorum member other than the culprit; evidence_hash is the keccak256
           of the public deviation evidence (enigma.mpc.blame), which anyone can fetch and
           check off chain (the EVM can neither replay the MPC nor check Ed25519)
        2. msg.value is the accuser's bond (at least accusation_bond): it pays the accused
           if the accusation fails, so a false one costs its maker
        3. the job is aborted now: the poster gets the escrow back and re-posts at once;
           the registry holds the culprit (out of every draw, no withdrawal) until `finalize`
        4. the culprit may `dispute` until the deadline (now + challenge_period)
    """
    job: Job = self._open(job_id)
    assert proof_type == PROOF_SIGNED, "BadProof: unknown proof type; type 1 is a signed accusation"
    assert culprit in job.quorum, "NotInQuorum: the accused node is not in this job's quorum"
    assert msg.value >= self.accusation_bond, "InsufficientBond: send at least accusation_bond wei with an accusation"
    digest: bytes32 = keccak256(abi_encode(self, job_id, culprit, evidence_hash))
    assert self._signed_by_owner_or_others(job, culprit, digest, signatures), "BadProof: the accusation must be signed by the owner or by every other quorum member"
    self.jobs[job_id].status = ABORTED
    accusation_id: uint256 = self.accusation_count
    self.accusation_count = accusation_id + 1
    deadline: uint256 = block.timestamp + self.challenge_period
    self.accusations[accusation_id] = Accusation(
        job_id=job_id,
        culprit=culprit,
        accuser=msg.sender,
        evidence_hash=evidence_hash,
        bond=msg.value,
        seed=keccak256(concat(blockhash(block.number - 1), convert(accusation_id, bytes32))),
        deadline=deadline,
        disputed=False,
        committee=[],
        voting_deadline=0,
        guilty_votes=0,
        innocent_votes=0,
        status=PENDING,
    )
    self.job_accusation[job_id] = accusation_id + 1
    extcall Registry(REGISTRY).hold(culprit)
    self._credit(job_id, job.poster, job.escrow)
    self._release(job)
    self._refund_unstarted(job_id, job)
    log Accused(job_id=job_id, culprit=culprit, proof_type=proof_type, evidence_hash=evidence_hash, accusation_id=accusation_id, accuser=msg.sender, bond=msg.value, deadline=deadline)
    return accusation_id


@view
@internal
def _pending(accusation_id: uint256) -> Accusation:
    a: Accusation = self.accusations[accusation_id]
    assert a.status != 0, "UnknownAccusation: no accusation has this id"
    assert a.status == PENDING, "Settled: the accusation was finalized already"
    return a


@external
def dispute(accusation_id: uint256) -> DynArray[address, MAX_QUORUM]:
    """
    @notice The accused contests the accusation before its deadline; a committee judges.
        1. only the accused, once, before the deadline; its whole deposit is the stake
           (already held), so no further bond is asked
        2. committee: up to committee_size active nodes drawn by the registry, weighted by
           deposit, none of them in the job's quorum, its owner or the accuser (who gain
           from a slash), from seed keccak256(accusation seed ++ blockhash(now - 1)): fixed
           partly before the accused could act and partly after the accuser did
        3. members `vote` until now + voting_period
    """
    a: Accusation = self._pending(accusation_id)
    assert msg.sender == a.culprit, "NotAccused: only the accused node disputes an accusation"
    assert not a.disputed, "AlreadyDisputed: the accusation is disputed already"
    assert block.timestamp < a.deadline, "TooLate: the challenge period is over"
    job: Job = self.jobs[a.job_id]
    exclude: DynArray[address, MAX_POOL] = [job.owner, a.accuser]
    for node: address in job.quorum:
        exclude.append(node)
    seed: bytes32 = keccak256(concat(a.seed, blockhash(block.number - 1)))
    committee: DynArray[address, MAX_QUORUM] = staticcall Registry(REGISTRY).draw_among(seed, self.committee_size, [], exclude)
    voting_deadline: uint256 = block.timestamp + self.voting_period
    self.accusations[accusation_id].disputed = True
    self.accusations[accusation_id].committee = committee
    self.accusations[accusation_id].voting_deadline = voting_deadline
    log Disputed(accusation_id=accusation_id, culprit=a.culprit, committee=committee, voting_deadline=voting_deadline)
    return committee


@external
def vote(accusation_id: uint256, guilty: bool):
    """A committee member's verdict, once, before the voting deadline: guilty only if the
    public evidence (whose keccak256 is on chain) verifies off chain against the culprit."""
    a: Accusation = self._pending(accusation_id)
    assert msg.sender in a.committee, "NotCommittee: only the accusation's committee votes"
    assert self.ballots[accusation_id][msg.sender] == 0, "AlreadyVoted: this member voted already"
    assert block.timestamp < a.voting_deadline, "TooLate: the voting period is over"
    if guilty:
        self.ballots[accusation_id][msg.sender] = GUILTY_VOTE
        self.accusations[accusation_id].guilty_votes = a.guilty_votes + 1
    else:
        self.ballots[accusation_id][msg.sender] = INNOCENT_VOTE
        self.accusations[accusation_id].innocent_votes = a.innocent_votes + 1
    log Voted(accusation_id=accusation_id, juror=msg.sender, guilty=guilty)


@internal
def _pay_jurors(job_id: uint256, accusation_id: uint256, a: Accusation, ballot: uint8, amount: uint256) -> uint256:
    """JUROR_PERCENT of `amount` to the members who cast `ballot`; returns what they got."""
    voters: DynArray[address, MAX_QUORUM] = []
    for juror: address in a.committee:
        if self.ballots[accusation_id][juror] == ballot:
            voters.append(juror)
    if len(voters) == 0:
        return 0
    reward: uint256 = amount * JUROR_PERCENT // 100
    self._share(job_id, reward, voters)
    return reward


@external
def finalize(accusation_id: uint256):
    """
    @notice Anyone settles an accusation once it can no longer change.
        1. undisputed: after the deadline, guilty
        2. disputed: after the voting deadline, or once every member voted; guilty only
           if more than half of the drawn committee voted guilty (an empty committee, a
           tie or absent members acquit: presumption of innocence)
        3. guilty: the registry takes the culprit's whole deposit and excludes it for
           good; JUROR_PERCENT of it goes to the members who voted guilty, the rest
           equally to the job's other members; the bond goes back to the accuser
        4. acquitted: the culprit is back in the draw (unless held by another accusation)
           and gets the bond, less JUROR_PERCENT to the members who voted not guilty
    """
    a: Accusation = self._pending(accusation_id)
    guilty: bool = True
    if not a.disputed:
        assert block.timestamp >= a.deadline, "TooEarly: the challenge period has not passed"
    else:
        votes: uint256 = a.guilty_votes + a.innocent_votes
        assert block.timestamp >= a.voting_deadline or votes == len(a.committee), "TooEarly: the voting period has not passed and members have yet to vote"
        guilty = a.guilty_votes * 2 > len(a.committee)
    job: Job = self.jobs[a.job_id]
    slashed: uint256 = 0
    if guilty:
        self.accusations[accusation_id].status = GUILTY
        slashed = extcall Registry(REGISTRY).slash(a.culprit)
        extcall Registry(REGISTRY).unhold(a.culprit, False)
        jurors: uint256 = self._pay_jurors(a.job_id, accusation_id, a, GUILTY_VOTE, slashed)
        honest: DynArray[address, MAX_QUORUM] = []
        for node: address in job.quorum:
            if node != a.culprit:
                honest.append(node)
        # quorums have at least two distinct members, so `honest` is never empty
        self._share(a.job_id, slashed - jurors, honest)
        self._credit(a.job_id, a.accuser, a.bond)
    else:
        self.accusations[accusation_id].status = ACQUITTED
        extcall Registry(REGISTRY).unhold(a.culprit, True)
        jurors: uint256 = self._pay_jurors(a.job_id, accusation_id, a, INNOCENT_VOTE, a.bond)
        self._credit(a.job_id, a.culprit, a.bond - jurors)
    log Finalized(accusation_id=accusation_id, job_id=a.job_id, culprit=a.culprit, guilty=guilty, disputed=a.disputed, slashed=slashed, guilty_votes=a.guilty_votes, innocent_votes=a.innocent_votes)


@view
@external
def accusation(accusation_id: uint256) -> Accusation:
    a: Accusation = self.accusations[accusation_id]
    assert a.status != 0, "UnknownAccusation: no accusation has this id"
    return a


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
    self._refund_unstarted(job_id, job)
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
