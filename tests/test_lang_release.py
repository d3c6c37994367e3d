"""Disclosure control of the language (issue 21): n_min suppression, DP noise, the review.

The plain path (`run_plain` under a `Release`) is the reference; the MPC path runs the
same script on a 3-party thread quorum with the test dealer and must withhold exactly the
same cells, never sealing a withheld one (the sealed vector and its layout are inspected).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.lang.checker import check
from enigma.lang.disclosure import FEW_ROWS, laplace_bound
from enigma.lang.plain import dry_run, run_plain
from enigma.lang.release import PolicyError, Release, ReleasePolicy
from enigma.lang.results import as_json, labelled, text
from enigma.lang.review import review
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.lang.simulation import thread_quorum
from enigma.prep.dealer import DealerFactory

ROOT = Path(__file__).resolve().parents[1]
ROWS = 200
DEALER = DealerFactory(b"test_lang_release dealer seed....", insecure=True)
SCHEMA = Schema.load(ROOT / "examples" / "acs12.yaml")
VALUES = {k: v[:ROWS] for k, v in SCHEMA.read_csv(ROOT / "data" / "acs12.csv").items()}

# In the first 200 rows: race asian 9, black 19, other 10, white 162; 85+ year olds: few.
SMALL = """
reveal(group_by(data.race), "n")
reveal(group_by(data.race, data.age, "mean"), "age")
reveal(count(data.age, where=data.age > 85), "old")
reveal(mean(data.hrs_work, where=data.age > 85), "old_hours")
reveal(mean(data.hrs_work), "hours")
n = group_by(data.race)
reveal(n[1] / count(data.age), "black_share")
"""
N_MIN = 15
DELTA = 1e-9
"""The jobs' δ under DP: it covers what the jointly drawn noise adds (about 1e-12 each)."""


def _plain(source: str, release: Release | None, seed: int | None = None) -> dict[str, Any]:
    return run_plain(check(source, SCHEMA), SCHEMA, VALUES, release, noise_seed=seed).results


def _counts() -> np.ndarray:
    codes = SCHEMA.column("race").encoding.to_integers(VALUES["race"])
    return np.bincount(codes, minlength=4)


def test_release_needs_a_spend_exactly_when_the_policy_has_a_budget() -> None:
    with pytest.raises(PolicyError, match="must say how much"):
        Release(ReleasePolicy(epsilon_budget=1.0))
    with pytest.raises(PolicyError, match="no ε budget"):
        Release(ReleasePolicy(), epsilon=0.5)
    assert Release(ReleasePolicy(epsilon_budget=1.0), epsilon=0.5).epsilon == 0.5


def test_plain_path_withholds_small_groups_in_count_mean_and_group_by() -> None:
    """Cells over fewer than n_min rows are NaN with a reason; the others are unchanged."""
    free = _plain(SMALL, None)
    got = _plain(SMALL, Release(ReleasePolicy(n_min=N_MIN)))
    small = _counts() < N_MIN
    assert small.tolist() == [True, False, True, False]
    for name in ("n", "age"):
        assert np.all(np.isnan(got[name].value[small]))
        assert np.array_equal(got[name].value[~small], free[name].value[~small])
        assert list(got[name].suppressed) == [FEW_ROWS if s else "" for s in small]
    old = int(np.sum(VALUES["age"] > 85))
    assert old < N_MIN
    for name in ("old", "old_hours"):
        assert np.isnan(got[name].value) and got[name].suppressed.item() == FEW_ROWS
    assert got["hours"].value == free["hours"].value  # the whole table: public 200 rows
    assert got["black_share"].value == free["black_share"].value  # 19 rows and 200 rows


