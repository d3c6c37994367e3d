"""Issue 17, point 4: where a bound cannot be small, the compiler says so before the run and
suggests a rescaling (`lang/advice.py`).

The bounds are read from one run on synthetic data at the real row count (threads, the test
dealer); a flagged reveal gets one warning line naming it, its bound, the cause and a
suggestion, which the advice measured. Here the suggestion is also followed on the real
data/benefits.csv, and the stated bound of the real run shrinks as measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from scipy import stats

from enigma.app.cli import main
from enigma.lang.advice import RELATIVE_LIMIT, STATISTIC_LIMIT, review
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.lang.simulation import thread_quorum
from enigma.prep.dealer import DealerFactory

ROOT = Path(__file__).resolve().parents[1]
BENEFITS = Schema.load(ROOT / "examples" / "benefits.yaml")
DEALER = DealerFactory(b"test_lang_advice dealer seed....", insecure=True)
ROWS = 300

LOOSE = 'reveal(anova(data.rr, data.joblost), "rr_by_reason")\n'
TIGHT = """
reveal(mean(data.rr), "mean_rr")
reveal(pearsonr(data.age, data.tenure), "r")
reveal(group_by(data.sex, data.tenure, "mean"), "tenure_by_sex")
reveal(std(data.stateur), "sd")
"""
T_RR = 'reveal(ttest(where(data.rr, data.ui), where(data.rr, not data.ui)), "rr_by_ui")\n'


def test_a_loose_bound_is_flagged_with_its_cause_and_a_measured_rescaling() -> None:
    """eta^2 of rr (fixed point in [0, 0.7]) over all 4,877 rows: its storage term
    4 delta / (0.7/256) is 0.011, above the statistics' limit of 0.01."""
    (b,) = review(LOOSE, BENEFITS)
    assert b.worst is not None and b.worst.bound >= STATISTIC_LIMIT
    assert b.warning is not None
    assert b.warning.startswith("'rr_by_reason': bound 0.011 on anova's eta_squared is large")
    assert "storage rounding of rr" in b.warning and "store rr times 10 " in b.warning
    assert b.rescaling is not None and (b.rescaling.columns, b.rescaling.factor) == (("rr",), 10)
    assert b.rescaling.measured < STATISTIC_LIMIT / 5
    assert "\n" not in b.warning


def test_tight_bounds_are_reported_without_a_warning() -> None:
    bounds = review(TIGHT, BENEFITS)
    assert [b.name for b in bounds] == ["mean_rr", "r", "tenure_by_sex", "sd"]
    assert all(b.warning is None and b.rescaling is None for b in bounds), bounds
    mean_rr = bounds[0]
    assert mean_rr.worst.scale == 0.7 and 0 < mean_rr.bound < RELATIVE_LIMIT * 0.7
    assert "bound 'mean_rr': 2.3e-05" in mean_rr.line()


def test_following_the_suggestion_shrinks_the_stated_bound_on_the_real_data() -> None:
    """The t-test of rr between claimants and the others on 300 rows of benefits: a worst
    case of about 12 (storage rounding over the spread floor 0.7/256). The advice says to
    store rr times 10^4; done on the real data, the run states what the advice measured,
    below the limit, and t is the same statistic (scale-free) within both bounds."""
    (b,) = review(T_RR, BENEFITS, ROWS)
    assert b.worst.bound > 5 and b.rescaling is not None and not b.rescaling.integer
    k = b.rescaling.factor
    assert k == 10_000 and b.rescaling.measured < STATISTIC_LIMIT
    values = {c: v[:ROWS] for c, v in BENEFITS.read_csv(ROOT / "data" / "benefits.csv").items()}
    before = run_mpc(T_RR, BENEFITS, values, provider_factory=DEALER,
                     quorum=thread_quorum).results["rr_by_ui"]
    scaled = {**values, "rr": values["rr"] * k}
    after = run_mpc(T_RR, b.rescaling.schema(BENEFITS), scaled, provider_factory=DEALER,
                    quorum=thread_quorum).results["rr_by_ui"]
    assert before.error[0] == b.worst.bound  # stated before the run: what the run states
    assert after.error[0] == b.rescaling.measured
    assert after.error[0] < before.error[0] / 1000
    ui = values["ui"].astype(bool)
    want = stats.ttest_ind(values["rr"][ui], values["rr"][~ui], equal_var=False).statistic
    for r in (before, after):
        assert abs(r.value[0] - want) <= r.error[0]
        assert abs(r.detail["statistic"] - want) <= r.detail["statistic_error"]
    # the owner's bound from diff / se shrinks too: the storage terms are 2^-17 over an se
    # 10^4 times larger
    assert after.detail["statistic_error"] < before.detail["statistic_error"] / 10


