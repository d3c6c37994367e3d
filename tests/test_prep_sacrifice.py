"""Malicious nodes in the HE preprocessing: caught before any triple is used.

Party 1 runs the real provider but adds an error to its share of the cross
terms of the products (not of the MACs, which it then computes honestly on the
wrong c): every MAC check passes, so only the sacrifice can notice. Or it
sends truncated ciphertexts, or returns products at the wrong level: the
others refuse them and name it.
"""

import pytest

from enigma.field import Field
from enigma.mpc.runner import PartyFailed, run_local
from enigma.prep.provider import HEProvider

pytestmark = pytest.mark.slow  # real processes and real BFV batches

F = Field()


class CorruptingFactory:
    """Party `liar` adds `error` to element `index` of its product share (real HE otherwise)."""

    needs_channel = True

    def __init__(self, liar: int, index: int, error: int) -> None:
        self.liar, self.index, self.error = liar, index, error

    def __call__(self, field, party, parties, *, channel):
        provider = HEProvider(field, party, parties, channel)
        if party == self.liar:
            honest = provider.pairwise.cross
            n = provider.batch

            def cross(encrypted, v):
                share = honest(encrypted, v)
                if v.shape[0] == 2 * n:  # the products c and c', not a MAC
                    share[self.index] = field.add(share[self.index], field.const(self.error))
                return share

            provider.pairwise.cross = cross
        return provider


def take_triples(e, n: int):
    t = e.provider.triples(n)
    (c,) = e.open(e.secret(t.c))
    e.check()
    return c


@pytest.mark.parametrize("index, error", [(0, 1), (16383, -(2**100))])
def test_a_corrupted_product_is_caught_by_the_sacrifice(index, error):
    with pytest.raises(PartyFailed) as info:
        run_local(take_triples, args=(10,), provider_factory=CorruptingFactory(1, index, error),
                  timeout=240, deadline=400)
    assert info.value.kinds() == {"SacrificeError"}
    assert set(info.value.errors) == {0, 1, 2}
    assert all(f"index {index}" in msg for _, msg in info.value.errors.values())



class Garbling:
    """A channel that truncates every ciphertext-sized frame party 1 sends after setup."""

    def __init__(self, mesh) -> None:
        self.mesh, self.party, self.parties = mesh, mesh.party, mesh.parties
        self.armed = False

    def send(self, to, *buffers):
        if self.armed:
            buffers = tuple(bytes(memoryview(b).cast("B")[:1000]) if len(memoryview(b).cast("B"))
                            > 100_000 else b for b in buffers)
        self.mesh.send(to, *buffers)

    def recv(self, frm):
        return self.mesh.recv(frm)

    def broadcast(self, *buffers):
        for to in range(self.parties):
            if to != self.party:
                self.send(to, *buffers)
        return {frm: self.recv(frm) for frm in range(self.parties) if frm != self.party}



def _refused_by_both_honest_parties(factory, detail: str) -> None:
    """Party 1 misbehaves: parties 0 and 2 both stop with a PairwiseError naming it."""
    with pytest.raises(PartyFailed) as info:
        run_local(take_triples, args=(10,), provider_factory=factory, timeout=240, deadline=400)
    honest = {p: e for p, e in info.value.errors.items() if p != 1}
    assert set(honest) == {0, 2}
    assert all(kind == "PairwiseError" and "party 1" in msg and detail in msg
               for kind, msg in honest.values())

class GarblingFactory:
    needs_channel = True

    def __call__(self, field, party, parties, *, channel):
        if party != 1:
            return HEProvider(field, party, parties, channel)
        garbling = Garbling(channel)
        provider = HEProvider(field, party, parties, garbling)
        provider.pairwise  # noqa: B018 - the session's keys and Enc(alpha), which the others
        # make at their first production (the first triples request, as here)
        garbling.armed = True
        return provider


def test_a_garbage_ciphertext_aborts_and_names_its_sender():
    _refused_by_both_honest_parties(GarblingFactory(), "party 1")


class FullLevelFactory:
    """Party 1 returns its products unswitched (at all 4 data primes) instead of at 2."""

    needs_channel = True

    def __call__(self, field, party, parties, *, channel):
        provider = HEProvider(field, party, parties, channel)
        if party == 1:
            import seal

            from enigma.prep import he, pairwise

            def rerandomise(bfv, i, public_ntt, product, mask, u_ntt, prg):
                inst = bfv.instances[i]
                out = he.encrypt_zero_ntt(inst, public_ntt, u_ntt)
                if product is not None:
                    inst.evaluator.add_inplace(out, product)
                inst.evaluator.transform_from_ntt_inplace(out)
                inst.evaluator.add_plain_inplace(out, mask)
                return out.to_string(seal.compr_mode_type.none)

            pairwise.rerandomise = rerandomise
        return provider


def test_a_product_returned_at_the_wrong_level_is_refused():
    _refused_by_both_honest_parties(FullLevelFactory(), "level of 4 primes; expected 2")
