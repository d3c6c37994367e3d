"""`pip install .` brings what Enigma's code imports and nothing else; constraints.txt pins a
point inside pyproject.toml's ranges.

Why these checks rather than a trial install: a fresh venv takes minutes to build, and what
breaks a user's install is a runtime import of a test-only package (it works in ./run's venv,
which has the dev extra) or a pin that left its range. Both are read from the files here.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import pathlib
import sys
import tomllib

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements(group: list[str]) -> dict[str, Requirement]:
    reqs = (Requirement(r) for r in group)
    return {canonicalize_name(r.name): r for r in reqs}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (NAME==VERSION)"
            pins[canonicalize_name(name)] = version
    return pins


def _closure(names: set[str]) -> set[str]:
    """The distributions `names` pull in (installed metadata; extras' requirements left out)."""
    env = default_environment()
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def _imported_top_levels() -> set[str]:
    found = set()
    for path in (ROOT / "src" / "enigma").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"enigma"}


def test_every_runtime_and_dev_requirement_is_pinned_inside_its_range() -> None:
    pins = _pins()
    for group in (PROJECT["dependencies"], PROJECT["optional-dependencies"]["dev"]):
        for name, req in _requirements(group).items():
            assert name in pins, f"constraints.txt has no pin for {name}"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {req}")


def test_requirements_are_ranges_not_pins() -> None:
    for req in _requirements(PROJECT["dependencies"]).values():
        assert not any(s.operator == "==" for s in req.specifier), (
            f"{req}: give a range; exact versions belong in constraints.txt")


def test_the_code_imports_only_what_a_runtime_install_brings() -> None:
    runtime = _closure(set(_requirements(PROJECT["dependencies"])))
    providers = md.packages_distributions()
    outside = {}
    for module in sorted(_imported_top_levels()):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"src imports {module!r}, which no installed distribution provides"
        if not dists & runtime:
            outside[module] = sorted(dists)
    assert outside == {}, f"src imports packages outside the runtime dependencies: {outside}"


def test_the_test_only_libraries_stay_out_of_the_runtime() -> None:
    runtime = set(_requirements(PROJECT["dependencies"]))
    assert {"pandas", "scipy"} <= runtime  # results are DataFrames, p-values come from scipy
    assert not {"pytest", "hypothesis", "ruff", "scikit-learn", "statsmodels"} & runtime