def test_mpc_withholds_the_same_cells_and_never_seals_them() -> None:
    """The pass bits are opened, nothing else of a withheld cell: the sealed vector holds
    exactly the released cells, and the owner reads NaN and the reason for the others."""
    release = Release(ReleasePolicy(n_min=N_MIN))
    replies: list[dict] = []

    def quorum(*args: Any, **kwargs: Any) -> list:
        replies[:] = thread_quorum(*args, **kwargs)
        return replies

    got = run_mpc(SMALL, SCHEMA, VALUES, provider_factory=DEALER, quorum=quorum,
                  release=release).results
    want = _plain(SMALL, release)
    for name, r in want.items():
        assert np.array_equal(np.isnan(r.value), np.isnan(got[name].value)), name
        keep = ~np.isnan(r.value)
        assert np.all(np.abs(got[name].value[keep] - r.value[keep]) <= got[name].error[keep]
                      + 1e-9), name
        assert np.array_equal(got[name].suppressed, r.suppressed), name
    layout = replies[0]["layout"]
    kept = sum(int(np.sum(entry[6]["kept"])) for entry in layout)
    cells = sum(int(np.prod(entry[1])) for entry in layout)
    assert kept == cells - 2 - 2 - 1 - 1  # two races in n and in age, old, old_hours
    for reply in replies:
        assert reply["sealed"][0].shape[0] == kept  # (x, kx) shares of released cells only


def test_results_show_the_reason_and_the_noise() -> None:
    release = Release(ReleasePolicy(n_min=N_MIN, epsilon_budget=4.0, delta_budget=DELTA),
                      epsilon=2.0, delta=DELTA)
    script = check(SMALL.replace('reveal(n[1] / count(data.age), "black_share")', ""), SCHEMA)
    got = labelled(script, run_plain(script, SCHEMA, VALUES, release, noise_seed=3).results)
    assert text("old", got["old"]) == f"old: {FEW_ROWS}"
    assert "noise scale" in text("hours", got["hours"])
    frame_text = text("n", got["n"])
    assert "reason" in frame_text and "noise_scale" in frame_text
    js = as_json(got["n"])
    assert js["value"][0] is None and js["suppressed"][0] == FEW_ROWS
    assert js["noise_scale"] == [5 * 1.0 / 2.0] * 4  # ε 2 over 5 outputs, sensitivity 1


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=100), st.integers(min_value=1, max_value=60))
def test_support_of_a_random_filter_is_its_exact_row_count(threshold: int, n_min: int) -> None:
    """A count and a mean over `age > t` are released exactly when numpy's count of those
    rows reaches n_min; the mean's support is the filter's count, not the table's."""
    source = (f"reveal(count(data.age, where=data.age > {threshold}), \"c\")\n"
              f"reveal(mean(data.hrs_work, where=data.age > {threshold}), \"m\")\n")
    got = _plain(source, Release(ReleasePolicy(n_min=n_min)))
    rows = int(np.sum(VALUES["age"] > threshold))
    for name in ("c", "m"):
        assert bool(np.isnan(got[name].value)) == (rows < n_min), (name, rows)
    if rows >= n_min:
        assert got["c"].value == rows


def _differencing_pair() -> tuple[str, str, float]:
    """Two scripts whose filters differ by one person (the richest adult: the only income
    of at least 350 000), and that person's income clipped as the scripts clip it."""
    incomes, ages = VALUES["income"].astype(float), VALUES["age"]
    adults = ages >= 18
    assert int(np.sum(adults & (incomes >= 350000))) == 1 and np.sum(adults) > 3 * N_MIN
    a = "reveal(sum(clip(data.income, 0, 100000), where=data.age >= 18), \"s\")"
    b = ("reveal(sum(clip(data.income, 0, 100000), where=(data.age >= 18) and "
         "(data.income < 350000)), \"s\")")
    return a, b, min(float(incomes.max()), 100000.0)


