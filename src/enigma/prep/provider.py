"""The homomorphic-encryption preprocessing: the nodes of a quorum make their own triples and masks.

No party ever holds more than its own shares: MACs and products come from the
pairwise protocol (`pairwise.Pairwise`), every triple is sacrificed against a
spare before use (`sacrifice`), random bits come from the square-root trick
and everything else from bits and triples, through an internal `Engine` over
the same mesh. Production happens in batches of N = 16384 slots and is kept
in buffers, so the online phase is served from stock whenever a request fits
(`reserve` fills the stock ahead of demand).

Every party must call the provider in the same order with the same arguments,
as for any provider; the buffers then stay aligned across parties.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from enigma.field import Field
from enigma.mpc.engine import Channel, Engine
from enigma.mpc.preprocessing import KAPPA, DigitMasks, InputMasks, Triples, TruncMasks
from enigma.sharing import AuthShare, spdz

from . import bounded
from .buffer import Buffer
from .he import MAC_KEY_BITS, POLY_DEGREE
from .pairwise import Pairwise, to_ntt
from .sacrifice import SacrificeError, check_squares, open_unchecked, sacrifice, toss_coins


class PreprocessingError(RuntimeError):
    """The preprocessing cannot serve a request (the field does not allow it, or it was aborted)."""


def is_probable_prime(n: int, rounds: int = 40) -> bool:
    """Miller-Rabin with fixed bases (error below 4^-rounds for composite n)."""
    if n < 4:
        return n in (2, 3)
    if n % 2 == 0:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in range(2, 2 + rounds):
        x = pow(a % n, d, n)
        if x in (0, 1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def mac_key_share(field: Field) -> np.ndarray:
    """alpha_i, uniform on [0, 2^64) when p > 2^64 (else on F_p), as a (1, 2) field array.

    alpha = sum_i alpha_i then takes at least 2^64 values with probability at most
    2^-64 each from the adversary's view (one honest share, independent of the
    rest), which bounds a forgery by 2^-64 per MAC check (docs/preprocessing.md).
    """
    if field.bits <= MAC_KEY_BITS:
        return field.random(1)
    out = field.zeros(1)
    out[0, 0] = np.frombuffer(os.urandom(8), dtype="<u8")[0]
    return out


@dataclass
class Stock:
    """What a party keeps between sessions: its MAC key share, unused triples and bits.

    Secret: alpha_i and shares. Only `commands.save_stock` writes it (atomically,
    checksummed, readable by its owner only).
    """

    stock_id: bytes
    alpha: np.ndarray
    triples: tuple[np.ndarray, ...]
    bits: tuple[np.ndarray, ...]
    inputs: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...] = ()
    """Input masks per owner party, in the provider's party order: (share, MAC share, the
    mask in the clear on its owner, zeros elsewhere). Empty: none in stock."""


def _compose(F: Field, bits: AuthShare, width: int) -> AuthShare:
    """sum_i 2^i bits[:, i] for bits of shape (n, width)."""
    n = bits.value.shape[0]
    powers = np.repeat(F.from_ints([1 << i for i in range(width)])[None], n, axis=0)
    return AuthShare(F.dot(bits.value, powers, axis=1), F.dot(bits.mac, powers, axis=1))


class MaskComposer:
    """Truncation and digit masks built from random bits, contributed bounded values
    (`bounded`) and, for digits, products on `engine`: one construction for the HE provider
    (its own engine) and for a blame job's served slice (`prep.served`, the job's engine,
    whose products and rounds it counts as preprocessing work)."""

    field: Field
    parties: int
    engine: Engine | None = None
    preprocessing_work: dict[str, int] | None = None
    """When not None, the rounds and triples the masks' protocols took on `engine`."""
    own_engine: bool = False
    """Whether `engine` is the composer's own (not a job's, which MAC-checks before any
    output): it then checks its openings before handing masks out."""

    def random_bits(self, n: int) -> AuthShare:
        raise NotImplementedError

    def input_masks(self, owner: int, n: int) -> InputMasks:
        raise NotImplementedError

    def _bit_matrix(self, n: int, width: int) -> AuthShare:
        bits = self.random_bits(n * width)
        return AuthShare(bits.value.reshape(n, width, 2), bits.mac.reshape(n, width, 2))

    def _bound_engine(self, what: str) -> Engine:
        if self.engine is None:
            raise PreprocessingError(f"{what} need the job's engine: call bind(engine)")
        return self.engine

    def _counted(self, make):
        """make(), with the rounds and triples it takes on the engine counted as
        preprocessing work, and checked when the engine is the composer's own."""
        stats = self.engine.stats
        before = (stats.rounds, stats.triples)
        out = make()
        if self.own_engine:
            self.engine.check()
        if self.preprocessing_work is not None:
            self.preprocessing_work["rounds"] += stats.rounds - before[0]
            self.preprocessing_work["triples"] += stats.triples - before[1]
        return out

    def _high(self, n: int, m: int, k: int) -> AuthShare:
        """r_high on L = k + KAPPA - m bits: contributed by the parties when the field has
        room for the proof's slack (`bounded.fits`), else L random bits."""
        L = k + KAPPA - m
        if bounded.fits(self.field, m, k, self.parties):
            engine = self._bound_engine("contributed masks")
            return self._counted(lambda: bounded.contributed(engine, self, n, L))
        return _compose(self.field, self._bit_matrix(n, L), L)

    def trunc_masks(self, n: int, m: int, k: int) -> TruncMasks:
        return TruncMasks(_compose(self.field, self._bit_matrix(n, m), m), self._high(n, m, k))

    def digit_masks(self, n: int, m: int, k: int, digit_bits: int) -> DigitMasks:
        """Thermometer-coded digits of a random r_low, from its bits and their products.

        1. Draw the m bits of r_low (digit d holds bits b d .. b d + b - 1).
        2. Products of every subset of a digit's bits, smallest subsets first
           (2^b - b - 1 products per digit, b - 1 rounds).
        3. t[d, v] = [digit_d >= v] = a public integer combination of those
           monomials (inclusion-exclusion over the bits that are set).
        4. r_high as for truncation (`_high`).
        """
        engine = self._bound_engine("digit masks")
        F = self.field
        digits = -(-m // digit_bits)
        bits = self._bit_matrix(n, m)
        width = digits * digit_bits
        padded = AuthShare(np.concatenate([bits.value, F.zeros((n, width - m))], axis=1),
                           np.concatenate([bits.mac, F.zeros((n, width - m))], axis=1))
        code = self._counted(lambda: thermometer(engine, padded, digits, digit_bits))
        return DigitMasks(code, _compose(F, bits, m), self._high(n, m, k), digit_bits)


class HEProvider(MaskComposer):
    """MAC'd triples, bits and masks for one party, made with the other parties of its quorum."""

    def __init__(self, field: Field, party: int, parties: int, channel: Channel, *,
                 stock: Stock | None = None) -> None:
        """Set up the MAC key; with `stock`, resume from what a past session left.

        1. Take alpha_i from the stock, or draw it and toss coins for a stock id.
        2. Broadcast the stock id and counts; refuse unless every party has the same.
        The BFV keys come later, at the first production (`pairwise`): a job that the
        stock covers never pays for them.
        """
        if channel.party != party or channel.parties != parties:
            raise ValueError(f"the channel belongs to party {channel.party} of "
                             f"{channel.parties}, not party {party} of {parties}")
        started = time.perf_counter()
        self.field = field
        self.party = party
        self.parties = parties
        self._channel = channel
        self._pairwise: Pairwise | None = None
        self._enc_alpha: object = None  # the peers' Enc_j(alpha_j), made with `pairwise`
        self.batch = POLY_DEGREE
        self._triples = Buffer(6)
        self._bits = Buffer(2)
        self._inputs: dict[int, Buffer] = {}
        self.produced = {"triples": 0, "bits": 0, "input_masks": 0}
        self._timing = False
        self.seconds = 0.0
        """Wall seconds this party spent making preprocessing (set-up, triples, bits, input
        masks): the offline part of what a user waits for, reported by jobs and benches."""
        fresh_id = toss_coins(channel, b"enigma.stock").words(4).tobytes()
        if stock is None:
            self._alpha = mac_key_share(field)
            self.stock_id = fresh_id
        else:
            self._alpha = stock.alpha.reshape(1, 2)
            self.stock_id = stock.stock_id
            self._triples.add(*stock.triples)
            self._bits.add(*stock.bits)
            for owner, masks in enumerate(stock.inputs):
                if masks[0].shape[0]:
                    self._inputs.setdefault(owner, Buffer(3)).add(*masks)
        self._agree_on_stock(channel)
        if field.bits > MAC_KEY_BITS and self._alpha[0, 1]:
            raise PreprocessingError(
                f"the stock's MAC key share is not below 2^{MAC_KEY_BITS}: it was saved by an "
                "older version of this preprocessing (its MACs need 5 primes); start fresh")
        self.engine = Engine(channel, self)
        self.seconds = time.perf_counter() - started
        self.own_engine = True

    @property
    def pairwise(self) -> Pairwise:
        """The session's BFV keys and every peer's Enc_j(alpha_j), made at the first
        production.

        Why lazily: key generation and the exchange of Enc(alpha) cost about half a second
        per session, which a small job served from stock would otherwise wait for. Every
        party reaches its first production at the same request (requests and stock counts
        are the same on every party), so they still run this protocol in step.
        1. Exchange BFV public keys (`Pairwise`).
        2. Broadcast Enc_i(alpha_i) in every slot, once: every MAC of the session is a
           pairwise product with it.
        """
        if self._pairwise is None:
            with self._timed():
                pw = Pairwise(self.field, self._channel)
                mac_primes = pw.bfv.mac_primes
                pw.send_encrypted(np.repeat(self._alpha, self.batch, axis=0), mac_primes)
                self._enc_alpha = to_ntt(pw.bfv, pw.receive_encrypted(1, mac_primes))
                self._pairwise = pw
        return self._pairwise

    @property
    def keyed(self) -> bool:
        """Whether this session has made its BFV keys (it has produced something)."""
        return self._pairwise is not None

    def _agree_on_stock(self, channel: Channel) -> None:
        mine = self.stock_id + np.array([self._triples.size, self._bits.size,
                                         *self._input_counts()], dtype="<u8").tobytes()
        for peer, frames in channel.broadcast(mine).items():
            theirs = bytes(frames[0]) if len(frames) == 1 else b""
            if theirs != mine:
                raise PreprocessingError(
                    f"party {peer} resumes other preprocessing than party {self.party} (stock "
                    "id or counts differ): every party of a quorum must restore the stock "
                    "saved at the same point, or all must start fresh")

    def export_stock(self) -> Stock:
        """Everything in stock (copied, not consumed), to save with `commands.save_stock`."""
        triples = self._triples.take(self._triples.size)
        bits = self._bits.take(self._bits.size)
        self._triples.add(*triples)
        self._bits.add(*bits)
        inputs = []
        for owner in range(self.parties if any(self._input_counts()) else 0):
            buffer = self._inputs.setdefault(owner, Buffer(3))
            if not buffer.size:
                inputs.append(tuple(self.field.zeros(0) for _ in range(3)))
                continue
            masks = buffer.take(buffer.size)
            buffer.add(*masks)
            inputs.append(masks)
        return Stock(self.stock_id, self._alpha.reshape(2).copy(), triples, bits,
                     tuple(inputs))

    def _input_counts(self) -> list[int]:
        """Input masks in stock per owner party (public; identical on every party)."""
        return [self._inputs[o].size if o in self._inputs else 0 for o in range(self.parties)]

    def mac_key_share(self) -> np.ndarray:
        return self._alpha.reshape(2)

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        """Add the block's wall time to `seconds`, once: production nests (masks take bits,
        digit masks triples)."""
        if self._timing:
            yield
            return
        self._timing, started = True, time.perf_counter()
        try:
            yield
        finally:
            self._timing = False
            self.seconds += time.perf_counter() - started

    # ------------------------------------------------------------------ building blocks

    def _padded(self, x: np.ndarray) -> np.ndarray:
        extra = -x.shape[0] % self.batch
        return np.concatenate([x, self.field.zeros(extra)]) if extra else x

    def authenticate(self, x: np.ndarray) -> AuthShare:
        """MACs for values whose shares the parties hold (x is my share).

        1. Local part: alpha_i x_i.
        2. Cross part: pairwise products of Enc_j(alpha_j) with x_i.
        """
        F = self.field
        n = x.shape[0]
        pw = self.pairwise  # first: it makes the peers' Enc(alpha_j) when it is the first use
        cross = pw.cross(self._enc_alpha, self._padded(x))[:n]
        mac = F.add(F.mul(x, self._alpha.reshape(2)), cross)
        return AuthShare(x, mac)

    def _produce_triples(self) -> None:
        """One batch of N triples, each checked against a spare (a', b, c').

        1. Draw a_i, a'_i, b_i; send Enc_i(a_i || a'_i) to all.
        2. c_i = a_i b_i + cross(a, b), c'_i = a'_i b_i + cross(a', b).
        3. MAC a, a', b, c, c' in one pairwise round.
        4. Sacrifice (a', b, c') to check (a, b, c).
        """
        F, n, pw = self.field, self.batch, self.pairwise
        a, a2, b = F.random(n), F.random(n), F.random(n)
        pw.send_encrypted(np.concatenate([a, a2]))
        enc = pw.receive_encrypted(2)
        cross = pw.cross(enc, np.concatenate([b, b]))
        c = F.add(F.mul(a, b), cross[:n])
        c2 = F.add(F.mul(a2, b), cross[n:])
        macs = self.authenticate(np.concatenate([a, a2, b, c, c2]))
        sa, sa2, sb, sc, sc2 = (macs[i * n:(i + 1) * n] for i in range(5))
        triple = Triples(sa, sb, sc)
        sacrifice(self.engine, triple, sa2, sc2)
        self._triples.add(sa.value, sa.mac, sb.value, sb.mac, sc.value, sc.mac)
        self.produced["triples"] += n

    def _produce_bits(self) -> None:
        """One batch of N random bits from checked square pairs (square-root trick, Damgard,
        Fitzi, Kiltz, Nielsen, Toft, TCC 2006), spending no triple.

        1. Draw a_i, a'_i; the squares' cross terms by one product per pair of parties
           (`Pairwise.square_partners`): A = a^2, A' = a'^2, shared.
        2. MAC a, a', A' in one pairwise round (A is never MAC'd: it is only opened).
        3. Open y = A without a MAC; abort if some y is 0 (probability 1/p) or not a square.
        4. `check_squares`: y = a^2 everywhere, against the spare (a', A').
        5. s = y^((p+1)/4), a square root since p = 3 mod 4; [b] = ([a] / s + 1) / 2,
           which is 0 or 1 because a / s = +-1 in a field.
        """
        F, n, pw = self.field, self.batch, self.pairwise
        self._require_square_roots()
        to, frm = pw.square_partners()
        both = F.random(2 * n)
        pw.send_encrypted(both, to=to)
        cross = pw.cross(pw.receive_encrypted(2, frm=frm), both, returns=to)
        squares = F.add(F.mul(both, both), F.add(cross, cross))
        macs = self.authenticate(np.concatenate([both, squares[n:]]))
        a, spare, spare_square = (macs[i * n:(i + 1) * n] for i in range(3))
        y = open_unchecked(self.engine, squares[:n])
        if np.any(np.all(y == 0, axis=-1)):
            raise PreprocessingError("a random value for a bit was zero (probability 1/p per "
                                     "bit): this batch of bits is aborted; produce it again")
        root = F.pow(y, (F.p + 1) // 4)
        if not np.array_equal(F.mul(root, root), y):
            raise SacrificeError("an opened square is not a square in the field: a node "
                                 "corrupted its share of a square; no bit of this batch is used")
        check_squares(self.engine, a, y, spare, spare_square)
        unit = spdz.scale(F, a, F.inverse(root))
        shifted = spdz.add_public(F, unit, np.repeat(F.const(1)[None], n, axis=0),
                                  self._alpha, self.party)
        bits = spdz.scale(F, shifted, F.const(pow(2, -1, F.p)))
        self._bits.add(bits.value, bits.mac)
        self.produced["bits"] += n

    def _require_square_roots(self) -> None:
        F = self.field
        if F.p % 4 != 3 or not is_probable_prime(F.p):
            raise PreprocessingError(
                f"random bits by square roots need a prime p = 3 mod 4; p = {F.p} is "
                f"{F.p % 4} mod 4{'' if is_probable_prime(F.p) else ' and composite'}: in a "
                "ring with zero divisors r / sqrt(r^2) need not be +-1. Use a prime modulus")

    @property
    def in_stock(self) -> dict[str, int]:
        """How many triples and bits are ready (public counts, identical on every party),
        and input masks (the fewest any party has for its own inputs)."""
        return {"triples": self._triples.size, "bits": self._bits.size,
                "inputs": min(self._input_counts())}

    # ------------------------------------------------------------------ Provider

    def reserve(self, triples: int = 0, bits: int = 0, inputs: int = 0) -> None:
        """Produce ahead of demand until the stock holds at least this many (bits spend no
        triples, so the order does not matter; `inputs`: input masks for each party's own
        inputs, which a job spends on its shares)."""
        with self._timed():
            while self._bits.size < bits:
                self._produce_bits()
            while self._triples.size < triples:
                self._produce_triples()
            for owner in range(self.parties):
                self._fill_inputs(owner, inputs)

    def triples(self, n: int) -> Triples:
        self.reserve(triples=n)
        av, am, bv, bm, cv, cm = self._triples.take(n)
        return Triples(AuthShare(av, am), AuthShare(bv, bm), AuthShare(cv, cm))

    def random_bits(self, n: int) -> AuthShare:
        self.reserve(bits=n)
        return AuthShare(*self._bits.take(n))

    def trunc_masks(self, n: int, m: int, k: int) -> TruncMasks:
        with self._timed():
            return super().trunc_masks(n, m, k)

    def digit_masks(self, n: int, m: int, k: int, digit_bits: int) -> DigitMasks:
        with self._timed():  # the thermometer's products are preprocessing too
            return super().digit_masks(n, m, k, digit_bits)

    def _fill_inputs(self, owner: int, n: int) -> Buffer:
        """`owner`'s input masks in stock, at least n: batches where short, each drawn by
        `owner` (r) and MAC'd by everyone (pairwise)."""
        F = self.field
        stock = self._inputs.setdefault(owner, Buffer(3))
        while stock.size < n:
            r = F.random(self.batch) if self.party == owner else F.zeros(self.batch)
            share = self.authenticate(r)
            stock.add(share.value, share.mac, r)
            self.produced["input_masks"] += self.batch
        return stock

    def input_masks(self, owner: int, n: int) -> InputMasks:
        """[r] known to `owner`: its share is r, the others' 0, MAC'd by pairwise products."""
        if not 0 <= owner < self.parties:
            raise ValueError(f"input owner {owner} is not a party of this quorum "
                             f"(0..{self.parties - 1})")
        with self._timed():
            stock = self._fill_inputs(owner, n)
        value, mac, clear = stock.take(n)
        share = AuthShare(value, mac)
        return InputMasks(share, clear if self.party == owner else None)


def thermometer(engine: Engine, bits: AuthShare, digits: int, digit_bits: int) -> AuthShare:
    """[digit_d >= v] for v = 1 .. 2^b - 1, from the bits (n, digits * b) of the digits.

    1. Monomials m_S = prod_{i in S} u_i for every subset S of a digit's bits,
       by size: m_S = m_(S without its top bit) * u_top, one round per size.
    2. [digit == d] = sum_{S contains d} (-1)^(|S| - |d|) m_S (inclusion-exclusion).
    3. t[v] = sum_{d >= v} [digit == d]: one public integer matrix C[v, S].
    """
    F = engine.field
    n, b = bits.value.shape[0], digit_bits
    u = AuthShare(bits.value.reshape(n, digits, b, 2), bits.mac.reshape(n, digits, b, 2))
    mono: dict[int, AuthShare] = {1 << i: u[:, :, i] for i in range(b)}
    for size in range(2, b + 1):
        subsets = [s for s in range(1 << b) if s.bit_count() == size]
        pairs = []
        for s in subsets:
            top = s.bit_length() - 1
            pairs.append((engine.secret(mono[s ^ (1 << top)]), engine.secret(mono[1 << top])))
        for s, product in zip(subsets, engine.mul_many(pairs), strict=True):
            mono[s] = product.share
    levels = (1 << b) - 1
    value = F.zeros((n, digits, levels))
    mac = F.zeros((n, digits, levels))
    for v in range(1, levels + 1):
        acc = AuthShare(F.zeros((n, digits)), F.zeros((n, digits)))
        for s, m in mono.items():
            coeff = sum((-1) ** (s.bit_count() - d.bit_count())
                        for d in range(v, levels + 1) if d & s == d)
            if coeff:
                acc = spdz.add(F, acc, spdz.scale(F, m, F.const(coeff)))
        value[:, :, v - 1] = acc.value
        mac[:, :, v - 1] = acc.mac
    return AuthShare(value, mac)
