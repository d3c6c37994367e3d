"""Shared test settings: hypothesis profiles that keep CI deterministic and bounded, the
order and grouping that `./run test` (pytest-xdist, two workers) schedules by, and a dev
chain with the contracts deployed for the command-line tests."""

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

HEAVY_FIRST = (
    "test_app_faults.py", "test_app_faults_he.py", "test_app_netns.py", "test_app_console.py",
    "test_app_e2e.py", "test_mpc_blame.py", "test_mpc_engine.py", "test_ledger_contracts.py",
    "test_app_failures.py", "test_app_blame_release.py", "test_app_node.py",
    "test_readme_quickstart.py", "test_net.py", "test_app_network.py", "test_prep_sacrifice.py",
    "test_app_chaos.py",
)
"""The modules that take a minute or more (a serial run, 2026-12: most stand up networks of
node processes), longest first: the parallel run hands out whole modules in collection
order, so these start early and the many short modules fill in around them, instead of
one long module starting last and running alone at the end."""
TOGETHER = {"test_app_netns.py": "alone", "test_app_console.py": "alone",
            "test_app_faults.py": "faults", "test_app_faults_he.py": "faults",
            "test_app_blame_release.py": "faults"}
"""Modules that must not overlap each other, by unit: the namespaces rewire the host's
network and the browser takes both cores for seconds at a time; the two fault matrices
each keep a network of node processes busy with HE preprocessing for minutes, and side by
side on two cores both ran past their time limits (the blame-under-a-policy module, with
its 8 s mesh timeout, goes with them). One worker runs a unit's modules in
turn."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heavy modules first (a stable sort: each module's own order is kept)."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With `--dist loadscope`: one unit per module (its fixtures, often a whole network,
    are made once, on one worker) and one unit per TOGETHER group. Not
    xdist's `loadgroup` marks: with pytest 9 they no longer reach the node ids it groups by."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return TOGETHER.get(Path(module).name, module)

    return ModuleScheduling(config, log)


@pytest.fixture(scope="module")
def deployed_chain(tmp_path_factory):
    """An embedded chain on 127.0.0.1 (a free port, in a thread) with Enigma's contracts:
    (url, accounts, deployment file). For command-line tests that need a ledger, no nodes."""
    from enigma.app.localnet import deploy
    from enigma.ledger import start_devchain

    with start_devchain(accounts=3) as server:
        path = tmp_path_factory.mktemp("chain") / "deployment.json"
        deploy(server.url, server.accounts[0], path)
        yield server.url, list(server.accounts), path


