"""Shared test settings: hypothesis profiles that keep CI deterministic and bounded, and a
dev chain with the contracts deployed for the command-line tests."""

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
