"""The README's quickstart ("Your own CSV in six commands"), run as the README writes it.

The commands and the analysis script are read from README.md, not copied here, so the
README cannot drift from what works. All six lines run verbatim, in order, in one bash
shell, as a reader pastes them: `./run demo` in the checkout (it finds the venv `./run
test` made, so it goes straight to the demo, which must end in its OK line), the
activation puts the venv's `enigma` script on PATH, and the `enigma` lines run in a
temporary folder holding a CSV of "one's own" (made here). The only words the test adds
are a `cd` into that folder and each line's redirection of its output to files (`up`
leaves processes running that would hold a pipe open). The network they start is stopped
at the end whatever happens.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
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


def _run_verbatim(commands: list[str], folder: Path, env: dict[str, str]) -> list[str]:
    """Run the lines in one shell: the setup lines in the checkout, the rest in `folder`;
    returns each line's standard output. A failing line fails the test with its output."""
    lines = ["set -euo pipefail", f"cd {shlex.quote(str(ROOT))}"]
    for i, command in enumerate(commands):
        if i == len(SETUP):
            lines.append(f"cd {shlex.quote(str(folder))}")
        out, err = folder / f"out{i}", folder / f"err{i}"
        if command.startswith(". "):  # sourcing must stay in this shell, output and all
            lines.append(command)
        else:
            lines.append(f"{command} > {shlex.quote(str(out))} 2> {shlex.quote(str(err))}"
                         f" || {{ echo {i}; exit 1; }}")
    done = subprocess.run(["bash", "-c", "\n".join(lines)], env=env, capture_output=True,
                          text=True, timeout=WHOLE_SECONDS - 120)
    if done.returncode != 0:
        failed = int(done.stdout.split()[-1]) if done.stdout.strip() else -1
        detail = "".join((folder / f"{kind}{failed}").read_text()
                         for kind in ("out", "err") if (folder / f"{kind}{failed}").exists())
        pytest.fail(f"`{commands[failed] if failed >= 0 else 'the shell'}` failed:\n"
                    f"{detail[-4000:]}\n{done.stderr[-2000:]}")
    return [(folder / f"out{i}").read_text() if (folder / f"out{i}").exists() else ""
            for i in range(len(commands))]


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
        # the last line again with --json: the same job, printed as one JSON object
        outputs = _run_verbatim([*commands, commands[-1] + " --json"], folder, env)
    finally:
        if (folder / ".enigma-net" / "network.json").exists():
            subprocess.run([str(ROOT / ".venv" / "bin" / "enigma"), "down"], cwd=folder,
                           env=env, capture_output=True, timeout=COMMAND_SECONDS)
    assert "OK: every result matches plaintext" in outputs[0], outputs[0][-2000:]
    as_json = json.loads(outputs[-1])
    means = _printed(outputs[-2], "mean_income", "region")
    people = _printed(outputs[-2], "people", "region")
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