def test_a_differencing_attack_is_noised_under_dp() -> None:
    """Two jobs whose filters differ by one person: both groups are large, so n_min cannot
    stop it and the difference of the exact sums is that person's income. Under DP the
    difference is the person's income plus the difference of two noises: over seeds it
    spreads with the noise scale (sd 2 b for discrete Laplace of scale b), and it is the
    income itself only by chance."""
    a, b, income = _differencing_pair()
    policy = ReleasePolicy(n_min=N_MIN, epsilon_budget=100.0, delta_budget=DELTA)
    exact = _plain(a, Release(ReleasePolicy(n_min=N_MIN)))["s"].value - \
        _plain(b, Release(ReleasePolicy(n_min=N_MIN)))["s"].value
    assert exact == income  # the attack works without noise
    spreads = []
    for epsilon in (0.5, 2.0):
        release = Release(policy, epsilon=epsilon, delta=DELTA)
        diffs = np.array([_plain(a, release, seed)["s"].value - _plain(b, release, seed + 999)
                          ["s"].value for seed in range(150)])
        scale = 100000 / epsilon
        assert np.mean(diffs == exact) < 0.05
        sd = float(np.std(diffs))
        assert 0.7 * 2 * scale < sd < 1.3 * 2 * scale, (epsilon, sd)
        spreads.append(sd)
    assert spreads[0] > 2.5 * spreads[1]  # four times the scale, four times the spread


def test_mpc_noise_is_drawn_inside_and_stated() -> None:
    """A DP count and sum on the quorum: integer noise within the draw's bound, the scale
    sensitivity / ε share in the result, and a withheld cell still withheld."""
    pytest.importorskip("enigma.mpc.noise", reason="the joint noise (branch noise) is not "
                                                   "on main yet")
    source = ("reveal(group_by(data.race), \"n\")\n"
              "reveal(sum(data.hrs_work), \"hours\")\n")
    release = Release(ReleasePolicy(n_min=N_MIN, epsilon_budget=10.0, delta_budget=DELTA),
                      epsilon=4.0, delta=DELTA)
    got = run_mpc(source, SCHEMA, VALUES, provider_factory=DEALER, quorum=thread_quorum,
                  release=release).results
    counts = _counts().astype(float)
    small = counts < N_MIN
    assert np.all(np.isnan(got["n"].value[small]))
    noise = got["n"].value[~small] - counts[~small]
    assert np.all(noise == np.rint(noise))
    assert np.all(got["n"].noise == 0.5)  # sensitivity 1, ε 4 over 2 outputs
    assert got["hours"].noise.item() == 100 / 2.0  # hours in [0, 100]
    assert got["hours"].noise_bound.item() == laplace_bound(50.0, 1.0)


def test_review_reports_sensitivity_and_refuses_what_dp_cannot_judge() -> None:
    source = """
reveal(sum(clip(data.income, 0, 1000)), "clipped")
reveal(group_by(data.race, data.age, "sum"), "ages")
reveal(sum(data.income) / count(data.age), "ratio")
reveal(sum(data.income / (data.age + 1)), "unbounded")
reveal(median(data.age), "median")
reveal(std(clip(data.income, 0, 1000)), "sd")
"""
    script = check(source, SCHEMA)
    _, plain = review(script, SCHEMA, Release(ReleasePolicy(n_min=5)))
    by = {v.name: v for v in plain}
    assert by["clipped"].sensitivity == 1000 and by["clipped"].kind == "sum"
    assert by["ages"].sensitivity == 100 and by["ages"].cells
    assert by["ratio"].refused is None  # no DP: a derived value of aggregates is judged
    assert "order statistic" in by["median"].refused
    _, private = review(script, SCHEMA, Release(ReleasePolicy(
        n_min=5, epsilon_budget=1.0, delta_budget=DELTA), epsilon=1.0, delta=DELTA))
    by = {v.name: v for v in private}
    assert "computed from aggregates" in by["ratio"].refused
    assert by["unbounded"].refused is not None and "unbounded" in by["unbounded"].refused
    assert "std() has no noise mechanism" in by["sd"].refused
    assert by["clipped"].noise_scale == 1000 / (1.0 / 2)  # two outputs get out


