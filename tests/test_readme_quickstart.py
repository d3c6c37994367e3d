"""The README's quickstart ("Your own CSV in six commands"), run as the README writes it.

The commands and the analysis script are read from README.md, not copied here, so the
README cannot drift from what works. They run in a temporary folder holding a CSV of
"one's own" (made here), and the network they start is stopped at the end whatever
happens. The first two commands make and activate the environment this test already runs
in (`./run demo` creates `.venv` and runs the demo; the activation puts `enigma` on PATH):
they are checked to be those two, and `enigma` is this interpreter's (`python -m
enigma.app.cli`, what the `enigma` script of pyproject.toml runs) with this checkout's
source first on the path.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Your own CSV in six commands"
SETUP = ["./run demo", ". .venv/bin/activate"]
ROWS = 120
COMMAND_SECONDS = 900  # a loaded 2-core machine: `up` alone has taken 70 s, a job 3 min
WHOLE_SECONDS = 1800


def _quickstart() -> tuple[list[str], str, str]:
    """The section's commands (comments dropped), and the script's file name and text."""
    text = (ROOT / "README.md").read_text()
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    [sh] = re.findall(r"```sh\n(.*?)```", section, re.S)
    [script] = re.findall(r"```python\n(.*?)```", section, re.S)
    commands = [line.split("  #")[0].strip() for line in sh.splitlines() if line.strip()]
    name = script.splitlines()[0].removeprefix("#").strip()
    return commands, name, script


def _own_csv(path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"region": rng.choice(["east", "north", "south"], ROWS),
                          "income": rng.normal(3000, 800, ROWS).clip(0, 9000).round(2)})
    frame.to_csv(path, index=False)
    return frame


def _enigma(command: str, cwd: Path, env: dict[str, str]) -> str:
    """Run one `enigma ...` line; its output goes to files, since `up` leaves processes
    running that would hold a pipe open."""
    args = shlex.split(command)
    assert args[0] == "enigma", command
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with out.open("w") as o, err.open("w") as e:
        rc = subprocess.run([sys.executable, "-m", "enigma.app.cli", *args[1:]], cwd=cwd,
                            env=env, stdout=o, stderr=e, timeout=COMMAND_SECONDS).returncode
    assert rc == 0, f"`{command}` exited {rc}:\n{out.read_text()}\n{err.read_text()}"
    return out.read_text()


def _printed(output: str, name: str, by: str) -> dict[str, tuple[float, float]]:
    """The rows `enigma run` printed for one result: label -> (value, error)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name} by {by} "))
    rows = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 3 or not line.startswith("  "):
            break
        rows[parts[0]] = (float(parts[1]), float(parts[2]))
    return rows


@pytest.fixture
def folder():
    """A folder of its own: pytest's tmp_path may be pruned by another pytest session on
    this machine while the network still runs in it."""
    path = Path(tempfile.mkdtemp(prefix="enigma-quickstart-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(WHOLE_SECONDS)
def test_the_readme_commands_run_as_written_and_print_a_labelled_result(folder) -> None:
    commands, script_name, script = _quickstart()
    assert len(commands) <= 6, commands
    assert commands[:2] == SETUP and "    demo)" in (ROOT / "run").read_text()
    frame = _own_csv(folder / "mine.csv")
    (folder / script_name).write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "ENIGMA_CONTEXT"}
    env["PYTHONPATH"] = str(ROOT / "src")
    try:
        outputs = [_enigma(c, folder, env) for c in commands[2:]]
        as_json = json.loads(_enigma(commands[-1] + " --json", folder, env))  # the same job
    finally:
        if (folder / ".enigma-net" / "network.json").exists():
            _enigma("enigma down", folder, env)
    means = _printed(outputs[-1], "mean_income", "region")
    people = _printed(outputs[-1], "people", "region")
    want = frame.groupby("region")["income"]
    assert sorted(means) == sorted(people) == sorted(want.groups)
    for region, mean in want.mean().items():
        value, error = means[region]
        assert abs(value - mean) <= error + 0.01  # printed to 6 significant digits
        assert people[region] == (want.size()[region], 0.0)
    got = as_json["results"]["mean_income"]
    assert got["axes"] == [{"name": "region", "labels": sorted(want.groups)}]
    for region, value, error in zip(sorted(want.groups), got["value"], got["error"],
                                    strict=True):
        assert abs(value - want.mean()[region]) <= error + 1e-9
