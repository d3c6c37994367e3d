"""A node's config file, its variables and its shutdown (app/node_config.py, docs/node.md).

`enigma node --home DIR ... init` writes `<home>/node.toml`; `enigma node` reads it, with
ENIGMA_NODE_* variables over it and options over both; bind and advertised addresses
apart; SIGTERM hands running jobs back instead of cutting them off.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from enigma.app import health
from enigma.app.budget import Guard, JobBudget
from enigma.app.host import NodeConfig
from enigma.app.localnet import deploy
from enigma.app.node import Node, node_command
from enigma.app.node_config import (
    SETTINGS,
    ConfigError,
    env_settings,
    parse_port_range,
    read_config,
    write_config,
)
from enigma.app.service import parse_endpoint
from enigma.ledger import Deployment, Ledger, start_devchain
from enigma.net.local import free_port_in, free_ports
from enigma.storage.dht import DhtNode

ACCOUNT = "0x" + "ab" * 20


def test_every_kind_of_setting_round_trips_through_the_file(tmp_path):
    values = {"home": str(tmp_path), "rpc": 'http://chain:8545/"quoted"\\path',
              "port": 7001, "housekeeping": 60.0, "shutdown_grace": 2.5,
              "bootstrap": ["10.0.0.1:4001", "10.0.0.2:4001"], "no_register": True,
              "job_ports": "7100-7199"}
    path = tmp_path / "node.toml"
    write_config(path, values)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    got = read_config(path)
    assert got == {**values, "home": tmp_path}
    assert "# deposit =" in path.read_text()  # unset knobs are shown, commented out


@pytest.mark.parametrize(("text", "needle"), [
    ("colour = 'blue'\n", "unknown setting(s) ['colour']"),
    ("port = '7001'\n", "port = '7001' is not int"),
    ("no_register = 1\n", "is not bool"),
    ("bootstrap = [1, 2]\n", "is not a list of strings"),
    ("port = \n", "is not valid TOML"),
])
def test_a_bad_file_is_one_line_naming_the_setting(tmp_path, text, needle):
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_config(path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_variables_are_parsed_by_the_setting_s_type_and_mistakes_named():
    env = {"ENIGMA_NODE_PORT": "7002", "ENIGMA_NODE_NO_REGISTER": "yes",
           "ENIGMA_NODE_BOOTSTRAP": "a:1, b:2", "ENIGMA_NODE_ADVERTISE": "10.1.2.3",
           "ENIGMA_NODE_HOUSEKEEPING": "5", "ENIGMA_NODE_DEPOSIT": "", "PATH": "/bin"}
    assert env_settings(env) == {"port": 7002, "no_register": True, "bootstrap": ["a:1", "b:2"],
                                 "advertise": "10.1.2.3", "housekeeping": 5.0}
    with pytest.raises(ConfigError, match="ENIGMA_NODE_PORT='x' is not a number"):
        env_settings({"ENIGMA_NODE_PORT": "x"})
    with pytest.raises(ConfigError, match="ENIGMA_NODE_COLOUR is not a node setting"):
        env_settings({"ENIGMA_NODE_COLOUR": "blue"})
    with pytest.raises(ConfigError, match="not a yes/no value"):
        env_settings({"ENIGMA_NODE_NO_REGISTER": "maybe"})


def test_port_ranges_and_a_free_port_within_one():
    assert parse_port_range("") == (0, 0)
    assert parse_port_range("7100-7199") == (7100, 7199)
    for bad in ("7100", "7199-7100", "0-5", "a-b", "7000-70000"):
        with pytest.raises(ConfigError):
            parse_port_range(bad)
    low = free_ports(1)[0]
    with socket.create_server(("127.0.0.1", low)):
        got = free_port_in("127.0.0.1", low, low + 20)
    assert low < got <= low + 20
    with socket.create_server(("127.0.0.1", low)), pytest.raises(OSError,
                                                                            match="widen"):
        free_port_in("127.0.0.1", low, low)


def _init(home: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(node_command, ["--home", str(home), *args, "init", "--force"],
                              env=env, catch_exceptions=False)


def test_init_writes_the_merged_settings_options_over_variables_over_the_file(tmp_path):
    home = tmp_path / "n1"
    first = _init(home, "--port", "7001", "--dht-port", "4001", "--metrics-port", "9101",
                  "--bind", "0.0.0.0", "--advertise", "10.0.0.5", "--job-ports", "7100-7109",
                  "--account", ACCOUNT, "--bootstrap", "10.0.0.1:4001")
    assert first.exit_code == 0, first.output
    assert (home / "node.key").is_file() and "node key" in first.output
    path = home / "node.toml"
    saved = tomllib.loads(path.read_text())
    assert saved["bind"] == "0.0.0.0" and saved["advertise"] == "10.0.0.5"
    assert saved["port"] == 7001 and saved["job_ports"] == "7100-7109"
    assert saved["bootstrap"] == ["10.0.0.1:4001"] and saved["home"] == str(home.absolute())
    assert set(saved) <= set(SETTINGS)
    # the file says 7001 and 4001; a variable overrides the port, an option the DHT port
    again = _init(home, "--dht-port", "4002", env={"ENIGMA_NODE_PORT": "7002",
                                                   "ENIGMA_NODE_DHT_PORT": "4003"})
    assert again.exit_code == 0, again.output
    saved = tomllib.loads(path.read_text())
    assert (saved["port"], saved["dht_port"], saved["metrics_port"]) == (7002, 4002, 9101)
    assert saved["advertise"] == "10.0.0.5"  # from the file


def test_init_refuses_any_free_port_and_a_bad_variable_in_one_line(tmp_path):
    got = CliRunner().invoke(node_command, ["--home", str(tmp_path), "init"])
    assert got.exit_code == 2 and "--port is 0" in got.output
    got = CliRunner().invoke(node_command, ["--home", str(tmp_path), "init"],
                             env={"ENIGMA_NODE_PORT": "seven"})
    assert got.exit_code == 2 and "ENIGMA_NODE_PORT='seven' is not a number" in got.output


def test_a_node_started_from_its_file_registers_the_advertised_address_and_stops_on_sigterm(
        tmp_path):
    chain = start_devchain(accounts=3)
    try:
        deploy(chain.url, chain.accounts[0], tmp_path / "deployment.json")
        port, dht, metrics = free_ports(3)
        home = tmp_path / "node"
        made = _init(home, "--rpc", chain.url, "--deployment", str(tmp_path / "deployment.json"),
                     "--account", chain.accounts[1], "--bind", "0.0.0.0", "--advertise",
                     "127.0.0.1", "--port", str(port), "--dht-port", str(dht),
                     "--metrics-port", str(metrics), "--shutdown-grace", "1")
        assert made.exit_code == 0, made.output
        env = {**os.environ, "ENIGMA_NODE_CONFIG": str(home / "node.toml"),
               "ENIGMA_NODE_HOUSEKEEPING": "3600", "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen([sys.executable, "-m", "enigma.app.node"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert line.startswith("node: ready"), line + proc.stderr.read()
            assert f"service=127.0.0.1:{port} dht={dht} metrics={metrics}" in line
            ledger = Ledger.connect(chain.url, chain.accounts[0],
                                    Deployment.load(tmp_path / "deployment.json"))
            assert parse_endpoint(ledger.node(chain.accounts[1]).endpoint) == (
                "127.0.0.1", port, dht)
            node_id = bytes.fromhex(line.split("id=")[1].split()[0])
            looker = DhtNode.start("127.0.0.1", 0, [("127.0.0.1", dht)], client=True)
            try:  # the DHT record too names the advertised address, never 0.0.0.0
                found = looker.find_endpoint(node_id)
            finally:
                looker.stop()
            assert found is not None and found.host == "127.0.0.1"
            assert found.ports == {"service": port, "metrics": metrics}
            # `enigma node health` and the image's HEALTHCHECK: the same settings (file,
            # variables), the node's /health
            for module in (["enigma.app.node", "health"], ["enigma.app.health"]):
                health = subprocess.run([sys.executable, "-m", *module], env=env,
                                        capture_output=True, text=True, timeout=60)
                assert health.returncode == 0, health.stderr
                assert health.stdout.startswith(f"node: healthy id={node_id.hex()}")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0 and "node: stopped" in out
            assert time.monotonic() - started < 20
            health = subprocess.run([sys.executable, "-m", "enigma.app.health"],
                                    env=env, capture_output=True, text=True, timeout=60)
            assert health.returncode == 1 and "no node answers at http://127.0.0.1:" \
                f"{metrics}/health" in health.stderr
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        chain.stop()


def test_the_health_check_without_a_fixed_port_or_with_a_bad_variable_says_so(tmp_path):
    (tmp_path / "node.toml").write_text('bind = "0.0.0.0"\n')
    got = CliRunner().invoke(node_command, ["--home", str(tmp_path), "health"])
    assert got.exit_code == 2 and "metrics_port is 0" in got.output
    env = {"ENIGMA_NODE_HOME": str(tmp_path)}
    assert health.main(env) == 1  # no port: nothing to ask
    assert health.main({**env, "ENIGMA_NODE_METRICS_PORT": "x"}) == 2
    port = free_ports(1)[0]  # nobody listens there
    assert health.main({**env, "ENIGMA_NODE_METRICS_PORT": str(port)}) == 1


def test_a_wildcard_bind_without_an_advertised_address_is_refused(tmp_path):
    node = Node(NodeConfig(home=tmp_path, rpc="http://127.0.0.1:1", deployment=tmp_path / "d",
                           account=ACCOUNT, host="0.0.0.0"))
    with pytest.raises(Exception, match="set advertise"):
        node.start()


def test_stopping_hands_a_running_job_back_after_the_grace_period(tmp_path):
    """A job still running when the grace ends is cancelled (its member signs `cancelled`,
    which blames nobody); one that ends within the grace is left to finish."""
    node = Node(NodeConfig(home=tmp_path, rpc="", deployment=tmp_path / "d", account=ACCOUNT))
    guard = Guard(JobBudget(steps=10**9, elements=10**12, seconds=600.0, memory_mb=10**6))
    node.jobs._guards[(b"owner", 7)] = guard
    started = time.monotonic()
    node.stop(grace=0.0, jobs_grace=0.3)
    assert time.monotonic() - started >= 0.3
    assert guard.limit == "cancelled" and guard.budget.stop.is_set()
    assert "shutting down" in guard.budget.why
    finishing = Guard(JobBudget(steps=10**9, elements=10**12, seconds=600.0, memory_mb=10**6))
    node = Node(NodeConfig(home=tmp_path, rpc="", deployment=tmp_path / "d", account=ACCOUNT))
    node.jobs._guards[(b"owner", 8)] = finishing
    threading.Timer(0.2, lambda: node.jobs._guards.clear()).start()
    node.stop(grace=0.0, jobs_grace=10.0)
    assert finishing.limit is None and time.monotonic() - started < 5
