"""Additive shares of sum_{i != j} u_i v_j, from each party's own BFV key (SPDZ 2012, section 6).

Every product the preprocessing needs reduces to this: a triple's c = a b is
sum_i a_i b_i (local) plus the cross terms sum_{i != j} a_i b_j; a MAC alpha x
is sum_i alpha_i x_i plus the cross terms of alpha and x. Party i encrypts its
u_i under its own key and sends it to all; party j multiplies by its v_j,
re-randomises with an encryption of zero under i's public key, adds a large
mask, floods the noise, switches the ciphertext down to fewer primes and sends
it back; party i decrypts the sum of what it gets back. No party ever sees
another's u or v, only masked sums.

Batches are multiples of the slot count N; every vector is N-slot chunks,
each encrypted under all r plaintext primes (one frame per prime and chunk).
"""

from __future__ import annotations

import numpy as np
import seal

from enigma.field import PRG, Field
from enigma.mpc.engine import Channel

from .he import (
    BFV,
    HEParameterError,
    Keys,
    PeerKeys,
    keep_freed_memory,
    load_ciphertext,
    load_seeded,
    random_chunks,
    reduce_chunks,
    rerandomise,
    shared_bfv,
    ternary_ntt,
)

Encrypted = list[list[seal.Ciphertext]]
"""chunks x plaintext primes."""


class _Plaintexts:
    """My plaintexts per chunk and prime, encoded once for all peers, in the form ct needs.

    A chunk equal to an earlier one (b in cross(a || a', b || b)) shares its
    plaintexts, and so does a chunk equal to one of the previous call's (b again
    in the MAC round that follows): an NTT lift costs 1.2 ms.
    """

    def __init__(self, bfv: BFV, values: list[np.ndarray],
                 previous: _Plaintexts | None = None) -> None:
        self.bfv = bfv
        self.values = values
        self.residues = [bfv.field_residues(x) for x in values]
        self._cache: dict[tuple[int, int, bool], seal.Plaintext | None] = {}
        self._first = [next(d for d in range(c + 1) if np.array_equal(values[d], values[c]))
                       for c in range(len(values))]
        self._previous = previous
        self._earlier: dict[int, int] = {}
        if previous is not None:
            for c in range(len(values)):
                for d, old in enumerate(previous.values):
                    if np.array_equal(old, values[c]):
                        self._earlier[c] = previous._first[d]
                        break
            previous._previous = None  # keep one call back, not a chain

    def get(self, chunk: int, i: int, ct: seal.Ciphertext) -> seal.Plaintext | None:
        """None for an all-zero plaintext."""
        chunk = self._first[chunk]
        key = (chunk, i, ct.is_ntt_form())
        if key not in self._cache:
            earlier = self._earlier.get(chunk)
            old_key = (earlier, i, key[2])
            if self._previous is not None and earlier is not None \
                    and old_key in self._previous._cache:
                self._cache[key] = self._previous._cache[old_key]
                return self._cache[key]
            inst = self.bfv.instances[i]
            plain = inst.encode(self.residues[chunk][i])
            if plain.is_zero():
                self._cache[key] = None
            else:
                if key[2]:
                    inst.evaluator.transform_to_ntt_inplace(plain, ct.parms_id())
                self._cache[key] = plain
        return self._cache[key]


def to_ntt(bfv: BFV, encrypted: dict[int, Encrypted]) -> dict[int, Encrypted]:
    """The same ciphertexts in NTT form, for vectors multiplied many times (Enc(alpha))."""
    out = {}
    for p, chunks in encrypted.items():
        out[p] = [[ct if ct.is_ntt_form() else inst.evaluator.transform_to_ntt(ct)
                   for inst, ct in zip(bfv.instances[:len(cts)], cts, strict=True)]
                  for cts in chunks]
    return out


