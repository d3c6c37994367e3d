"""The SPDZ online phase for one party: input, open, multiply, check, output.

One `Engine` per party per computation. Every party runs the same program,
so the engines call the mesh and the preprocessing provider in the same order.
Openings are batched: whatever is opened together travels in one message per
peer, and the MAC check is deferred until a value leaves the computation (an
output) or enough openings have accumulated; a failed check raises
`MacCheckError` and the computation is over.

References: Damgard, Pastro, Smart, Zakarias (SPDZ), CRYPTO 2012; Damgard,
Keller, Larraia, Pastro, Scholl, Smart, ESORICS 2013 (the MAC check protocol
and private outputs); Beaver, CRYPTO 1991 (multiplication triples).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from enigma.field import PRG, VALUE_BITS, Field, FieldError, kernels
from enigma.sharing import AuthShare, MacCheckError, commit, spdz

from .preprocessing import Provider
from .secret import Secret

MEMORY_BUDGET = 128 << 20
"""Bytes of working arrays one operation may hold per party; longer vectors run in chunks.

A constant, never the machine's free memory: chunk sizes fix the order of messages and of
preprocessing requests, so every party of a quorum (and a blame replay) must use the same."""
MUL_ROW_BYTES = 32 * 16
"""Working bytes per element of a Beaver product: the triple's six arrays, the operands,
the opened differences, the peers' shares and the result, at 16 bytes per field word."""
PENDING_ROW_BYTES = 2 * 16
"""Bytes per opened element kept for the deferred MAC check (the value and its MAC share)."""


class ProtocolError(RuntimeError):
    """A peer sent something that does not fit the protocol (size, encoding, commitment)."""


class Channel(Protocol):
    """What the engine needs from the transport (enigma.net.Mesh provides it)."""

    party: int
    parties: int

    def broadcast(self, *buffers) -> dict[int, list[memoryview]]: ...

    def send(self, to: int, *buffers) -> None: ...

    def recv(self, frm: int) -> list[memoryview]: ...