def test_dry_run_shows_the_synthetic_cells_withheld() -> None:
    script = check("reveal(count(data.age, where=data.age > 97), \"c\")", SCHEMA)
    out = dry_run(script, SCHEMA, rows=300, release=Release(ReleasePolicy(n_min=50)))
    assert out.synthetic and out.results["c"].suppressed.item() == FEW_ROWS


def test_check_command_reports_the_policy(tmp_path: Path) -> None:
    from enigma.lang.commands import check as check_command

    script = tmp_path / "s.py"
    script.write_text(f"# schema: {ROOT / 'examples' / 'acs12.yaml'}\n"
                      "reveal(group_by(data.race), \"n\")\nreveal(median(data.age), \"m\")\n")
    policy = tmp_path / "policy.toml"
    policy.write_text(f"n_min = 10\nepsilon_budget = 3.0\ndelta_budget = {DELTA}\n")
    out = CliRunner().invoke(check_command, [str(script), "--no-run", "--policy", str(policy),
                                             "--epsilon", "1", "--delta", str(DELTA)])
    assert out.exit_code == 1, out.output
    assert "policy 'n': count, sensitivity 1 per cell" in out.output
    assert "noise scale 1" in out.output
    assert "policy 'm': REFUSED" in out.output


def test_a_dominance_rule_lets_sums_out_and_refuses_what_it_cannot_judge() -> None:
    """Counts, sums and means go out under a dominance rule (the run decides it per cell,
    tests/test_lang_dominance.py); a variance, whose dominance is not computed, is refused."""
    policy = ReleasePolicy(n_min=5, dominance_k=1, dominance_p=80.0)
    source = ("reveal(count(data.age), \"c\")\nreveal(sum(data.hrs_work), \"s\")\n"
              "reveal(std(data.hrs_work), \"sd\")\n")
    _, verdicts = review(check(source, SCHEMA), SCHEMA, Release(policy))
    by = {v.name: v for v in verdicts}
    assert by["c"].refused is None and by["s"].refused is None
    assert "dominance" in by["sd"].refused


def test_the_noise_distance_is_in_the_jobs_delta_and_a_short_delta_is_refused() -> None:
    """Each noised value states what its draw adds to δ ((1 + e^ε_i) · cells · the plan's
    distance), equal on both paths; the review shows it; a job stating less is refused
    before any noise is drawn or bit opened."""
    import math

    from enigma.lang.errors import ScriptError
    from enigma.mpc.noise import plan

    source = "reveal(group_by(data.race), \"n\")\nreveal(sum(data.hrs_work), \"hours\")\n"
    policy = ReleasePolicy(n_min=N_MIN, epsilon_budget=10.0, delta_budget=DELTA)
    release = Release(policy, epsilon=4.0, delta=DELTA)
    want = {"n": (1 + math.exp(2.0)) * 4 * plan(1 / 2.0).tv_distance,
            "hours": (1 + math.exp(2.0)) * plan(100 / 2.0).tv_distance}
    plain = _plain(source, release, seed=1)
    got = run_mpc(source, SCHEMA, VALUES, provider_factory=DEALER, quorum=thread_quorum,
                  release=release).results
    for name, delta in want.items():
        assert 0 < delta < 1e-10
        assert plain[name].delta == pytest.approx(delta, rel=1e-12)
        assert got[name].delta == pytest.approx(delta, rel=1e-12)
    assert "δ" in text("hours", plain["hours"]) and as_json(plain["n"])["delta"] > 0
    _, verdicts = review(check(source, SCHEMA), SCHEMA, release)
    assert [v.delta for v in verdicts] == pytest.approx([want["n"], want["hours"]])
    short = Release(policy, epsilon=4.0, delta=sum(want.values()) / 2)
    with pytest.raises(ScriptError, match="noise needs δ"):
        _plain(source, short, seed=1)
    with pytest.raises(ScriptError, match="noise needs δ"):
        run_mpc(source, SCHEMA, VALUES, provider_factory=DEALER, quorum=thread_quorum,
                release=short)
    _, verdicts = review(check(source, SCHEMA), SCHEMA, short)
    assert all("noise needs δ" in (v.refused or "") for v in verdicts)
    with pytest.raises(PolicyError, match="δ budget"):
        Release(policy, epsilon=1.0, delta=2 * DELTA)


