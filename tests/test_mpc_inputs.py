"""The tag check on inputs from storage: honest inputs pass, any shifted contribution of a
value, a tag or a key share is caught, between 3 real processes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.field import Field
from enigma.mpc.runner import run_local
from enigma.prep.dealer import DealerFactory
from enigma.sharing import additive

from . import mpc_programs as prog

F = Field()
DEALER = DealerFactory(b"test-seed-inputs-0123456789abcdef", insecure=True)
VALUES = [0, 3, -7, 2**40, 12, 0, 5]
KAPPA = F.random(1)


def _run(shifts, values=VALUES):
    tags = F.mul(F.from_int64(np.asarray(values)), np.repeat(KAPPA, len(values), axis=0))
    keys = additive.split(F, KAPPA, 3)
    return run_local(prog.tagged_inputs, args=(values, tags, keys, shifts),
                     provider_factory=DEALER)


def test_honest_inputs_pass():
    assert _run({}) == ["ok", "ok", "ok"]


@pytest.mark.parametrize("shift", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (5, 5, 0), (-3, 0, 2)],
                         ids=["value", "tag", "key", "value-and-tag", "value-and-key"])
def test_a_shifted_contribution_is_caught_by_every_party(shift):
    assert _run({1: shift}) == ["InputCheckError"] * 3


def test_a_key_shift_on_all_zero_data_changes_nothing_and_passes():
    """The only undetected shift: a key share moved when every value is 0, which leaves the
    values (and so every result) exactly as stored."""
    assert _run({2: (0, 0, 9)}, values=[0, 0, 0]) == ["ok", "ok", "ok"]


@settings(max_examples=4, deadline=None)
@given(st.integers(-2**62, 2**62), st.integers(-2**62, 2**62), st.integers(0, 2))
def test_colluding_shifts_are_caught(d, t, who):
    """Two colluders shift by opposite amounts on values only (the sum moves by 0 only if
    d = -d'): the tag check fails whenever the stored values changed."""
    shifts = {who: (d, t, 0), (who + 1) % 3: (-d if t else d, 0, 0)}
    changed = t != 0 or d != 0
    assert _run(shifts) == (["InputCheckError"] * 3 if changed else ["ok"] * 3)
