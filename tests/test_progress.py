"""Progress lines: phase, time and ETA on a terminal; nothing but warnings anywhere else."""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys
import time

import click
import pytest
from click.testing import CliRunner

from enigma.app.cli import main
from enigma.progress import Progress, duration, wanted

ROOT = pathlib.Path(__file__).resolve().parents[1]


class Clock:
    """A clock the test moves by hand, so that ETAs are exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0 s"), (7.6, "8 s"), (65, "1 min 05 s"),
                                               (7380, "2 h 03 min"), (-3, "0 s")])
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_a_counted_phase_shows_the_rate_so_far_as_its_eta() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress("share", enabled=True, stream=out, clock=clock, tick=60) as p:
        p.phase("sharing people (rows)", total=1000)
        clock.now += 10
        p.advance(250)
        assert p.line() == "share: sharing people (rows)  10 s  250/1,000  ETA 30 s"
        p.advance(750)
        assert p.line().endswith("1,000/1,000  ETA soon")
    assert "ETA 30 s" in out.getvalue()
    assert out.getvalue().endswith("\r")  # the line is cleared when the step is done


def test_an_expected_phase_counts_down_and_an_open_one_shows_time_only() -> None:
    clock = Clock()
    p = Progress("estimate", enabled=True, stream=io.StringIO(), clock=clock)
    p.phase("measuring on 256 synthetic rows (2 of 2)", expected=40)
    clock.now += 15
    assert p.line() == "estimate: measuring on 256 synthetic rows (2 of 2)  15 s  ETA 25 s"
    p.phase("checking the result and settling")
    clock.now += 3
    assert p.line() == "estimate: checking the result and settling  3 s"


def test_a_command_expected_as_a_whole_counts_down_across_its_phases() -> None:
    """`enigma run`: the cost estimate covers the whole job; each phase of unknown length
    shows what is left of it, and a phase with its own count keeps its own ETA."""
    clock = Clock()
    p = Progress("run", enabled=True, stream=io.StringIO(), clock=clock)
    p.phase("posting the job on the ledger")
    p.expect(60)
    clock.now += 5
    assert p.line() == "run: posting the job on the ledger  5 s  ETA 55 s"
    p.phase("job 3: quorum of 3 computing")
    clock.now += 40
    assert p.line() == "run: job 3: quorum of 3 computing  40 s  ETA 15 s"
    p.phase("starting nodes", total=4)
    clock.now += 2
    p.count(1)
    assert p.line().endswith("1/4  ETA 6 s")
    p.phase("checking the result and settling")
    clock.now += 20
    assert p.line() == "run: checking the result and settling  20 s  ETA soon"


def test_the_line_ticks_while_a_phase_runs_silently() -> None:
    out = io.StringIO()
    with Progress("run", enabled=True, stream=out, tick=0.01) as p:
        p.phase("computing")
        for _ in range(200):
            if out.getvalue().count("run: computing") >= 3:
                break
            time.sleep(0.01)
    assert out.getvalue().count("run: computing") >= 3


def test_disabled_progress_writes_only_its_notes() -> None:
    out = io.StringIO()
    with Progress("run", enabled=False, stream=out, tick=0.01) as p:
        p.phase("computing", total=10)
        p.advance(5)
        p.note("run: WARNING: weak threshold")
    assert out.getvalue() == "run: WARNING: weak threshold\n"


def test_progress_is_wanted_only_on_a_terminal_and_never_with_json() -> None:
    assert wanted(json_output=True) is False
    probe = "from enigma.progress import wanted; print(wanted())"
    piped = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           env={"PYTHONPATH": str(ROOT / "src")}, check=True, timeout=60)
    assert piped.stdout.strip() == "False"  # stdout is a pipe here


def test_a_command_in_a_pipe_prints_its_result_and_no_progress(tmp_path) -> None:
    """`script estimate` used to be silent for a minute; in a pipe it stays free of
    progress lines (CliRunner's streams are not terminals), its answer unchanged."""
    got = CliRunner().invoke(main, ["script", "estimate", str(ROOT / "examples/average_age.py"),
                                    "--schema", str(ROOT / "examples/acs12.yaml")])
    assert got.exit_code == 0, got.output
    assert "estimated at" in got.stdout
    assert "\r" not in got.output and "measuring" not in got.output


def test_a_commands_json_flag_silences_its_progress_even_on_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    seen = {}

    @click.group()
    def group() -> None:
        pass

    @group.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def probe(as_json: bool) -> None:
        seen[as_json] = (wanted(), Progress("probe").enabled)

    for args in (["probe"], ["probe", "--json"]):
        group(args, standalone_mode=False)
    assert seen == {False: (True, True), True: (False, False)}