def test_a_noised_mean_is_clamped_to_its_range_with_a_bound_to_match() -> None:
    """At ε small enough that the noise dwarfs the range, every noised mean still lies in
    the schema's [0, 100] (a mean of hours), on both paths, and its stated 95% bound is at
    most the range's width; unclamped, most draws would leave the range."""
    source = ("reveal(mean(data.hrs_work, where=data.age > 60), \"m\")\n"
              "reveal(group_by(data.race, data.hrs_work, \"mean\"), \"g\")\n")
    policy = ReleasePolicy(n_min=5, epsilon_budget=1.0, delta_budget=DELTA)
    release = Release(policy, epsilon=0.01, delta=DELTA)
    values = np.concatenate([np.concatenate([np.atleast_1d(r["m"].value), r["g"].value])
                             for r in (_plain(source, release, seed) for seed in range(40))])
    kept = values[~np.isnan(values)]
    assert kept.size > 40 and np.all((kept >= 0) & (kept <= 100))
    assert np.mean((kept == 0) | (kept == 100)) > 0.5  # the clamp is what kept them in range
    got = run_mpc(source, SCHEMA, VALUES, provider_factory=DEALER, quorum=thread_quorum,
                  release=release).results
    for r in got.values():
        v = np.atleast_1d(r.value)[~np.isnan(np.atleast_1d(r.value))]
        assert np.all((v >= -1e-3) & (v <= 100 + 1e-3))
        assert np.all(np.atleast_1d(r.noise_bound) <= 100)


def test_a_differencing_attack_on_the_quorum_is_noised_under_dp() -> None:
    """The differencing attack of the plain test above, on the MPC: under n_min alone the
    two jobs' sums differ by exactly the person's (clipped) income; under DP each job's
    noise is drawn jointly from its own preprocessing, and the difference is that income
    plus two independent noises of scale 10^5 / ε: equal to it only with probability about
    1 / (4 scale), and within the noises' stated bounds."""
    a, b, income = _differencing_pair()
    assert income == 100000.0

    def job(source: str, release: Release, seed: bytes) -> Any:
        dealer = DealerFactory(seed.ljust(32, b"."), insecure=True)
        return run_mpc(source, SCHEMA, VALUES, provider_factory=dealer, quorum=thread_quorum,
                       release=release).results["s"]

    exact = Release(ReleasePolicy(n_min=N_MIN))
    assert job(a, exact, b"a").value - job(b, exact, b"b").value == income  # it works
    private = Release(ReleasePolicy(n_min=N_MIN, epsilon_budget=10.0, delta_budget=DELTA),
                      epsilon=1.0, delta=DELTA)
    first, second = job(a, private, b"job one"), job(b, private, b"job two")
    diff = float(first.value - second.value)
    assert diff != income
    assert abs(diff - income) <= float(first.noise_bound + second.noise_bound) * 3
    assert float(first.noise) == 100000.0  # scale: sensitivity 10^5 over ε 1


def test_a_withheld_cell_of_a_range_away_from_zero_decodes() -> None:
    """A noised, clamped mean's range is its column's ([20, 90] here, not [0, 90]); a withheld
    cell has no value, and the owner's range check must not judge it (it once read it as
    0, outside the range, and refused the whole result)."""
    source = 'reveal(group_by(data.race, clip(data.age, 20, 90), "mean"), "ages")\n'
    release = Release(ReleasePolicy(n_min=N_MIN, epsilon_budget=2.0, delta_budget=DELTA),
                      epsilon=2.0, delta=DELTA)
    got = run_mpc(source, SCHEMA, VALUES, provider_factory=DEALER, quorum=thread_quorum,
                  release=release).results["ages"]
    small = _counts() < N_MIN
    assert np.array_equal(np.isnan(got.value), small)
    assert np.all((got.value[~small] >= 20 - 1e-3) & (got.value[~small] <= 90 + 1e-3))


