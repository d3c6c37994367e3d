"""The owner's commands of the CLI: `enigma share` and `enigma dataset ...`."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from enigma.lang.errors import SchemaError
from enigma.lang.release import PolicyError, ReleasePolicy
from enigma.lang.schema import Schema
from enigma.ledger import LedgerError, Policy
from enigma.progress import Progress
from enigma.sharing import shamir
from enigma.storage.records import DhtError

from . import context
from .accounts import bootstrap_peers, ledger_options
from .disclosure import budget_text, policy_json, policy_of, policy_text, set_release
from .owner import DEFAULT_DURATION, DEFAULT_QUORUM, Owner, threshold
from .service import ServiceError
from .upload import UploadError, write_collected

log = logging.getLogger(__name__)


OWNER_HOME = click.option(
    "--home", type=click.Path(path_type=Path, file_okay=False),
    default=lambda: context.default("owner_home", str(context.DEFAULT_OWNER_HOME)),
    show_default=f"the context's owner home, else {context.DEFAULT_OWNER_HOME}",
    help="The owner's key (owner.key) and progress files.")
"""One owner identity: the CLI and the API (api.connect) default to the same home."""


def owner_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every owner command: its home, the ledger, who pays, the DHT."""
    fn = click.option("--bootstrap", multiple=True,
                      help="HOST:PORT of a DHT node [default: the context's, else the "
                           "nodes on the ledger].")(fn)
    fn = ledger_options("Ledger account the chain has unlocked (dev chains).",
                        role="owner_account")(fn)
    return OWNER_HOME(fn)


def open_owner(home: Path, rpc: str, deployment: Path, account: str | bytes,
                bootstrap: tuple[str, ...]) -> Owner:
    """The owner as the flags say (`account`: an address or a key, `accounts.payer`),
    the DHT peers from the context when none is given."""
    peers = bootstrap_peers(bootstrap or tuple(context.default("bootstrap", [])))
    try:
        return Owner.open(home, rpc, deployment, account, peers)
    except (LedgerError, DhtError) as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.contextmanager
def owner_step(owner_args: dict[str, Any], label: str, phase: str) -> Iterator[Owner]:
    """The owner as the flags say, with a progress line for a step of unknown length that
    talks to every holder (collect, recover, refresh, repair)."""
    with open_owner(**owner_args) as owner, Progress(label) as progress:
        progress.phase(phase)
        yield owner


