"""A whole local network in the background: `enigma up`, `enigma status`, `enigma down`.

`up` starts, in order: the embedded chain (its own process, logs/chain.log, its state
kept in <home>/chain), the contracts (deployment.json), then N node daemons (`enigma
node`, each staking from its own dev account and joining the DHT through the first node;
logs/node-i.log), and the owner's warm agent (app/agent.py: `run`, `sign` and `status`
typed in a terminal are run by it, without a fresh process's 2.5 s of imports). It
writes what it started to <home>/network.json and returns; the processes keep running.
It also writes the context (<home>/context.json, app/context.py): the chain URL,
deployment, accounts, DHT bootstrap and the owner's home (<home>/owner), from which every
other command and the API take their defaults.

Durable by default: `up` on a home that ran a network before resumes it. The chain
replays its journal (`ledger/journal.py`), so datasets, jobs, deposits and balances are
as they were and deployment.json stays valid; each node reopens its home (key, shares)
and, already registered, records its new ports on the ledger.

`status` reads the ledger (nodes and deposits, datasets, jobs), each node's /health and
each dataset's threshold (its owner's progress file, else its DHT record), marking the
weak ones. `down` stops the agent and the nodes (SIGTERM: they finish requests in progress) and then
the chain.

Dev account roles: 0 deploys and owns data, 1..N are the nodes, N+1 is an analyst.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from enigma.files import write_atomic
from enigma.ledger import Deployment, Ledger, LedgerError
from enigma.ledger.journal import Genesis
from enigma.progress import Progress

from . import context
from .agent import AgentError
from .agent import spawn as spawn_agent
from .context import local_context
from .localnet import NodeProcess, deploy, spawn_node

STATE_FILE = "network.json"
CHAIN_DIR = "chain"


class NetworkError(RuntimeError):
    """A local network that cannot be started, read or stopped as asked."""


@dataclass
class NetworkState:
    """What `up` started: enough for `status` and `down` in another process."""

    home: str
    rpc: str
    deployment: str
    chain_pid: int
    accounts: list[str]
    nodes: list[dict[str, Any]] = field(default_factory=list)
    agent_pid: int | None = None
    """The owner's warm agent (app/agent.py), when `up` started one."""

    @property
    def owner_account(self) -> str:
        return self.accounts[0]

    @property
    def analyst_account(self) -> str:
        return self.accounts[len(self.nodes) + 1]

    def save(self) -> None:
        write_atomic(Path(self.home) / STATE_FILE,
                     [json.dumps(asdict(self), indent=1).encode()])

    @classmethod
    def load(cls, home: Path) -> NetworkState:
        path = Path(home) / STATE_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise NetworkError(f"no network is running from {home} (no {STATE_FILE}); "
                               "start one with `enigma up`") from None
        except (ValueError, TypeError) as exc:
            raise NetworkError(f"{path} is damaged ({exc}); stop the processes it lists by "
                               "hand and delete it") from exc