def test_an_aggregate_carried_into_rows_and_aggregated_again_is_refused() -> None:
    """sum(x * 0 + m) is rows × m: the inner mean (withheld here: over fewer than n_min
    rows) or median (refused alone) must not get out through an outer sum over all rows."""
    source = """
reveal(mean(data.hrs_work, where=data.age > 85), "inner")
reveal(sum(data.hrs_work * 0 + mean(data.hrs_work, where=data.age > 85)), "carried")
reveal(sum(abs(data.age * 0 + median(data.age))), "median_carried")
reveal(sum(data.hrs_work - data.age), "rows_only")
"""
    _, verdicts = review(check(source, SCHEMA), SCHEMA, Release(ReleasePolicy(n_min=N_MIN)))
    by = {v.name: v for v in verdicts}
    assert "computed per row from an aggregate" in by["carried"].refused
    assert "computed per row from an aggregate" in by["median_carried"].refused
    assert by["rows_only"].refused is None and by["inner"].refused is None
    with pytest.raises(Exception, match="computed per row from an aggregate"):
        _plain(source, Release(ReleasePolicy(n_min=N_MIN)))


def test_a_group_by_sum_of_filtered_values_is_judged_on_the_rows_it_keeps() -> None:
    """group_by(key, where(x, mask), "sum"): its cells' row counts are the kept rows', as the
    count of the same filter says, not the key's alone."""
    source = """
reveal(group_by(data.race, where(data.hrs_work, data.age > 60), "count"), "n")
reveal(group_by(data.race, where(data.hrs_work, data.age > 60), "sum"), "s")
"""
    out = _plain(source, Release(ReleasePolicy(n_min=N_MIN)))
    withheld_n = np.isnan(np.asarray(out["n"].value, dtype=float))
    withheld_s = np.isnan(np.asarray(out["s"].value, dtype=float))
    assert withheld_n.any() and (withheld_n == withheld_s).all()


@pytest.mark.parametrize("name, text, says", [
    ("policy.yaml", "n_min: [10\nepsilon_budget: 1\n", "not valid YAML or JSON"),
    ("policy.toml", "n_min = = 10\n", "not valid TOML"),
    ("policy.json", "[1, 2]", "a release policy is a table of fields"),
])
def test_a_malformed_policy_file_is_one_line_naming_the_file(tmp_path: Path, name: str,
                                                              text: str, says: str) -> None:
    from enigma.lang.commands import check as check_command

    script = tmp_path / "s.py"
    script.write_text(f"# schema: {ROOT / 'examples' / 'acs12.yaml'}\n"
                      "reveal(count(data.age), \"n\")\n")
    policy = tmp_path / name
    policy.write_text(text)
    out = CliRunner().invoke(check_command, [str(script), "--no-run", "--policy", str(policy)])
    assert out.exit_code == 1, out.output
    assert isinstance(out.exception, SystemExit), out.exception
    line = [t for t in out.output.splitlines() if "release policy" in t]
    assert len(line) == 1 and str(policy) in line[0] and says in line[0], out.output


def test_the_tracker_does_not_keep_marked_values_alive() -> None:
    """A marked row-level intermediate (one that carries an aggregate) is freed with its last
    reference, and its id, reused by a new value, reads as plain rows again."""
    import gc

    from enigma.lang.disclosure import ROW, Disclosure, Tracked
    from enigma.lang.plain import Plain, PlainBackend

    schema = Schema.load(ROOT / "examples" / "acs12.yaml")
    tracked = Tracked(PlainBackend(schema, {}, 4), Release(ReleasePolicy(n_min=2)))
    carries = Disclosure(why="test", row=True)
    value = tracked.mark(Plain(np.arange(4.0)), carries)
    assert tracked.of(value) is carries and len(tracked.known) == 1
    del value
    gc.collect()
    assert tracked.known == {}
    assert tracked.of(Plain(np.arange(4.0))) is ROW