@dataclass
class Stats:
    """Public counters of a run: what it cost, never what it computed."""

    rounds: int = 0
    bytes_sent: int = 0
    opened: int = 0
    triples: int = 0
    mac_checks: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Engine:
    """One party's view of a SPDZ computation over `field`."""

    def __init__(self, channel: Channel, provider: Provider, *, value_bits: int = VALUE_BITS,
                 digit_bits: int | None = None, check_threshold: int = 1 << 23,
                 king_threshold: int = 1 << 16, memory_budget: int = MEMORY_BUDGET,
                 randomness: Callable[[int], bytes] | None = None) -> None:
        self.channel = channel
        self.provider = provider
        self.field: Field = provider.field
        self.party = channel.party
        self.parties = channel.parties
        if provider.party != self.party or provider.parties != self.parties:
            raise ValueError("the preprocessing provider belongs to another party or quorum")
        self.k = value_bits
        self.digit_bits = digit_bits
        """Digit size of comparisons; None: chosen by cost per operation (`comparison`)."""
        self.alpha = provider.mac_key_share()
        self.stats = Stats()
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_count = 0
        self.memory_budget = memory_budget
        # the openings awaiting a MAC check are held until it: a quarter of the budget at most
        self._check_threshold = max(1, min(check_threshold,
                                           memory_budget // 4 // PENDING_ROW_BYTES))
        self.king_threshold = king_threshold
        # The party's own coins (MAC-check seeds, commitment nonces). Blame mode passes a
        # generator keyed by a committed seed, so that anyone holding the seed can replay
        # this party's messages exactly (enigma.mpc.blame); otherwise the OS generator.
        self._random: Callable[[int], bytes] = os.urandom if randomness is None else randomness

    # ------------------------------------------------------------------ construction

    def secret(self, share: AuthShare) -> Secret:
        return Secret(self, share)

    def constant(self, values: np.ndarray) -> Secret:
        """A public field array as a (trivially) shared secret."""
        F = self.field
        value = values.copy() if self.party == 0 else np.zeros_like(values)
        mac = F.mul(values.reshape(-1, 2), self.alpha).reshape(values.shape)
        return Secret(self, AuthShare(value, mac))

    def input(self, owner: int, values: np.ndarray | None, shape: int | tuple[int, ...]) -> Secret:
        """Private input of `owner` (field elements), shared among all parties.

        1. All take a preprocessed mask [r]; the owner also knows r.
        2. The owner broadcasts eps = x - r (uniform, reveals nothing).
        3. Everyone sets [x] = [r] + eps.
        """
        F = self.field
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        n = int(np.prod(shape, dtype=np.int64))
        masks = self.provider.input_masks(owner, n)
        if self.party == owner:
            if values is None or values.shape[:-1] != shape:
                raise ValueError(f"input of shape {shape} expected from party {owner}")
            F.check(values)
            eps = F.sub(values.reshape(n, 2), masks.clear)
            for peer in self._peers():
                self.channel.send(peer, F.to_bytes(eps))
                self.stats.bytes_sent += eps.nbytes
        else:
            eps = self._parse(self.channel.recv(owner), owner, n)
        self.stats.rounds += 1
        share = spdz.add_public(F, masks.r, eps, self.alpha, self.party)
        return Secret(self, AuthShare(share.value.reshape(*shape, 2),
                                      share.mac.reshape(*shape, 2)))

    # ------------------------------------------------------------------ opening

    def open(self, *secrets: Secret) -> list[np.ndarray]:
        """Open several secrets in one round; their MACs are checked later (see `check`)."""
        values = [s.share.value.reshape(-1, 2) for s in secrets]
        macs = [s.share.mac.reshape(-1, 2) for s in secrets]
        opened = self._open_raw(_cat(values), _cat(macs))
        out, start = [], 0
        for s in secrets:
            size = int(np.prod(s.shape, dtype=np.int64))
            out.append(opened[start:start + size].reshape(*s.shape, 2))
            start += size
        return out

    def _open_raw(self, value: np.ndarray, mac: np.ndarray) -> np.ndarray:
        """Open value shares, remember (opened, mac) for the check.

        Small openings are broadcast (one round). Large ones go through kings
        (SPDZ-2, Damgard et al. 2013, section 5), one per slice of the vector:
        the others send each king their shares of its slice, it sends back the
        sum. That moves 2(q - 1)/q instead of (q - 1) share vectors per party,
        a third less for q = 3, and the bytes are what a loaded machine pays
        for. A king that sends different sums to different parties is caught
        by the MAC check, as any wrong opening is.
        """
        F = self.field
        n = value.shape[0]
        self.stats.opened += n
        if n >= max(self.king_threshold, self.parties) and self.parties > 2:
            total = self._open_via_king(value)
        else:
            received = self.channel.broadcast(F.to_bytes(value))
            self.stats.rounds += 1
            self.stats.bytes_sent += value.nbytes * (self.parties - 1)
            total = value.copy()
            for peer, frames in received.items():
                F.add(total, self._parse(frames, peer, n), out=total)
        self._pending.append((total, mac))
        self._pending_count += n
        if self._pending_count >= self._check_threshold:
            self.check()
        return total

    def _open_via_king(self, value: np.ndarray) -> np.ndarray:
        """Every party is king of one slice: the load and the bytes are the same for all.

        Slice k (of q near-equal slices) goes to party k, which sums it and sends the sum
        back: each party sends 2 (q - 1) / q of a share vector, where one king for the
        whole vector would send 2 (q - 1) vectors while the others wait.
        """
        F = self.field
        n = value.shape[0]
        q = self.parties
        bounds = [n * k // q for k in range(q + 1)]
        mine = slice(bounds[self.party], bounds[self.party + 1])
        self.stats.rounds += 2
        for king in self._peers():
            part = value[bounds[king]:bounds[king + 1]]
            self.channel.send(king, F.to_bytes(part))
            self.stats.bytes_sent += part.nbytes
        total = np.empty_like(value)
        total[mine] = value[mine]
        size = bounds[self.party + 1] - bounds[self.party]
        for peer in self._peers():
            F.add(total[mine], self._parse(self.channel.recv(peer), peer, size), out=total[mine])
        for peer in self._peers():
            self.channel.send(peer, F.to_bytes(total[mine]))
            self.stats.bytes_sent += total[mine].nbytes
        for king in self._peers():
            total[bounds[king]:bounds[king + 1]] = self._parse(
                self.channel.recv(king), king, bounds[king + 1] - bounds[king])
        return total

    def check(self) -> None:
        """Batched MAC check of everything opened since the last check.

        1. Coin tossing: each party commits to a 32-byte seed, then opens it;
           the coefficients r_j come from a PRG on the hash of all seeds.
        2. Each party computes sigma_i = sum_j r_j m_ij - alpha_i sum_j r_j x_j.
        3. Each commits to sigma_i, then opens it; all verify the commitments.
        4. Abort with MacCheckError unless sum_i sigma_i = 0.
        """
        if not self._pending:
            return
        F = self.field
        seeds = self._commit_and_open(self._random(32))
        prg = PRG(hashlib.sha256(b"enigma.maccheck" + b"".join(seeds)).digest())
        sigma = F.zeros(1)
        for opened, mac in self._pending:
            coeffs = F.random(opened.shape[0], prg)
            F.add(sigma, spdz.mac_residue(F, opened, mac, self.alpha, coeffs).reshape(1, 2),
                  out=sigma)
        self._pending.clear()
        self._pending_count = 0
        self.stats.mac_checks += 1
        residues = self._commit_and_open(bytes(F.to_bytes(sigma)))
        parsed = []
        for who, raw in enumerate(residues):
            try:
                parsed.append(F.from_bytes(raw, shape=1))
            except FieldError as exc:
                raise ProtocolError(f"party {who} opened a malformed MAC-check value") from exc
        spdz.check_residues(F, parsed)

    def chunk_rows(self, row_bytes: int) -> int:
        """How many rows of `row_bytes` working bytes each one step may take (at least one).

        Why chunks: the largest intermediates (a comparison's thermometer table, a Beaver
        product's triples) grow with the rows times a large constant; run on all rows at once
        they outgrow memory long before the inputs do. Each chunk costs its own rounds, so the
        budget trades rounds for memory (docs/mpc.md, "Bounded memory")."""
        return max(1, self.memory_budget // max(1, row_bytes))

    def public_coins(self, label: bytes) -> PRG:
        """A generator every party shares, seeded by a fresh coin toss (commit, then open).

        Why a toss: coefficients drawn this way are fixed only after every value they weigh
        (inputs before the toss), so no party can choose its deviation to cancel them."""
        seeds = self._commit_and_open(self._random(32))
        return PRG(hashlib.sha256(b"enigma.coins" + label + b"".join(seeds)).digest())

    def random(self, n: int) -> Secret:
        """n uniformly random secrets nobody knows: the first factors of n triples."""
        t = self.provider.triples(n)
        self.stats.triples += n
        return Secret(self, t.a)

    def _commit_and_open(self, mine: bytes) -> list[bytes]:
        """Every party's value, each bound by a commitment sent before any value is seen."""
        com, nonce = commit.commit(mine, self._random(32))
        commitments = {p: bytes(f[0]) for p, f in self.channel.broadcast(com).items()}
        openings = self.channel.broadcast(nonce, mine)
        self.stats.rounds += 2
        out: list[bytes] = []
        for p in range(self.parties):
            if p == self.party:
                out.append(mine)
                continue
            frames = openings[p]
            if len(frames) != 2:
                raise ProtocolError(f"party {p} sent {len(frames)} frames for an opening, not 2")
            nonce_p, value_p = bytes(frames[0]), bytes(frames[1])
            try:
                commit.verify(commitments[p], value_p, nonce_p, who=f"party {p}")
            except commit.CommitmentError as exc:
                raise MacCheckError(str(exc)) from exc
            out.append(value_p)
        return out

    # ------------------------------------------------------------------ output

    def output(self, x: Secret, to: int) -> np.ndarray | None:
        """Open x to party `to` only: open x + r for a mask r that only `to` knows.

        The masked value is MAC-checked (with everything opened before it)
        before `to` removes the mask, so a result is never released unchecked.
        """
        n = int(np.prod(x.shape, dtype=np.int64))
        masks = self.provider.input_masks(to, n)
        masked = x.reshape(n) + Secret(self, masks.r)
        (opened,) = self.open(masked)
        self.check()
        if self.party != to:
            return None
        return self.field.sub(opened, masks.clear).reshape(*x.shape, 2)

    def reveal(self, x: Secret) -> np.ndarray:
        """Open x to every party, checked. For values the program may make public."""
        (opened,) = self.open(x)
        self.check()
        return opened

    # ------------------------------------------------------------------ multiplication

    def mul(self, x: Secret, y: Secret) -> Secret:
        return self.mul_many([(x, y)])[0]

    def mul_many(self, pairs: list[tuple[Secret, Secret]]) -> list[Secret]:
        """All products in one round (Beaver 1991), or one round per chunk of the budget.

        1. Take triples ([a], [b], [c]) with c = a b.
        2. Open eps = x - a and delta = y - b together.
        3. [z] = [c] + eps [b] + delta [a] + eps delta.
        """
        for x, y in pairs:
            if x.shape != y.shape:
                raise ValueError(f"cannot multiply shapes {x.shape} and {y.shape}")
        sizes = [int(np.prod(x.shape, dtype=np.int64)) for x, _ in pairs]
        n = sum(sizes)
        if n == 0:
            return [x for x, _ in pairs]
        xs = _Flat([x.share for x, _ in pairs])
        ys = _Flat([y.share for _, y in pairs])
        zv = np.empty((n, 2), dtype=np.uint64)
        zm = np.empty((n, 2), dtype=np.uint64)
        step = self.chunk_rows(MUL_ROW_BYTES)
        for start in range(0, n, step):
            stop = min(n, start + step)
            self._beaver(xs.take(start, stop), ys.take(start, stop), zv[start:stop],
                         zm[start:stop])
        out, start = [], 0
        for (x, _), size in zip(pairs, sizes, strict=True):
            share = AuthShare(zv[start:start + size].reshape(*x.shape, 2),
                              zm[start:start + size].reshape(*x.shape, 2))
            out.append(Secret(self, share))
            start += size
        return out

    def _beaver(self, x: AuthShare, y: AuthShare, zv: np.ndarray, zm: np.ndarray) -> None:
        """Products of flat (n, 2) shares into zv, zm: one opening (steps of `mul_many`)."""
        F = self.field
        n = x.value.shape[0]
        t = self.provider.triples(n)
        self.stats.triples += n
        value = np.empty((2 * n, 2), dtype=np.uint64)
        mac = np.empty((2 * n, 2), dtype=np.uint64)
        F.sub(x.value, t.a.value, out=value[:n])
        F.sub(y.value, t.b.value, out=value[n:])
        F.sub(x.mac, t.a.mac, out=mac[:n])
        F.sub(y.mac, t.b.mac, out=mac[n:])
        opened = self._open_raw(value, mac)
        kernels.beaver_kernel(opened[:n], opened[n:], t.a.value, t.b.value, t.c.value,
                              t.a.mac, t.b.mac, t.c.mac, self.alpha, self.party == 0, zv, zm,
                              F.params)

    def dot(self, x: Secret, y: Secret, axis: int = -1) -> Secret:
        """Sum of x * y over one axis, in one round; the sums are fused into the recombination.

        Beyond the memory budget it runs in chunks along the longest axis, one round each:
        chunks of the summed axis add up, chunks of another axis are joined."""
        if x.shape != y.shape:
            raise ValueError(f"cannot take the dot product of shapes {x.shape} and {y.shape}")
        if not x.shape:
            return self._dot(x, y, axis)
        axis %= len(x.shape)
        cut = int(np.argmax(x.shape))
        length = x.shape[cut]
        step = self.chunk_rows(MUL_ROW_BYTES * (x.size // max(1, length)))
        if length <= step:
            return self._dot(x, y, axis)
        parts = []
        for start in range(0, length, step):
            index = (slice(None),) * cut + (slice(start, min(length, start + step)),)
            parts.append(self._dot(_contiguous(x[index]), _contiguous(y[index]), axis))
        if cut == axis:
            total = parts[0]
            for part in parts[1:]:
                total = total + part
            return total
        out_axis = cut if cut < axis else cut - 1
        return Secret(self, AuthShare(
            np.concatenate([p.share.value for p in parts], axis=out_axis),
            np.concatenate([p.share.mac for p in parts], axis=out_axis)))

    def _dot(self, x: Secret, y: Secret, axis: int) -> Secret:
        F = self.field
        n = x.size
        t = self.provider.triples(n)
        self.stats.triples += n
        shape = x.shape
        a, b, c = (AuthShare(s.value.reshape(*shape, 2), s.mac.reshape(*shape, 2))
                   for s in (t.a, t.b, t.c))
        value = np.concatenate([F.sub(x.share.value, a.value).reshape(-1, 2),
                                F.sub(y.share.value, b.value).reshape(-1, 2)])
        mac = np.concatenate([F.sub(x.share.mac, a.mac).reshape(-1, 2),
                              F.sub(y.share.mac, b.mac).reshape(-1, 2)])
        opened = self._open_raw(value, mac)
        eps, delta = opened[:n].reshape(*shape, 2), opened[n:].reshape(*shape, 2)
        ed = F.dot(eps, delta, axis)
        zv = F.add(F.add(F.sum(c.value, axis), F.dot(eps, b.value, axis)),
                   F.dot(delta, a.value, axis))
        zm = F.add(F.add(F.sum(c.mac, axis), F.dot(eps, b.mac, axis)),
                   F.dot(delta, a.mac, axis))
        if self.party == 0:
            F.add(zv, ed, out=zv)
        F.add(zm, F.mul(ed.reshape(-1, 2), self.alpha).reshape(ed.shape), out=zm)
        return Secret(self, AuthShare(zv, zm))

    # ------------------------------------------------------------------ helpers

    def _peers(self) -> list[int]:
        return [p for p in range(self.parties) if p != self.party]

    def _parse(self, frames: list[memoryview], peer: int, n: int) -> np.ndarray:
        if len(frames) != 1:
            raise ProtocolError(f"party {peer} sent {len(frames)} frames where 1 was expected")
        try:
            return self.field.from_bytes(frames[0], shape=n)
        except FieldError as exc:
            raise ProtocolError(f"party {peer} sent a malformed share vector: {exc}") from exc


def _cat(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _contiguous(x: Secret) -> Secret:
    return Secret(x.engine, AuthShare(np.ascontiguousarray(x.share.value),
                                      np.ascontiguousarray(x.share.mac)))


class _Flat:
    """Several shares read as one flat (n, 2) vector, a range at a time, without joining
    them all first (the join would double the operands' memory)."""

    def __init__(self, shares: list[AuthShare]) -> None:
        self.values = [s.value.reshape(-1, 2) for s in shares]
        self.macs = [s.mac.reshape(-1, 2) for s in shares]
        self.starts = np.cumsum([0] + [v.shape[0] for v in self.values])

    def take(self, start: int, stop: int) -> AuthShare:
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        values, macs = [], []
        i = first
        while i < len(self.values) and self.starts[i] < stop:
            lo = max(start, int(self.starts[i])) - int(self.starts[i])
            hi = min(stop, int(self.starts[i + 1])) - int(self.starts[i])
            values.append(self.values[i][lo:hi])
            macs.append(self.macs[i][lo:hi])
            i += 1
        return AuthShare(_cat(values), _cat(macs))