def _spawn_chain(logs: Path, accounts: int, state: Path, timeout: float = 600.0
                 ) -> tuple[subprocess.Popen[bytes], str, list[str]]:
    """The embedded chain in a child process whose output goes to logs/chain.log.

    The timeout is generous because a resumed chain replays its blocks before it serves;
    a chain that dies instead is noticed at once."""
    log_path = logs / "chain.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps writing to it
    cmd = [sys.executable, "-m", "enigma.ledger.commands", "serve", "--port", "0",
           "--accounts", str(accounts), "--state", str(state)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log_path.read_text().splitlines()
        if len(lines) >= accounts + 2 and lines[0].startswith("ledger: embedded chain at "):
            url = lines[0].removeprefix("ledger: embedded chain at ").strip()
            return process, url, [s.strip() for s in lines[2:accounts + 2]]
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    why = log_path.read_text().strip().splitlines()[-1:] or ["no output"]
    raise NetworkError(f"the embedded chain did not start ({why[0]}); see {log_path}")


def _deployed(rpc: str, path: Path) -> bool:
    """Whether `path` names contracts that exist on the chain at `rpc` (a resumed network)."""
    try:
        deployment = Deployment.load(path)
    except LedgerError:
        return False
    w3 = Ledger.connect(rpc, None).w3
    return all(w3.eth.get_code(a) for a in
               (deployment.registry, deployment.datasets, deployment.jobs))


@dataclass
class LocalNetwork:
    """A running local network; `start` it, use `state`, `stop` it (or `down` by its home)."""

    state: NetworkState
    chain: subprocess.Popen[bytes] | None = None
    nodes: list[NodeProcess] = field(default_factory=list)

    @classmethod
    def start(cls, home: Path, nodes: int = 5, progress: Progress | None = None,
              node_options: Sequence[str] = (), agent: bool = False) -> LocalNetwork:
        """Steps of the module docstring; on any failure everything started is stopped.
        With `agent`, also the owner's warm agent that runs `run`, `sign` and `status` for
        the CLI (app/agent.py); a network whose agent cannot start still works without."""
        home = Path(home).resolve()
        if (home / STATE_FILE).exists():
            raise NetworkError(f"a network already runs from {home} ({STATE_FILE} exists); "
                               "`enigma down` first, or choose another --home")
        if nodes < 2:
            raise NetworkError(f"a network needs at least 2 nodes for a quorum, not {nodes}")
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        progress = progress or Progress("up", enabled=False)
        say = progress.phase
        born = Genesis.load(home / CHAIN_DIR)
        if born is not None and born.accounts != nodes + 3:
            raise NetworkError(f"the network in {home} was started with {born.accounts - 3} "
                               f"nodes; resume it with --nodes {born.accounts - 3}, or choose "
                               "another --home")
        say("resuming the embedded chain" if born else "starting the embedded chain")
        chain, url, accounts = _spawn_chain(logs, nodes + 3, home / CHAIN_DIR)
        net = cls(NetworkState(str(home), url, str(home / "deployment.json"), chain.pid,
                               accounts), chain)
        try:
            if born is None or not _deployed(url, home / "deployment.json"):
                deploy(url, accounts[0], home / "deployment.json")
            progress.phase("starting nodes", total=nodes)  # their rate gives the ETA
            for i in range(nodes):
                boot = ("127.0.0.1", net.nodes[0].dht_port) if net.nodes else None
                proc = spawn_node(home / f"node-{i}", url, home / "deployment.json",
                                  accounts[1 + i], boot, extra=node_options)
                net.nodes.append(proc)
                link = logs / f"node-{i}.log"
                with contextlib.suppress(FileNotFoundError):
                    link.unlink()
                link.symlink_to(home / f"node-{i}" / "node.log")
                progress.count(i + 1)
                net.state.nodes.append({"pid": proc.process.pid, "home": str(proc.home),
                                        "address": proc.address, "port": proc.port,
                                        "dht_port": proc.dht_port,
                                        "metrics_port": proc.metrics_port})
            if agent:
                say("starting the owner's agent")
                try:
                    net.state.agent_pid = spawn_agent(home, logs / "agent.log")
                except AgentError as exc:
                    say(str(exc))
            net.state.save()
            local_context(home, url, home / "deployment.json", accounts, nodes,
                          net.bootstrap).save(home / context.FILE)
        except BaseException:
            net.stop()
            raise
        return net

    @property
    def bootstrap(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", int(self.state.nodes[0]["dht_port"]))]

    def stop(self) -> None:
        """The agent and the nodes first (SIGTERM, clean exit), then the chain; forget the
        state file."""
        if self.state.agent_pid is not None and _ours(self.state.agent_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.state.agent_pid, signal.SIGTERM)
        for node in self.nodes:
            node.terminate()
        if self.chain is not None:
            self.chain.terminate()
            try:
                self.chain.wait(20)
            except subprocess.TimeoutExpired:
                self.chain.kill()
        with contextlib.suppress(FileNotFoundError):
            (Path(self.state.home) / STATE_FILE).unlink()


def _ours(pid: int) -> bool:
    """Whether `pid` is still a process of ours running enigma (not a recycled number)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"enigma" in cmdline


def down(home: Path, timeout: float = 30.0) -> list[int]:
    """Stop the network started from `home` by another process; returns the pids stopped."""
    state = NetworkState.load(home)
    stopped = []
    agent = [] if state.agent_pid is None else [state.agent_pid]
    for pids in (agent + [int(n["pid"]) for n in state.nodes], [state.chain_pid]):
        live = [p for p in pids if _ours(p)]
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_alive(p) for p in live) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in live:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        stopped += live
    (Path(home) / STATE_FILE).unlink()
    return stopped


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _progress_files(home: Path) -> list[Any]:
    """The owners' progress files under the network's home (`<home>/*/datasets/*.json`)."""
    from .owner import DatasetState
    from .upload import UploadError

    found = []
    for path in sorted(Path(home).glob("*/datasets/*.json")):
        try:
            state = DatasetState.load(path)
        except (UploadError, TypeError, KeyError):
            continue
        if state is not None and state.ledger_id is not None:
            found.append(state)
    return found


def _dht_thresholds(state: NetworkState, keys: list[bytes]) -> dict[bytes, dict[str, Any]]:
    """The owners' DHT dataset records under `keys` (from the ledger): t, holders, quorum."""
    from enigma.storage.dht import DhtNode
    from enigma.storage.records import DhtError

    found: dict[bytes, dict[str, Any]] = {}
    if not keys or not state.nodes:
        return found
    try:
        with DhtNode.start(bootstrap=[("127.0.0.1", int(state.nodes[0]["dht_port"]))],
                           rpc_timeout=1.0, timeout=10.0, client=True) as dht:
            for key in keys:
                record = dht.get_key(key)
                if record is not None and record.kind == "dataset":
                    found[key] = {"name": record.name, **record.body}
    except (DhtError, OSError):
        pass
    return found


def _threshold(t: int, n: int, quorum: int, weak: bool, source: str) -> dict[str, Any]:
    """A dataset's storage threshold as status reports it (see docs/threat-model.md)."""
    return {"t": t, "n": n, "quorum": quorum, "weak": weak or t + 1 < quorum,
            "threshold_from": source}


def status(home: Path) -> dict[str, Any]:
    """Nodes (deposit, open jobs, health), datasets and jobs, read from the ledger.

    Each dataset's threshold (t, n, the quorum it was shared for, weak) comes from its
    owner's progress file when one lies under `home` (an owner home in the network's
    folder, `<home>/<owner>/datasets/`), else from the owner's signed DHT record; None when
    neither is found.
    """
    state = NetworkState.load(home)
    ledger = Ledger.connect(state.rpc, state.owner_account, Deployment.load(
        Path(state.deployment)))
    nodes = []
    for n in state.nodes:
        info = ledger.node(n["address"])
        try:
            url = f"http://127.0.0.1:{n['metrics_port']}/health"
            with urllib.request.urlopen(url, timeout=2) as reply:
                healthy = reply.status == 200
        except OSError:
            healthy = False
        nodes.append({"address": info.address, "endpoint": info.endpoint,
                      "deposit_eth": info.deposit / 1e18, "active": info.active,
                      "open_jobs": info.open_jobs, "healthy": healthy})
    datasets, jobs, records = [], [], []
    for name, args in ledger.events():
        if name == "DatasetPosted":
            record = ledger.dataset(int(args["dataset_id"]))
            records.append(record)
            datasets.append({"id": record.dataset_id, "owner": record.owner,
                             "holders": len(record.holders), "expires_at": record.expires_at,
                             "policy": record.policy.name.lower().replace("_", "-"),
                             "name": None, "t": None, "n": None, "quorum": None,
                             "weak": None, "threshold_from": None})
        elif name == "JobPosted":
            job = ledger.job(int(args["job_id"]))
            jobs.append({"id": job.job_id, "dataset": job.dataset_id, "status": job.status.name,
                         "quorum": job.quorum, "commits": job.commits,
                         "escrow_eth": job.escrow / 1e18, "author": job.author,
                         "poster": job.poster})
    progress = {(p.ledger_id, tuple(h.address.lower() for h in p.holders)): p
                for p in _progress_files(home)}
    missing = []
    for entry, record in zip(datasets, records, strict=True):
        p = progress.get((record.dataset_id, tuple(a.lower() for a in record.holders)))
        if p is None:
            missing.append(record.dht_key)
            continue
        entry.update(name=p.name, **_threshold(p.t, len(p.holders), p.quorum, p.weak,
                                               "progress file"))
    found = _dht_thresholds(state, missing)
    for entry, record in zip(datasets, records, strict=True):
        body = found.get(record.dht_key)
        if body is not None and entry["t"] is None and "t" in body:
            t = int(body["t"])
            entry.update(name=body["name"], **_threshold(
                t, len(body.get("holders", [])), int(body.get("quorum") or t + 1),
                bool(body.get("weak", False)), "dht"))
    return {"rpc": state.rpc, "nodes": nodes, "datasets": datasets, "jobs": jobs}


HOME_OPTION = click.option(
    "--home", type=click.Path(path_type=Path, file_okay=False),
    default=lambda: context.default("network_home", context.DIR),
    show_default=f"the context's network, else {context.DIR}",
    help="Folder of the network: state, node homes, logs/.")


@click.command("up")
@click.option("--home", type=click.Path(path_type=Path, file_okay=False),
              default=Path(context.DIR), show_default=True,
              help="Folder of the network: state, context, node homes, logs/.")
@click.option("--nodes", default=5, show_default=True, help="Node daemons to start.")
@click.option("--prep-ahead", default=0, show_default=True, type=click.IntRange(0),
              help="Each node's `enigma node --prep-ahead`: HE triples its quorums keep "
                   "in stock after every job.")
def up_command(home: Path, nodes: int, prep_ahead: int) -> None:
    """Start the embedded ledger, N nodes and the DHT in the background."""
    try:
        with Progress("up") as progress:
            net = LocalNetwork.start(home, nodes, progress=progress,
                                     node_options=["--prep-ahead", str(prep_ahead)],
                                     agent=True)
    except (NetworkError, RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    s = net.state
    click.echo(f"up: ledger {s.rpc}, {len(s.nodes)} nodes, logs in {Path(s.home) / 'logs'}")
    click.echo(f"up: deployment {s.deployment}; owner account {s.owner_account}, analyst "
               f"account {s.analyst_account}")
    written = Path(s.home) / context.FILE
    found = context.locate()
    if found is not None and found.resolve() == written:
        click.echo(f"up: context {written}: other commands use this network by default")
    else:
        click.echo(f"up: context {written}; commands run here use "
                   f"{found or 'no context'}: export {context.ENV}={written}")


@click.command("status")
@HOME_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_command(home: Path, as_json: bool) -> None:
    """Nodes, deposits, datasets (with their thresholds) and jobs of the local network."""
    try:
        report = status(home)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    click.echo(f"ledger {report['rpc']}")
    for n in report["nodes"]:
        click.echo(f"  node {n['address']} {n['endpoint']} deposit {n['deposit_eth']:g} ETH "
                   f"active={n['active']} open_jobs={n['open_jobs']} healthy={n['healthy']}")
    for d in report["datasets"]:
        click.echo(f"  dataset {d['id']} owner {d['owner']} holders {d['holders']} "
                   f"policy {d['policy']} " + _threshold_text(d))
    for j in report["jobs"]:
        click.echo(f"  job {j['id']} on dataset {j['dataset']}: {j['status']}, "
                   f"{j['commits']}/{len(j['quorum'])} commits")


def _threshold_text(d: dict[str, Any]) -> str:
    """A dataset's threshold in words, with a WEAK marker when fewer than a quorum read it."""
    if d.get("t") is None:
        return "threshold unknown (no progress file under --home, no DHT record)"
    text = f"{d['name']}: t={d['t']} n={d['n']} for quorums of {d['quorum']}"
    if d["weak"]:
        text += (f" WEAK: any t+1 = {d['t'] + 1} holders can read it, fewer than a quorum "
                 f"of {d['quorum']}")
    return text


@click.command("down")
@HOME_OPTION
def down_command(home: Path) -> None:
    """Stop every node and the ledger started by `enigma up`."""
    try:
        pids = down(home)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"down: stopped {len(pids)} processes")
