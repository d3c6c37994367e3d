"""`enigma script dry-run / estimate / run` through click's runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from enigma.app.cli import main
from enigma.lang.schema import Schema

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "examples" / "average_age.py")
SCHEMA = str(ROOT / "examples" / "acs12.yaml")
DATA = str(ROOT / "data" / "acs12.csv")


def test_dry_run_says_the_data_is_synthetic() -> None:
    out = CliRunner().invoke(main, ["script", "dry-run", SCRIPT, "--schema", SCHEMA,
                                    "--rows", "100"])
    assert out.exit_code == 0, out.output
    assert "SYNTHETIC" in out.output and "mean_age =" in out.output


def test_run_with_the_dealer_says_so_and_gives_the_owner_bounded_results() -> None:
    out = CliRunner().invoke(main, ["script", "run", SCRIPT, "--schema", SCHEMA, "--data", DATA,
                                    "--rows", "120", "--insecure-dealer"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("preprocessing: INSECURE test dealer")
    ages = Schema.load(SCHEMA).read_csv(DATA)["age"][:120]
    line = next(x for x in out.output.splitlines() if "mean_age =" in x)
    value, bound = float(line.split("=")[1].split()[0]), float(line.split("<=")[1].rstrip(")"))
    assert abs(value - np.mean(ages)) <= max(bound, 5e-6 * abs(value))  # printed to 6 digits


def test_a_refused_script_fails_with_its_place(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("x = data.income * data.income\ny = x * x\nreveal(sum(y), 'y')\n")
    out = CliRunner().invoke(main, ["script", "run", str(bad), "--schema", SCHEMA, "--data", DATA,
                                    "--rows", "20", "--insecure-dealer"])
    assert out.exit_code != 0
    assert f"{bad}:2:5: this product could reach" in out.output


ESTIMATE_PROBE = """
import resource, sys
from enigma.app.cli import main
try:
    main(["script", "estimate", sys.argv[1], "--schema", sys.argv[2]])
except SystemExit as exc:
    assert not exc.code, exc.code
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print("children cpu", used.ru_utime + used.ru_stime)
"""


def test_estimate_of_ten_thousand_rows_runs_in_this_process(tmp_path) -> None:
    """The issue's example (a comparison over 10^4 rows): the estimate's quorum is threads,
    so no interpreter is spawned (children's CPU time stays 0)."""
    schema = tmp_path / "x.yaml"
    schema.write_text("name: t\nrows: 10000\ncolumns:\n"
                      "- {name: x, type: int, label: private, min: 0, max: 1000}\n")
    script = tmp_path / "above.py"
    script.write_text("reveal(count(data.x, where=data.x > 500), 'above')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-c", ESTIMATE_PROBE, str(script), str(schema)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "estimated at 10,000 rows" in out.stdout and "triples" in out.stdout
    assert out.stdout.splitlines()[-1] == "children cpu 0.0"


def test_run_takes_its_time_limit_from_the_estimate_or_the_option(tmp_path) -> None:
    """Without --time-limit the limit is the estimate's (said before the run); a limit the
    run cannot meet ends it with one line naming the option, no traceback."""
    out = CliRunner().invoke(main, ["script", "run", SCRIPT, "--schema", SCHEMA, "--data", DATA,
                                    "--rows", "60", "--insecure-dealer"])
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("time limit:"))
    assert "cost estimate at 60 rows" in line and float(
        line.split()[2].replace(",", "")) >= 120
    sort = tmp_path / "median.py"
    sort.write_text("reveal(median(data.income), 'm')\n")
    out = CliRunner().invoke(main, ["script", "run", str(sort), "--schema", SCHEMA, "--data",
                                    DATA, "--insecure-dealer", "--time-limit", "1"])
    assert out.exit_code != 0
    assert "did not finish within its time limit of 1 s; give it more with --time-limit" \
        in out.output
    assert "Traceback" not in out.output


def test_json_results_carry_each_groups_name_and_bound(tmp_path) -> None:
    by_sex = tmp_path / "by_sex.py"
    by_sex.write_text("reveal(group_by(data.gender, data.age, 'mean'), 'age')\n"
                      "reveal(mean(data.age), 'mean_age')\n")
    out = CliRunner().invoke(main, ["script", "run", str(by_sex), "--schema", SCHEMA,
                                    "--data", DATA, "--rows", "150", "--insecure-dealer",
                                    "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["insecure_dealer"] is True and report["stats"]["rounds"] > 0
    age = report["results"]["age"]
    levels = Schema.load(SCHEMA).column("gender").levels
    assert age["axes"] == [{"name": "gender", "labels": list(levels)}]
    table = Schema.load(SCHEMA).read_csv(DATA)
    for level, value, bound in zip(levels, age["value"], age["error"], strict=True):
        chosen = table["gender"][:150] == level
        assert abs(value - table["age"][:150][chosen].mean()) <= bound
    text = CliRunner().invoke(main, ["script", "dry-run", str(by_sex), "--schema", SCHEMA])
    assert "age by gender" in text.output and all(lv in text.output for lv in levels)


def test_check_json_gives_one_object_per_script_and_fails_on_a_refused_one(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("print(mean(data.age))\n")
    out = CliRunner().invoke(main, ["check", str(ROOT / "examples" / "by_state.py"), str(bad),
                                    "--schema", str(ROOT / "examples" / "benefits.yaml"),
                                    "--no-run", "--json"])
    assert out.exit_code == 1
    good, refused = (json.loads(line) for line in out.stdout.splitlines())
    assert good["outputs"][0]["axes"][0]["name"] == "state" and "error" not in good
    assert refused["script"] == str(bad) and "bad.py:1" in refused["error"]
