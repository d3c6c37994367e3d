"""The tag check on inputs from storage: honest inputs pass, any shifted contribution of a
value, a tag or a key share is caught, between 3 real processes."""

import numpy as np
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


def _run(scenarios, values=VALUES) -> list[str]:
    """Every party's verdicts must agree; the verdict of each scenario."""
    tags = F.mul(F.from_int64(np.asarray(values)), KAPPA)
    keys = additive.split(F, KAPPA, 3)
    out = run_local(prog.tagged_inputs, args=(values, tags, keys, scenarios),
                    provider_factory=DEALER)
    assert out[0] == out[1] == out[2]
    return out[0]


def test_honest_inputs_pass_and_every_shifted_contribution_is_caught():
    shifts = {"value": (1, 0, 0), "tag": (0, 1, 0), "key": (0, 0, 1),
              "value-and-tag": (5, 5, 0), "value-and-key": (-3, 0, 2)}
    scenarios = [{}] + [{1: s} for s in shifts.values()] + [{}]
    assert _run(scenarios) == ["ok"] + ["InputCheckError"] * len(shifts) + ["ok"]


def test_a_key_shift_on_all_zero_data_changes_nothing_and_passes():
    """The only undetected shift: a key share moved when every value is 0, which leaves the
    values (and so every result) exactly as stored."""
    assert _run([{2: (0, 0, 9)}], values=[0, 0, 0]) == ["ok"]


@settings(max_examples=3, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**62, 2**62), st.integers(-2**62, 2**62),
                          st.integers(0, 2)), min_size=6, max_size=6))
def test_colluding_shifts_are_caught(draws):
    """Two colluders shift values by d and d' (d' = -d when a tag moves by t too): the check
    fails whenever what was input is not what was stored."""
    scenarios, want = [], []
    for d, t, who in draws:
        scenarios.append({who: (d, t, 0), (who + 1) % 3: (-d if t else d, 0, 0)})
        want.append("InputCheckError" if t or d else "ok")
    assert _run(scenarios) == want
