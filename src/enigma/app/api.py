"""The Python API for notebooks: connect, share a table, run a signed script, list jobs.

    import enigma.app.api as enigma
    net = enigma.connect()                             # the context: e.g. from `enigma up`
    net = enigma.local(nodes=4)                        # or: that network, started if need be
    net.share(df, "examples/benefits.yaml", "benefits")  # for quorums of 3: t = 2, n = all nodes
    job = net.run("examples/by_state.py", "benefits", analyst=net.analyst())
    job.table()           # a DataFrame: a row per state, each result beside its error bound
    job.frame("workers"), enigma.values(job)["workers"], job.payout
    net.collect("benefits")                            # the table back, typed by the schema
    net.jobs()                                         # what the ledger says
    enigma.stop_local()                                # what `enigma down` does

Tables go in as a pandas DataFrame (pandas 3 dtypes too), a pyarrow Table, a dict of
arrays, or a CSV or Parquet path; results come out as pandas objects labelled with the
group names, bins or terms the script gives them (`lang/results.py`), never bare arrays
that leave the reader to remember which level came first.

An analyst may pay for a job where the dataset's policy allows it; the result goes to
the owner, and to the analyst too (sealed to its key) when the dataset has a release
policy:

    net.set_policy("benefits", Policy.OPEN)            # owner: anyone may post jobs
    job = enigma.submit(net.analyst(), "examples/clusters.py", net.dataset_id("benefits"))
    out = net.run("examples/clusters.py", "benefits", posted_job=job.job_id)   # owner
    cells = enigma.result(net.analyst(), job.job_id)    # the analyst, under a release policy

A release policy on the ledger says what jobs may let out; with an ε budget, each job
spends part of it (docs/disclosure.md):

    net.set_release("benefits", ReleasePolicy(n_min=10, epsilon_budget=1.0))   # owner
    job = net.run("examples/by_state.py", "benefits", analyst=a, epsilon=0.25)
    net.budget("benefits")["epsilon"]    # {"total": 1.0, "spent": 0.25, "left": 0.75}

`connect()` with no argument reads the same context as every `enigma` command (the
network `enigma up` started, or one written with `enigma context set`; app/context.py),
and acts as the same owner (the context's owner home): what `enigma share` shared, the
notebook can run jobs on. Arguments override the context, as flags do on the CLI.

One object holds the owner's identity, ledger account and DHT node, because a notebook
user is the data owner: only the owner may start jobs on its datasets and read their
results. `run` takes the analyst's signature (from `enigma sign`, or `sign(source)` on
an analyst's `Ledger` in the same notebook).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from enigma.lang.interpreter import Revealed
from enigma.lang.release import ReleasePolicy
from enigma.lang.schema import Schema
from enigma.ledger import Deployment, JobInfo, Ledger, Policy, script_hash

from . import context
from .accounts import bootstrap_peers
from .attempt import JobResult
from .context import DEFAULT_OWNER_HOME, Context, ContextError
from .disclosure import policy_of, set_release
from .logs import quiet_libraries
from .network import LocalNetwork, NetworkError, NetworkState, down
from .orchestration import run_job, sign_script, submit_job
from .owner import DEFAULT_QUORUM, Owner, UploadResult
from .recipient import read_result
from .upload import collected_table

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Network:
    """A connection to an Enigma network as a data owner."""

    owner: Owner
    rpc: str
    deployment: Path
    context: Context | None = None

    def share(self, table: Any, schema: Schema | str | Path, name: str, *,
              quorum: int = DEFAULT_QUORUM, t: int | None = None, n: int | None = None,
              weak: bool = False, chunk_rows: int = 1 << 16) -> UploadResult:
        """Share a DataFrame, pyarrow Table, dict of arrays, CSV or Parquet path t-of-n.

        For jobs on quorums of `quorum`: t defaults to quorum - 1 (only a whole quorum
        could read the data; a smaller t needs `weak`, `Owner.share`). `n` defaults to
        every active node, so that any quorum the ledger draws holds shares.
        """
        if not isinstance(schema, Schema):
            schema = Schema.load(schema)
        holders = len(self.owner.ledger.active_nodes()) if n is None else n
        return self.owner.share(table, schema, name, quorum=quorum, t=t, n=holders, weak=weak,
                                chunk_rows=chunk_rows)

    def analyst(self, account: str | None = None) -> Ledger:
        """An analyst's ledger account (default: the local network's analyst account)."""
        if account is None:
            if self.context is None or self.context.analyst_account is None:
                raise ValueError("give the analyst's account: the context names no analyst "
                                 "(`enigma context set --analyst-account` would)")
            account = self.context.analyst_account
        return Ledger.connect(self.rpc, account, Deployment.load(self.deployment))

    def collect(self, name: str) -> pd.DataFrame:
        """A dataset this owner shared, reconstructed from its holders: integers as int64,
        fixed-point values at the schema's precision, booleans, categoricals with every level
        (`Owner.collect` checks the shares and their tags; a holder it had to skip is a
        Python warning, as `enigma dataset collect` prints it)."""
        values = self.owner.collect(name)
        for text in values.warnings:
            warnings.warn(text, stacklevel=2)
        schema = Schema.from_dict(self.owner.state(name).schema)
        return collected_table(schema, values).to_pandas()

    def dataset_id(self, name: str) -> int:
        """The ledger id of a dataset this owner shared (what an analyst posts jobs on)."""
        return self.owner.ledger_id(name)

    def set_policy(self, name: str, policy: Policy, analysts: Sequence[str] = (),
                   scripts: Sequence[str | Path] = ()) -> None:
        """Who besides the owner may post (and pay for) jobs on a dataset.

        `Policy.OPEN`: anyone; `Policy.ALLOW_LIST`: the given analyst accounts and the
        given scripts (paths or sources, allowed by their hash); `Policy.OWNER_ONLY`
        (the default at sharing). Results always go to the owner alone.
        """
        ledger, dataset_id = self.owner.ledger, self.dataset_id(name)
        ledger.set_policy(dataset_id, policy)
        for account in analysts:
            ledger.allow_analyst(dataset_id, account)
        for script in scripts:
            ledger.allow_script(dataset_id, script_hash(_source(script)[1].encode()))

    def set_release(self, name: str, policy: ReleasePolicy) -> None:
        """Set or tighten the dataset's release policy on the ledger (owner only; once
        set, it only tightens: the ε budget can be lowered, never raised)."""
        set_release(self.owner.ledger, self.dataset_id(name), policy)

    def release(self, name: str) -> ReleasePolicy | None:
        """The dataset's release policy as the ledger holds it (None: none set)."""
        return policy_of(self.owner.ledger.release(self.dataset_id(name)))

    def budget(self, name: str) -> dict[str, Any]:
        """The dataset's privacy budget on the ledger: {"private": bool, "epsilon":
        {"total", "spent", "left"}, "delta": {...}}, as `enigma dataset budget --json`."""
        return self.owner.ledger.release(self.dataset_id(name)).budget()

    def run(self, script: str | Path, dataset: str, *, analyst: Ledger | None = None,
            author: str | None = None, signature: bytes | None = None, quorum: int = 3,
            reward: int = 0, insecure_dealer: bool = False,
            chunk_quorums: int = 0, posted_job: int | None = None,
            epsilon: float | None = None, delta: float = 0.0) -> JobResult:
        """Run a script (a path or its source) as a job and wait for the checked result.

        Sign with `analyst` (a Ledger of the author), or pass `author` and `signature`;
        or give `posted_job`, a job an analyst posted and paid for (`submit`) with this
        script (`author` then, if given, must be the one it names).
        `insecure_dealer` preprocesses with the test dealer (tests and benchmarks only).
        `chunk_quorums` > 0 splits the rows over that many quorums (network reduction,
        docs/reduction.md) when the script allows it; `result.reduction` says how it ran.
        `epsilon` (and `delta`): what the job spends of a differentially private dataset's
        budget; required there, and a job that would overrun it is refused before posting.
        """
        path, source = _source(script)
        if analyst is not None:
            author, signature = sign_script(analyst, source)
        if posted_job is None and (author is None or signature is None):
            raise ValueError("give analyst=, or author= and signature= (from `enigma sign`), "
                             "or posted_job=")
        return run_job(self.owner, dataset, source, author=author, signature=signature,
                       quorum_size=quorum, reward=reward,
                       filename=path.name if path else "<script>",
                       dealer_seed=os.urandom(32) if insecure_dealer else None,
                       chunk_quorums=chunk_quorums, posted_job=posted_job, epsilon=epsilon,
                       delta=delta)

    def jobs(self) -> list[JobInfo]:
        """Every job on the ledger, oldest first, with its status and quorum."""
        ledger = self.owner.ledger
        return [ledger.job(int(args["job_id"])) for name, args in ledger.events()
                if name == "JobPosted"]

    def close(self) -> None:
        self.owner.close()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _source(script: str | Path) -> tuple[Path | None, str]:
    """A script given as a path (a Path, or a string ending in .py) or as its text."""
    path = Path(script) if isinstance(script, Path) or str(script).endswith(".py") else None
    return path, path.read_text() if path is not None else str(script)