def square_partners(party: int, parties: int) -> tuple[list[int], list[int]]:
    """(peers `party` sends its vector to, peers that send it theirs) for a square's cross terms.

    Sum_{i != j} u_i u_j counts each unordered pair twice, so one product per pair
    suffices: party i sends Enc_i(u_i) to the next floor((q-1)/2) parties round the
    ring (and, for even q, to the one opposite if i is the lower of the two). Every
    pair is covered once and each party does about half the products of `cross`.
    """
    def sends(i: int, j: int) -> bool:
        d = (j - i) % parties
        return 0 < 2 * d < parties or (2 * d == parties and i < j)

    peers = [p for p in range(parties) if p != party]
    return [p for p in peers if sends(party, p)], [p for p in peers if sends(p, party)]


class PairwiseError(RuntimeError):
    """A peer sent something the pairwise-product protocol cannot use."""


class Pairwise:
    """One party's half of the pairwise-product protocol over a mesh."""

    def __init__(self, field: Field, channel: Channel) -> None:
        """Make this party's keys and learn every peer's public keys.

        1. Generate one BFV key pair per plaintext prime.
        2. Broadcast the public keys; keep each peer's at the data level, in NTT form.
        """
        keep_freed_memory()
        self.field = field
        self.channel = channel
        self.party = channel.party
        self.parties = channel.parties
        self.bfv = shared_bfv(field, channel.parties)
        self.keys: Keys = self.bfv.keygen()
        self.peers = [p for p in range(self.parties) if p != self.party]
        received = channel.broadcast(*self.keys.public_bytes())
        self.peer_keys = {p: PeerKeys(self.bfv, received[p], p) for p in self.peers}
        self.prg = PRG()
        self._last_plains: _Plaintexts | None = None

    @property
    def slots(self) -> int:
        return self.bfv.slots

    def _chunks(self, x: np.ndarray) -> int:
        if x.shape[0] % self.slots:
            raise ValueError(f"pairwise products work on multiples of {self.slots} elements, "
                             f"got {x.shape[0]}")
        return x.shape[0] // self.slots

    def square_partners(self) -> tuple[list[int], list[int]]:
        return square_partners(self.party, self.parties)

    def send_encrypted(self, u: np.ndarray, primes: int | None = None,
                       to: list[int] | None = None) -> None:
        """Encrypt u (field elements, a multiple of N) under my keys and send it to `to`
        (default: all peers).

        With `primes`, only under the first ones: for u below 2^MAC_KEY_BITS (a MAC key
        share), whose products fit in `bfv.mac_primes` primes.
        """
        peers = self.peers if to is None else to
        if not peers:
            return
        items = []
        for c in range(self._chunks(u)):
            residues = self.bfv.field_residues(u[c * self.slots:(c + 1) * self.slots])
            for i, inst in enumerate(self.bfv.instances[:primes]):
                items.append((i, inst.coefficients(residues[i])))
        frames = self.keys.encrypt_seeded(items, self.prg)
        for p in peers:
            self.channel.send(p, *frames)

    def receive_encrypted(self, chunks: int, primes: int | None = None,
                          frm: list[int] | None = None) -> dict[int, Encrypted]:
        """The encrypted vector of `chunks` chunks of every peer in `frm` (default: all),
        checked against the parameters."""
        primes = primes or len(self.bfv.instances)
        out: dict[int, Encrypted] = {}
        for p in self.peers if frm is None else frm:
            frames = self.channel.recv(p)
            if len(frames) != chunks * primes:
                raise PairwiseError(f"party {p} sent {len(frames)} ciphertexts, expected "
                                    f"{chunks} chunks x {primes} primes")
            try:
                out[p] = [[load_seeded(self.bfv, i, frames[c * primes + i], p)
                           for i in range(primes)] for c in range(chunks)]
            except HEParameterError as exc:
                raise PairwiseError(str(exc)) from exc
        return out

    def cross(self, encrypted: dict[int, Encrypted], v: np.ndarray,
              returns: list[int] | None = None) -> np.ndarray:
        """My additive share of sum_{i != j} u_i v_j, where `encrypted[i]` holds Enc_i(u_i).

        With `encrypted` from some peers only and `returns` the peers that got my own
        vector (`square_partners`), the sum runs over those pairs only.

        A peer's encrypted vector of one chunk is used for every chunk of v
        (how Enc(alpha_i) serves all MACs). Steps, for party j:
        1. For each peer i and chunk: pick a mask r uniform on 2 bits(p) + 40 bits;
           for each prime t: ct = Enc_i(u_i) * (v_j mod t) (in NTT form) plus an
           encryption of zero under i's public key, plus r mod t (`he.rerandomise`),
           flooded and switched down; send all to i. Share -= r mod p.
        2. Receive from each peer i the ciphertexts Enc_j(u_j v_i + r_ij); add them
           up per chunk and prime, decrypt, reconstruct the integer by CRT and
           reduce mod p. Share += that.
        """
        F, bfv, n = self.field, self.bfv, self.slots
        chunks = self._chunks(v)
        # a party that computes for nobody (a square's pairs, 2 parties) expects full products
        primes = {len(cts) for enc in encrypted.values() for cts in enc} \
            or {len(bfv.instances)}
        if len(primes) != 1 or next(iter(primes)) not in bfv.mask_bits_by_primes:
            raise PairwiseError(f"encrypted vectors under {sorted(primes)} plaintext primes; "
                                f"expected one of {sorted(bfv.mask_bits_by_primes)}")
        primes = primes.pop()
        mask_bits = bfv.mask_bits_by_primes[primes]
        instances = bfv.instances[:primes]
        share = F.zeros(v.shape[0])
        plains = _Plaintexts(bfv, [v[c * n:(c + 1) * n] for c in range(chunks)],
                             self._last_plains)
        self._last_plains = plains
        # one ternary u per chunk, for its primes and peers: the c1's (a_k u + e_k)_k are
        # RLWE samples of u with independent a_k (one per key), as module-LWE encryption
        # uses one r for all components (Kyber); see docs/preprocessing.md
        u_by_chunk = [ternary_ntt(bfv, primes, self.prg) for _ in range(chunks if encrypted else 0)]
        for p in sorted(encrypted):
            frames = []
            enc = encrypted[p]
            for c in range(chunks):
                u_ct = enc[c] if len(enc) == chunks else enc[0]
                mask = random_chunks(n, mask_bits, self.prg)
                mask_res = bfv.residues(mask)
                u_ntt = u_by_chunk[c]
                for i, inst in enumerate(instances):
                    ct = u_ct[i]
                    if not ct.is_ntt_form():  # a fresh vector, multiplied once
                        ct = inst.evaluator.transform_to_ntt(ct)
                    plain = plains.get(c, i, ct)
                    product = None  # SEAL refuses a product by zero (transparent)
                    if plain is not None:
                        product = inst.evaluator.multiply_plain(ct, plain)
                    frames.append(rerandomise(bfv, i, self.peer_keys[p].public_ntt[i], product,
                                              inst.encode(mask_res[i]), u_ntt[i], self.prg))
                block = share[c * n:(c + 1) * n]
                F.sub(block, reduce_chunks(mask, F), out=block)
            self.channel.send(p, *frames)
        sums: list[list[seal.Ciphertext | None]] = [[None] * primes for _ in range(chunks)]
        for p in self.peers if returns is None else returns:
            frames = self.channel.recv(p)
            if len(frames) != chunks * primes:
                raise PairwiseError(f"party {p} returned {len(frames)} ciphertexts, expected "
                                    f"{chunks * primes}")
            for c in range(chunks):
                for i, inst in enumerate(instances):
                    try:
                        ct = load_ciphertext(bfv, i, frames[c * primes + i], p, returned=True)
                    except HEParameterError as exc:
                        raise PairwiseError(str(exc)) from exc
                    acc = sums[c][i]
                    if acc is None:
                        sums[c][i] = ct
                    else:
                        inst.evaluator.add_inplace(acc, ct)
        for c in range(chunks):
            if sums[c][0] is None:  # nobody had my vector: no cross terms of mine
                continue
            residues = [self.keys.decrypt(i, sums[c][i]) for i in range(primes)]
            block = share[c * n:(c + 1) * n]
            F.add(block, bfv.reconstruct(residues), out=block)
        return share