def test_a_fit_on_fixed_point_features_is_told_to_store_them_as_integers() -> None:
    """ols(rr ~ age + tenure + stateur): stateur is fixed point, so its rounding (errors in
    the variables) enters the worst case at the eigenvalue floor, where the intercept's se is
    the largest against its limit; stored as an integer (times 100) the measured bound is
    the exact-feature one, about a third. The owner's table, from the revealed fit itself,
    is far below the limit: the warning says so, and the line shows it."""
    src = 'reveal(ols(data.rr, [data.age, data.tenure, data.stateur]), "fit")\n'
    (b,) = review(src, BENEFITS, ROWS)
    assert b.warning is not None and "features stateur are fixed-point" in b.warning
    assert b.rescaling is not None and b.rescaling.integer
    assert b.rescaling.columns == ("stateur",) and b.rescaling.factor == 100
    assert b.rescaling.measured < b.worst.bound / 2
    assert b.worst.bound < 1e-2  # the worst case no longer grows with the rows (was 1.8e6)
    assert b.owner is not None and b.owner < b.worst.limit / 10
    assert "the owner's table bounds it from the revealed fit" in b.warning
    assert "below the limit" in b.warning
    assert "the owner's from the revealed fit" in b.line()
    column = b.rescaling.schema(BENEFITS).column("stateur")
    assert (column.kind, column.lo, column.hi) == ("int", 0, 2000)


def test_a_divisor_that_can_be_zero_is_named() -> None:
    src = ('reveal(mean(data.age) / mean(data.tenure), "ratio")\n'
           'reveal(mean(data.tenure) / mean(data.age), "inverse")\n')
    ratio, inverse = review(src, BENEFITS, ROWS)
    assert ratio.warning is not None and ratio.rescaling is None
    assert "the divisor on line 1 can be as small as 0 (its range [0, 50])" in ratio.warning
    assert "narrow the schema range of tenure away from 0" in ratio.warning
    assert inverse.warning is None  # age >= 20: the divisor stays large


def test_estimate_and_check_print_the_bounds_and_the_warning(tmp_path) -> None:
    script = tmp_path / "loose.py"
    script.write_text(LOOSE)
    schema = str(ROOT / "examples" / "benefits.yaml")
    out = CliRunner().invoke(main, ["script", "estimate", str(script), "--schema", schema])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.endswith("error bounds at 4,877 rows (stated before the run: the worst "
                             "case over all data in the schema's ranges):") for line in lines)
    warning = next(line for line in lines if line.startswith("  warning: 'rr_by_reason'"))
    assert "store rr times 10" in warning
    quiet = CliRunner().invoke(main, ["script", "estimate", str(script), "--schema", schema,
                                      "--no-bounds"])
    assert quiet.exit_code == 0 and "error bounds" not in quiet.output
    checked = CliRunner().invoke(main, ["check", str(script), "--schema", schema, "--json"])
    assert checked.exit_code == 0, checked.output
    (bound,) = json.loads(checked.stdout.splitlines()[-1])["bounds"]
    assert bound["name"] == "rr_by_reason" and bound["rescaling"]["factor"] == 10
    assert np.isclose(bound["bound"], 0.011, rtol=0.05)
    unbound = CliRunner().invoke(main, ["check", str(script), "--schema", schema, "--json",
                                        "--no-bounds"])
    assert unbound.exit_code == 0 and "bounds" not in json.loads(unbound.stdout.splitlines()[-1])
