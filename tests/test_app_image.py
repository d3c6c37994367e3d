"""The image (Dockerfile), run as compose.yaml runs it: built here with podman, a chain and
three nodes from it on a container network of their own, a job end to end from this machine
as the owner.

Each node is set up as docs/node.md tells an administrator: `enigma node ... init` through
the image's entrypoint writes `/data/node.toml` and the node key into the node's volume;
the container then starts with no arguments and reads that file, under ENIGMA_NODE_*
variables (one node gets its advertised address only from a variable). Checked: each node
registers the address it advertises, answers the image's HEALTHCHECK (`enigma node
health`), holds shares and computes a job on HE preprocessing inside its container (share,
sign, run, the right total), and a runtime's stop (SIGTERM) ends it cleanly.

Slow: a cold run makes the base from Debian's packages (deploy/base-image.sh, ~2 min) and
installs every dependency into the image (~4 min); so it runs only with ENIGMA_IMAGE_TEST=1,
and is skipped, saying why, where podman is missing or cannot run a container. Every
container, volume and network it made is removed, also on failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from enigma.app import namespaces
from enigma.app.localnet import deploy
from enigma.ledger import Deployment, Ledger

REPO = Path(__file__).resolve().parents[1]
BASE = "localhost/enigma-base"
IMAGE = "localhost/enigma:test"
#: podman's settings for machines like CI's (runc, lower ulimits): deploy/containers.conf
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(REPO / "deploy" / "containers.conf")}
NAME = f"enigma-test-{os.getpid()}"
SUBNET = f"10.79.{os.getpid() % 200}"
CHAIN_IP = f"{SUBNET}.2"
NODES = 3
ROWS = 200


def _why_not() -> str | None:
    if os.environ.get("ENIGMA_IMAGE_TEST") != "1":
        return ("builds and runs the container image (minutes): set ENIGMA_IMAGE_TEST=1 "
                "to run it")
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc debootstrap)"
    return None


WHY_NOT = _why_not()
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500),
              pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))]


def podman(*args: str, timeout: float = 900.0, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], env=PODMAN_ENV, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}): "
                             f"{done.stderr[-2000:]}")
    return done


def _logs(container: str) -> str:
    done = podman("logs", container)
    return done.stdout + done.stderr


def _wait_for_log(container: str, pattern: str, seconds: float) -> re.Match[str]:
    deadline = time.monotonic() + seconds
    while True:
        logs = _logs(container)
        found = re.search(pattern, logs, re.M)
        if found:
            return found
        state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        if state != "running" or time.monotonic() > deadline:
            raise AssertionError(f"{container} ({state}) never logged {pattern!r}: "
                                 f"{logs[-2000:]}")
        time.sleep(1.0)


def _enigma(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The owner's and the analyst's `enigma` on this machine, as an administrator runs it."""
    path = os.pathsep.join(str(Path(p).resolve()) for p in sys.path if p)
    return subprocess.run([sys.executable, "-m", "enigma.app.cli", *args], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": path}, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def image():
    """The image, built from this checkout on a base made from Debian's packages."""
    if podman("image", "exists", BASE, check=False).returncode != 0:
        made = subprocess.run([str(REPO / "deploy" / "base-image.sh"), BASE], env=PODMAN_ENV,
                              capture_output=True, text=True, timeout=900)
        assert made.returncode == 0, made.stderr[-2000:]
    probe = podman("run", "--rm", "--network", "none", BASE, "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {probe.stderr.strip()[-400:]}")
    podman("build", "--format", "docker", "--build-arg", f"BASE={BASE}", "-t", IMAGE,
           str(REPO), timeout=1200)
    return IMAGE


@pytest.fixture(scope="module")
def net(image, tmp_path_factory):
    """A chain and NODES nodes, each in its container on the network NAME; yields the
    folder with the deployment, the accounts and the nodes' (container, address) pairs."""
    root = tmp_path_factory.mktemp("image")
    containers = [f"{NAME}-chain", *(f"{NAME}-node{i}" for i in range(1, NODES + 1))]
    volumes = [f"{NAME}-node{i}" for i in range(1, NODES + 1)]
    volumes_before = podman("volume", "ls", "-q").stdout.split()
    try:
        podman("network", "create", "--subnet", f"{SUBNET}.0/24", NAME)
        podman("run", "-d", "--name", containers[0], "--network", NAME, "--ip", CHAIN_IP,
               "--entrypoint", "enigma", image, "ledger", "serve", "--host", "0.0.0.0",
               "--port", "8545", "--accounts", str(NODES + 2))
        _wait_for_log(containers[0], r"^\s*0x[0-9a-fA-F]{40}\s*$", 120)
        deadline = time.monotonic() + 60
        while not namespaces.reaches(CHAIN_IP, 8545) and time.monotonic() < deadline:
            time.sleep(0.5)
        accounts = re.findall(r"^\s*(0x[0-9a-fA-F]{40})\s*$", _logs(containers[0]), re.M)
        rpc = f"http://{CHAIN_IP}:8545"
        deploy(rpc, accounts[0], root / "deployment.json")
        (root / "deployment.json").chmod(0o644)
        network_file = f"{root / 'deployment.json'}:/network/deployment.json:ro"
        nodes = []
        for i in range(1, NODES + 1):
            ip = f"{SUBNET}.{10 + i}"
            settings = ["--rpc", rpc, "--deployment", "/network/deployment.json",
                        "--account", accounts[i], "--bind", "0.0.0.0", "--port", "7001",
                        "--dht-port", "4001", "--metrics-port", "9101",
                        "--job-ports", "7100-7131"]
            if i > 1:
                settings += ["--bootstrap", f"{SUBNET}.11:4001"]
            if i < NODES:  # the last node's address comes from a variable alone
                settings += ["--advertise", ip]
            made = podman("run", "--rm", "--network", "none", "-v", f"{volumes[i - 1]}:/data",
                          "-v", network_file, image, *settings, "init")
            assert made.stdout.startswith("node: wrote /data/node.toml"), made.stdout
            env = ["-e", f"ENIGMA_NODE_ADVERTISE={ip}"] if i == NODES else []
            podman("run", "-d", "--name", containers[i], "--network", NAME, "--ip", ip,
                   "-v", f"{volumes[i - 1]}:/data", "-v", network_file, *env, image)
            nodes.append((containers[i], ip))
        for container, _ip in nodes:
            _wait_for_log(container, r"^node: ready .*$", 300)
        yield root, rpc, accounts, nodes
    finally:
        podman("rm", "-f", "-v", "-t", "0", *containers, check=False)  # -v: the chain's /data
        podman("volume", "rm", "-f", *volumes, check=False)
        podman("network", "rm", "-f", NAME, check=False)
    made = set(podman("volume", "ls", "-q").stdout.split()) - set(volumes_before)
    assert not made, f"volumes left behind: {made}"
    left = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not [c for c in left if c.startswith(NAME)], left
    assert not [v for v in podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
                if v.startswith(NAME)]


def test_each_node_reads_its_volume_s_config_registers_its_address_and_is_healthy(net):
    root, rpc, accounts, nodes = net
    ledger = Ledger.connect(rpc, None, Deployment.load(root / "deployment.json"))
    for i, (container, ip) in enumerate(nodes, start=1):
        ready = _wait_for_log(container, r"^node: ready .*$", 10)[0]
        assert f"address={accounts[i]}" in ready and f"service={ip}:7001" in ready
        assert "dht=4001 metrics=9101 registered=True" in ready
        assert ledger.node(accounts[i]).endpoint.startswith(f"{ip}:7001")
        toml = podman("exec", container, "cat", "/data/node.toml").stdout
        assert f'account = "{accounts[i]}"' in toml and 'bind = "0.0.0.0"' in toml
        assert ("advertise" in toml.replace("# advertise =", "")) == (i < len(nodes))
        health = podman("healthcheck", "run", container, check=False, timeout=120)
        assert health.returncode == 0, health.stdout + health.stderr
        user = podman("exec", container, "id", "-u").stdout.strip()
        assert user == "10001"  # never root


def test_a_job_runs_on_the_containers_and_a_stopped_node_exits_cleanly(net):
    root, rpc, accounts, nodes = net
    ages = np.random.default_rng(11).integers(0, 121, ROWS)
    (root / "people.csv").write_text("age\n" + "\n".join(map(str, ages)) + "\n")
    (root / "people.yaml").write_text(json.dumps({"name": "people", "columns": [
        {"name": "age", "type": "int", "min": 0, "max": 120}]}))
    (root / "total.py").write_text("reveal(sum(data.age), 'total_age')\n")
    ledger = ["--rpc", rpc, "--deployment", "deployment.json"]
    owner, analyst = accounts[0], accounts[NODES + 1]
    done = _enigma(root, "share", "people.csv", "--json", "--schema", "people.yaml",
                   "--quorum", "2", "-t", "1", "-n", "3", "--home", "owner", "--bootstrap",
                   f"{nodes[0][1]}:4001", *ledger, "--account", owner)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout.splitlines()[-1])["holders"]) == 3
    done = _enigma(root, "sign", "total.py", *ledger, "--account", analyst)
    assert done.returncode == 0, done.stderr
    signed = dict(item.split("=", 1) for item in done.stdout.split())
    done = _enigma(root, "run", "total.py", "--dataset", "people", "--quorum", "2",
                   "--author", signed["author"], "--signature", signed["signature"],
                   "--home", "owner", *ledger, "--account", owner)
    assert done.returncode == 0, done.stderr
    value = re.search(r"total_age = \[?([-0-9.e]+)\]?\s+\(error <= ([0-9.e+-]+)\)", done.stdout)
    assert value, done.stdout
    assert abs(float(value[1]) - ages.sum()) <= float(value[2]) + 1e-6
    job = int(re.search(r"job (\d+): quorum", done.stdout)[1])
    logs = [_logs(c) for c, _ip in nodes]
    members = [text for text in logs if f"job {job} done" in text]
    assert len(members) == 2  # the job ran in the containers, on HE preprocessing
    assert all(f"job {job}: he_session" in text and "INSECURE" not in text for text in members)
    container = nodes[-1][0]
    podman("stop", "-t", "45", container, timeout=120)
    assert podman("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip() == "0"
    assert "node: stopped" in _logs(container)