def _count_rows(path: Path) -> int:
    """Rows in a table file, for the progress bar (a newline count for CSV)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            lines += block.count(b"\n")
    return max(0, lines - 1)


@click.command("share")
@click.argument("data", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--schema", "schema_path", type=click.Path(path_type=Path, exists=True),
              required=True, help="The dataset's schema (YAML).")
@click.option("--name", help="Dataset name; default: the file name without extension.")
@click.option("--quorum", default=DEFAULT_QUORUM, show_default=True, type=int,
              help="Members of the job quorums the data is for (`enigma run --quorum`).")
@click.option("-t", "--threshold", "t", type=int,
              help="Any t holders learn nothing; t + 1 reconstruct [default: quorum - 1, so "
                   "that only a whole quorum could].")
@click.option("-n", "--holders", "holders", type=int,
              help="Holders [default: t + 2, or the number of --holder given].")
@click.option("--weak-threshold", "weak", is_flag=True,
              help="Accept t < quorum - 1: fewer holders than a quorum could read the data.")
@click.option("--chunk-rows", default=1 << 16, show_default=True, type=click.IntRange(min=1),
              help="Rows per chunk: each chunk is stored, committed and computed on apart.")
@click.option("--holder", "chosen", multiple=True, help="Ledger address of a holder to use "
              "instead of drawing (repeat n times).")
@click.option("--duration", default=DEFAULT_DURATION, show_default=True, type=int,
              help="Seconds of storage to pay for.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: the dataset, its ledger id, rows, chunks, holders, "
                   "threshold and timings.")
@owner_options
def share_command(data: Path, schema_path: Path, name: str | None, quorum: int,
                  t: int | None, holders: int | None, weak: bool, chunk_rows: int,
                  chosen: tuple[str, ...], duration: int, as_json: bool,
                  **owner_args: Any) -> None:
    """Share a CSV or Parquet table t-of-n into the network and record it on the ledger.

    By default no coalition smaller than a whole quorum of --quorum members can read the
    stored data (t = quorum - 1), and one holder may be lost (n = t + 2)."""
    try:
        schema = Schema.load(schema_path)
        setting = threshold(quorum, t, holders, weak, len(chosen) or None)
    except (SchemaError, UploadError) as exc:
        raise click.ClickException(str(exc)) from exc
    if setting.weak:
        click.echo(f"WARNING: weak threshold: any {setting.t + 1} holders can read the data, "
                   f"fewer than a quorum of {setting.quorum}", err=True)
    for warning in setting.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    name = name or data.stem
    started = time.perf_counter()
    with open_owner(**owner_args) as owner, Progress("share") as progress:
        progress.phase(f"sharing {name} (rows)", total=_count_rows(data))
        try:
            result = owner.share(data, schema, name, quorum=quorum, t=setting.t, n=setting.n,
                                 weak=weak, chunk_rows=chunk_rows,
                                 holders=list(chosen) or None, duration=duration,
                                 progress=progress.advance)
        except (UploadError, ServiceError, LedgerError, DhtError) as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"dataset": result.name, "ledger_id": result.ledger_id,
                               "rows": result.rows, "chunks": result.chunks,
                               "holders": [h.address for h in result.holders],
                               "threshold": setting.as_json(),
                               "seconds": result.timings}))
        return
    click.echo(f"share: {result.name} is ledger dataset {result.ledger_id}: {result.rows:,} "
               f"rows in {result.chunks} chunk{'s' if result.chunks != 1 else ''}, "
               f"{setting.t + 1}-of-{setting.n} on {len(result.holders)} holders "
               f"(quorums of {setting.quorum}), "
               f"{time.perf_counter() - started:,.1f} s")
    for h in result.holders:
        click.echo(f"  holder {h.address}")


def dataset_group() -> click.Group:
    """`enigma dataset collect|recover|refresh|repair`: look after a shared dataset."""

    @click.group("dataset")
    def dataset() -> None:
        """Look after a dataset this owner shared: read it back, recover, refresh, repair."""

    @dataset.command("collect")
    @click.argument("name")
    @click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
                  help="CSV file to write the reconstructed table to.")
    @owner_options
    def collect(name: str, out: Path, **owner_args: Any) -> None:
        """Reconstruct the dataset from its holders into a CSV file (owner only)."""
        with owner_step(owner_args, "collect",
                        f"reconstructing {name} from its holders") as owner:
            try:
                values = owner.collect(name)
                schema = Schema.from_dict(owner.state(name).schema)
            except (UploadError, ServiceError, shamir.ShamirError) as exc:
                raise click.ClickException(str(exc)) from exc
        for warning in values.warnings:
            click.echo(f"WARNING: {warning}", err=True)
        write_collected(schema, values, out)
        click.echo(f"dataset: {name} written to {out}")

    @dataset.command("recover")
    @click.argument("name")
    @click.option("--lost", multiple=True, required=True, help="Ledger address of a lost holder.")
    @click.option("--replacement", multiple=True, required=True,
                  help="Ledger address of its replacement (same order as --lost).")
    @owner_options
    def recover(name: str, lost: tuple[str, ...], replacement: tuple[str, ...],
                **owner_args: Any) -> None:
        """Replace lost holders by resharing among the others (no reconstruction)."""
        with owner_step(owner_args, "recover",
                        f"resharing {name} onto {len(replacement)} new holder(s)") as owner:
            try:
                state = owner.recover(name, lost, replacement)
            except (UploadError, ServiceError, LedgerError) as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"dataset: {name} generation {state.gen} on "
                   f"{[h.address for h in state.holders]}, ledger record {state.ledger_id}")

    @dataset.command("refresh")
    @click.argument("name")
    @owner_options
    def refresh(name: str, **owner_args: Any) -> None:
        """Re-randomize every share of the dataset (proactive security)."""
        with owner_step(owner_args, "refresh", f"re-randomizing every share of {name}") as owner:
            try:
                state = owner.refresh(name)
            except (UploadError, ServiceError, LedgerError) as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"dataset: {name} refreshed to generation {state.gen}")

    @dataset.command("repair")
    @click.argument("name")
    @owner_options
    def repair(name: str, **owner_args: Any) -> None:
        """Audit every holder (missing, truncated, corrupt chunks) and re-share onto the
        damaged ones; exit 1 if anything is left for the owner to do."""
        with owner_step(owner_args, "repair", f"auditing every holder of {name}") as owner:
            try:
                report = owner.repair(name)
            except (UploadError, ServiceError, LedgerError) as exc:
                raise click.ClickException(str(exc)) from exc
        for line in report.lines():
            click.echo(f"dataset: {line}")
        if report.left is not None:
            raise SystemExit(1)

    @dataset.command("policy")
    @click.argument("name")
    @click.argument("policy", type=click.Choice(["owner-only", "allow-list", "open"]))
    @click.option("--analyst", "analysts", multiple=True,
                  help="Ledger address of an analyst to allow-list (repeat).")
    @owner_options
    def policy(name: str, policy: str, analysts: tuple[str, ...], **owner_args: Any) -> None:
        """Who besides you may post and pay for jobs on the dataset (`enigma job post`).

        Results of every job still go to you alone: you run posted jobs (`enigma run
        --job ID`), and nodes start a job only for the dataset's owner.
        """
        chosen = Policy[policy.upper().replace("-", "_")]
        with open_owner(**owner_args) as owner:
            try:
                ledger_id = owner.ledger_id(name)
                owner.ledger.set_policy(ledger_id, chosen)
                for analyst in analysts:
                    owner.ledger.allow_analyst(ledger_id, analyst)
            except (UploadError, LedgerError) as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"dataset: {name} (ledger dataset {ledger_id}) is {policy}"
                   + (f", allowing {list(analysts)}" if analysts else ""))

    @dataset.command("release")
    @click.argument("name")
    @click.option("--n-min", type=click.IntRange(min=1),
                  help="Suppress every cell computed over fewer rows than this.")
    @click.option("--dominance", nargs=2, type=(click.IntRange(min=1), float),
                  metavar="K P", default=None,
                  help="Suppress a sum's cell where its K largest contributors hold more "
                       "than P percent of it (as `enigma check --dominance`).")
    @click.option("--epsilon", type=float,
                  help="The dataset's total ε budget (differential privacy), spent job by "
                       "job; it can be lowered later, never raised.")
    @click.option("--delta", type=float, help="The dataset's total δ budget (with --epsilon).")
    @click.option("--json", "as_json", is_flag=True, help="Print the policy as JSON.")
    @owner_options
    def release(name: str, n_min: int | None, dominance: tuple[int, float] | None,
                epsilon: float | None, delta: float | None, as_json: bool,
                **owner_args: Any) -> None:
        """Show (no flags) or set the dataset's release policy on the ledger.

        What a job may let out, enforced by every member from the ledger's record: cells
        smaller than --n-min or dominated by a few contributors are suppressed, and with
        --epsilon released values get noise and each job spends part of the budget
        (`enigma run --epsilon`). Fields not given keep their value; once set, a policy
        only tightens (docs/disclosure.md).
        """
        with open_owner(**owner_args) as owner:
            try:
                ledger_id = owner.ledger_id(name)
                record = owner.ledger.release(ledger_id)
                if (n_min, dominance, epsilon, delta) != (None, None, None, None):
                    current = policy_of(record) or ReleasePolicy()
                    fields = current.as_dict()
                    fields.update({k: v for k, v in (
                        ("n_min", n_min), ("epsilon_budget", epsilon),
                        ("delta_budget", delta)) if v is not None})
                    if dominance is not None:
                        fields["dominance_k"], fields["dominance_p"] = dominance
                    record = set_release(owner.ledger, ledger_id,
                                         ReleasePolicy.from_dict(fields))
            except (UploadError, LedgerError, PolicyError) as exc:
                raise click.ClickException(str(exc)) from exc
        if as_json:
            click.echo(json.dumps(policy_json(name, record)))
            return
        for line in policy_text(name, record):
            click.echo(line)

    @dataset.command("budget")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print total, spent and left as JSON.")
    @owner_options
    def budget(name: str, as_json: bool, **owner_args: Any) -> None:
        """The dataset's privacy budget on the ledger: ε and δ in total, spent, left."""
        with open_owner(**owner_args) as owner:
            try:
                record = owner.ledger.release(owner.ledger_id(name))
            except (UploadError, LedgerError) as exc:
                raise click.ClickException(str(exc)) from exc
        if as_json:
            click.echo(json.dumps({"dataset": name, "ledger_id": record.dataset_id,
                                   **record.budget()}))
        elif not record.private:
            click.echo(f"dataset {name}: no ε budget (no differential privacy); set one "
                       "with `enigma dataset release NAME --epsilon E`")
        else:
            click.echo(f"dataset {name} (ledger dataset {record.dataset_id}): privacy budget")
            for line in budget_text(record):
                click.echo(line)

    return dataset


dataset_command = dataset_group()
