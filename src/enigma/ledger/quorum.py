"""The quorum draw, reproduced off chain so that anyone can check a job's quorum.

Same steps as `registry.vy::_draw`: weighted sampling without replacement, where the
weight of a node is its deposit and the randomness is the job's seed
(keccak256 of the previous block hash and the job id, recorded in JobPosted). A job's
candidates are its dataset's holders (`Ledger.candidates(pool=holders)`).
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils import keccak


def draw_quorum(seed: bytes, candidates: Sequence[tuple[str, int]], size: int,
                strict: bool = True) -> list[str]:
    """
    Pick `size` distinct candidates, each with probability proportional to its weight.
        1. total = sum of weights (a weight is a deposit; 0 for inactive or slashed nodes)
        2. for k in 0..size-1: r = int(keccak256(seed ++ k as 32 bytes)) mod total
        3. take the first candidate whose running weight sum exceeds r
        4. zero its weight and subtract it from total
    Raises ValueError when the weights run out before `size` picks, as the contract reverts;
    with `strict` False it returns the picks made, as `draw_among` does for a committee
    (whose candidates are `Ledger.candidates(exclude=quorum + owner + accuser)` and whose
    seed is keccak256(accusation seed ++ blockhash of the block before the dispute)).
    """
    if len(seed) != 32:
        raise ValueError(f"the seed must be 32 bytes, got {len(seed)}")
    weights = [w for _, w in candidates]
    total = sum(weights)
    chosen: list[str] = []
    for k in range(size):
        if total == 0:
            if not strict:
                break
            raise ValueError(
                f"not enough staked active nodes: drew {len(chosen)} of {size}; register more nodes"
            )
        r = int.from_bytes(keccak(seed + k.to_bytes(32, "big")), "big") % total
        acc = 0
        for i, w in enumerate(weights):
            acc += w
            if r < acc:
                chosen.append(candidates[i][0])
                total -= w
                weights[i] = 0
                break
    return chosen
