"""Shared test settings: hypothesis profiles that keep CI deterministic and bounded, the
order and grouping that `./run test` (pytest-xdist, two workers) schedules by, and a dev
chain with the contracts deployed for the command-line tests."""

import os

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
    "test_app_faults.py", "test_app_faults_he.py", "test_app_failures.py",
    "test_app_console.py", "test_app_netns.py", "test_app_chaos.py", "test_app_e2e.py",
)
"""Modules that take minutes (each stands up networks of node processes), collected first:
the parallel run hands out whole modules in collection order, so these start at once on
both workers and the many short modules fill in around them, instead of one long module
starting last and running alone at the end."""
ALONE = ("test_app_netns.py", "test_app_console.py")
"""Modules that must not overlap each other: the namespaces rewire the host's network and
the browser takes both cores for seconds at a time. One worker runs them in turn."""


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heavy modules first; with `--dist loadgroup`, one group per module (a module's
    fixtures, often a whole network, are made once, on one worker) and one for ALONE."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept
    if config.getoption("dist", "no") != "loadgroup":
        return
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group("alone" if name in ALONE else name))


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
