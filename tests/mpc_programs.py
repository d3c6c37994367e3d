"""Programs the MPC tests run in every party's process (spawned, so they must be importable)."""

from __future__ import annotations

import os

import numpy as np

from enigma.field import PRG, Field
from enigma.mpc import comparison as cmp

F = Field()


def arithmetic(e, xs: np.ndarray, ys: np.ndarray):
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, xs.size)
    y = e.input(1, F.from_int64(ys) if e.party == 1 else None, ys.size)
    z = x * y
    lin = x * 3 - y + 7
    (w,) = e.mul_many([(x, x)])
    d = e.dot(x, y)
    return {name: e.output(v, 2) for name, v in
            dict(prod=z, lin=lin, square=w, dot=d, sum=(x + y).sum()).items()}


def comparisons(e, xs: np.ndarray, bits: int):
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, xs.size)
    out = dict(ltz=cmp.ltz(e, x, bits=bits), eqz=cmp.eqz(e, x, bits=bits),
               trunc=cmp.trunc(e, x, 8, bits=bits))
    return {name: e.output(v, 0) for name, v in out.items()}


def categories(e, cats: np.ndarray, levels: int):
    c = e.input(1, F.from_int64(cats) if e.party == 1 else None, cats.size)
    return e.output(cmp.one_hot(e, c, levels).sum(axis=0), 1)


def tamper(e, part: str, where: str):
    """Party 1 flips one bit of its share; the output must never be released."""
    x = e.input(0, F.from_int64(np.arange(10)) if e.party == 0 else None, 10)
    y = e.input(0, F.from_int64(np.arange(10)) if e.party == 0 else None, 10)
    if e.party == 1 and where == "input":
        getattr(x.share, part)[3, 0] ^= np.uint64(1)
    z = x * y
    if e.party == 1 and where == "product":
        getattr(z.share, part)[5, 1] ^= np.uint64(1 << 20)
    return e.output(z, 0)


def drop_out(e):
    """Party 2 vanishes after the input; the others must stop with a clear error."""
    x = e.input(0, F.from_int64(np.arange(10)) if e.party == 0 else None, 10)
    if e.party == 2:
        os._exit(0)
    return e.output(x * x, 0)


class Recorder:
    """Keeps every message a party receives: its view of the protocol."""

    def __init__(self, channel) -> None:
        self.inner = channel
        self.party, self.parties = channel.party, channel.parties
        self.seen: list[bytes] = []

    def send(self, to, *buffers):
        self.inner.send(to, *buffers)

    def recv(self, frm):
        frames = self.inner.recv(frm)
        self.seen.extend(bytes(f) for f in frames)
        return frames

    def broadcast(self, *buffers):
        got = self.inner.broadcast(*buffers)
        for frames in got.values():
            self.seen.extend(bytes(f) for f in frames)
        return got


def view_of_party_1(e, secret_value: int, n: int):
    """Party 1's received bytes while party 0's constant input is multiplied and output."""
    rec = Recorder(e.channel)
    e.channel = rec
    x = e.input(0, F.from_int64(np.full(n, secret_value)) if e.party == 0 else None, n)
    e.output(x * x, 0)
    return b"".join(m for m in rec.seen if len(m) >= 16 * n) if e.party == 1 else None


def owner_output(e, key_shares: list, xs: np.ndarray, cheat: str):
    """The product x * x sealed for an owner outside the quorum; party 1 may cheat."""
    from enigma.mpc import client

    my_key = key_shares[e.party]
    if cheat == "key" and e.party == 1:
        my_key = F.add(my_key, F.const(1).reshape(1, 2))
    key = client.key_from_shares(e, my_key)
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, xs.size)
    value, tag = client.seal_output(e, x * x, key)
    if cheat == "share" and e.party == 1:
        value[0, 0] ^= np.uint64(1)
    return value, tag


def tagged_inputs(e, values, tags, key_shares, scenarios):
    """Every party inputs its additive shares of values, tags and the key, once per
    scenario; in a scenario {party: (d, e, g)} that party adds d, e and g to its value, tag
    and key contributions. Returns one verdict per scenario: "ok" or "InputCheckError" (a
    failed check leaves every engine in step, so the next scenario runs on)."""
    from enigma.mpc.inputs import InputCheckError, check_tags
    from enigma.sharing import additive

    F = e.field
    n = len(values)
    x = additive.split(F, F.from_int64(np.asarray(values)), e.parties, PRG(b"x" * 32))[e.party]
    y = additive.split(F, np.asarray(tags, dtype=np.uint64).reshape(-1, 2), e.parties,
                       PRG(b"y" * 32))[e.party]
    k = np.asarray(key_shares[e.party], dtype=np.uint64).reshape(1, 2)
    verdicts = []
    for shifts in scenarios:
        d, t, g = shifts.get(e.party, (0, 0, 0))
        mine = np.concatenate([F.add(x, F.from_int64(np.full(n, d))),
                               F.add(y, F.from_int64(np.full(n, t))),
                               F.add(k, F.from_int64(np.array([g])))])
        got = [e.input(p, mine if p == e.party else None, 2 * n + 1) for p in range(e.parties)]
        total = sum(got[1:], got[0])
        try:
            check_tags(e, total[:n], total[n:2 * n], total[2 * n:])
            verdicts.append("ok")
        except InputCheckError:
            verdicts.append("InputCheckError")
    return verdicts


def chunked_products(e, xs: np.ndarray, ys: np.ndarray, budget: int):
    """Products and dot products over (3, n, 2) arrays, the shapes of a k-means step:
    summed along the long axis (chunks add up) and along a short one (chunks are joined);
    once with the default memory budget, once with `budget`. Returns the rounds of each."""
    n = xs.size // 6
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, (3, n, 2))
    y = e.input(1, F.from_int64(ys) if e.party == 1 else None, (3, n, 2))
    runs = []
    for memory in (e.memory_budget, budget):
        e.memory_budget = memory
        rounds = e.stats.rounds
        prod, square = e.mul_many([(x, y), (x[0], x[0])])
        out = dict(prod=prod, square=square, along=e.dot(x, y, axis=1),
                   across=e.dot(x, y, axis=2))
        runs.append((e.stats.rounds - rounds, {k: e.output(v, 0) for k, v in out.items()}))
    return runs


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


def peak_growth(e, xs: np.ndarray, bits: int):
    """Peak RSS growth (MB) of this party while it compares, checks and outputs xs < 0.

    A smaller comparison of a few chunks goes first, so that one-time costs (numba
    compiling a kernel for a new layout takes hundreds of MB on a fresh checkout without
    its cache; the allocator's first arenas) are paid before the peak is reset
    (`clear_refs` 5) and measured from there."""
    n = min(xs.size, 6000)
    warm = e.input(0, F.from_int64(xs[:n]) if e.party == 0 else None, n)
    e.output(cmp.ltz(e, warm, bits=bits), 0)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    rss = _status_kb("VmRSS")
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, xs.size)
    out = e.output(cmp.ltz(e, x, bits=bits), 0)
    return (_status_kb("VmHWM") - rss) / 1024, out


def truncations(e, xs: np.ndarray, shifts: list[int]):
    """Several truncations of (a, b)-shaped slices of xs in one `trunc_many`."""
    from enigma.mpc.fixed import trunc_many

    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, xs.shape)
    outs = trunc_many(e, [x[i] for i in range(len(shifts))], shifts)
    return [e.output(o, 0) for o in outs]
