"""Pre-generation: the stock serves a planned program, and `enigma prep local` reports a rate."""

import json

import numpy as np
from click.testing import CliRunner

from enigma.app.cli import main
from enigma.field import Field
from enigma.mpc.runner import run_local
from enigma.prep.commands import pregenerate
from enigma.prep.provider import HEProviderFactory

F = Field()
PLAN = [("triples", (10,)), ("input_masks", (1, 4))]


def planned(e):
    stock = pregenerate(e.provider, 100, plan=PLAN)
    made = e.provider.produced["triples"]
    t = stock.triples(10)
    masks = stock.input_masks(1, 4)
    a, b, c, r = e.open(*(e.secret(s) for s in (t.a, t.b, t.c, masks.r)))
    e.check()
    return dict(served=stock.served, on_demand=stock.produced_on_demand, made=made,
                after=e.provider.produced["triples"], ok=bool(np.array_equal(F.mul(a, b), c)),
                mask_ok=masks.clear is None or bool(np.array_equal(masks.clear, r)))


def test_pregenerated_stock_serves_the_plan_without_new_production():
    for r in run_local(planned, parties=2, provider_factory=HEProviderFactory(), timeout=240,
                       deadline=400):
        assert r["served"] == 2 and r["on_demand"] == 0
        assert r["made"] == r["after"] == 16384
        assert r["ok"] and r["mask_ok"]


def test_prep_local_command_reports_json_without_secrets():
    result = CliRunner().invoke(main, ["prep", "local", "--parties", "2", "--triples", "5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["parties"] == 2 and report["triples"] == 16384
    assert report["triples_per_second"] > 0
    assert set(report) == {"parties", "triples", "bits", "seconds", "triples_per_second"}


def test_prep_local_refuses_a_quorum_of_one():
    result = CliRunner().invoke(main, ["prep", "local", "--parties", "1"])
    assert result.exit_code != 0 and "at least 2 parties" in result.output