def submit(analyst: Ledger, script: str | Path, dataset_id: int, *, quorum: int = 3,
           reward: int = 0, schema: Schema | str | Path | None = None,
           epsilon: float | None = None, delta: float = 0.0) -> JobInfo:
    """As an analyst: sign a script and post it as a job paid from `analyst`'s account.

    Only where the dataset's policy admits this account or script (else a JobError with
    the ledger's refusal). Give the owner the script and `job.job_id`; the owner runs it
    with `Network.run(script, name, posted_job=job.job_id)` and alone reads the result.
    """
    path, source = _source(script)
    if schema is not None and not isinstance(schema, Schema):
        schema = Schema.load(schema)
    return submit_job(analyst, dataset_id, source, quorum_size=quorum, reward=reward,
                      schema=schema, filename=path.name if path else "<script>",
                      epsilon=epsilon, delta=delta)


def result(analyst: Ledger, job_id: int) -> dict[str, Revealed]:
    """As the analyst who posted a job on a dataset with a release policy: its released
    cells, sealed to `analyst`'s key by every member, once the owner accepted the job
    (suppressed cells are NaN with their reason; `recipient.read_result`)."""
    return read_result(analyst, job_id)


def connect(rpc: str | None = None, deployment: str | Path | None = None,
            account: str | bytes | None = None, home: str | Path | None = None,
            bootstrap: Sequence[tuple[str, int]] | None = None,
            context: str | Path | Context | None = None) -> Network:
    """Connect as the owner whose key lives in `home` (made on first use).

    Whatever is not given comes from `context` (a context file or a loaded Context), else
    from the context in force (ENIGMA_CONTEXT, else `.enigma-net/context.json` here or
    above), as on the command line; `home` then defaults to the context's owner home, else
    `.enigma-owner` like the CLI's `--home`.
    """
    found = context if isinstance(context, Context) else (
        Context.load(Path(context)) if context is not None else Context.find())
    rpc = rpc or (found and found.rpc)
    deployment = deployment or (found and found.deployment)
    account = account or (found and found.owner_account)
    if not (rpc and deployment and account):
        missing = [n for n, v in (("rpc", rpc), ("deployment", deployment),
                                  ("account", account)) if not v]
        raise ContextError(f"give {', '.join(missing)}: no context names them (start a "
                           "network with `enigma up`, or `enigma context set`)")
    owner_home = Path(home or (found.owner_home if found else DEFAULT_OWNER_HOME)).expanduser()
    if bootstrap is None:
        bootstrap = [] if found is None else bootstrap_peers(tuple(found.bootstrap))
    quiet_libraries()  # the DHT's unanswered datagrams are not for a notebook (app/logs.py)
    owner = Owner.open(owner_home, rpc, Path(deployment), account, bootstrap)
    return Network(owner, rpc, Path(deployment), found or None)


def connect_local(net_home: str | Path = ".enigma-net", home: str | Path | None = None
                  ) -> Network:
    """Connect to the network `enigma up` started from `net_home`, as its owner account
    (the context `up` wrote there)."""
    return connect(home=home, context=Path(net_home) / "context.json")


def local(net_home: str | Path = context.DIR, nodes: int = 4,
          home: str | Path | None = None) -> Network:
    """The local network of `net_home`, as its owner: the one `enigma up` (or an earlier
    call) started there, else a new one of `nodes` nodes, started in the background as
    `enigma up --nodes N` would (4 by default: quorums of 3 store on t + 2 = 4 holders).
    It keeps running after the notebook ends; `stop_local` or `enigma down` stops it."""
    try:
        NetworkState.load(Path(net_home))
    except NetworkError:
        LocalNetwork.start(Path(net_home), nodes)
    return connect_local(net_home, home)


def stop_local(net_home: str | Path = context.DIR) -> None:
    """Stop the local network of `net_home` (nodes, then the chain), as `enigma down`."""
    down(Path(net_home))


def values(result: JobResult) -> dict[str, np.ndarray]:
    """The result values alone, by reveal name (errors stay on `result.results`)."""
    return {name: r.value for name, r in result.results.items()}
