"""The job commands of the CLI: `enigma sign`, `enigma run`, `enigma job post|settle`."""


from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import click

from enigma.lang import results
from enigma.lang.errors import ScriptError
from enigma.lang.schema import Schema
from enigma.lang.script_commands import JSON
from enigma.ledger import (
    Deployment,
    Ledger,
    LedgerError,
)
from enigma.options import Renamed
from enigma.progress import Progress

from . import context
from .accounts import ACCOUNT, ledger_options
from .job_facts import JobError
from .orchestration import (
    DEFAULT_MULTIPLICATIONS,
    DEFAULT_ROUNDS,
    cancel_job,
    run_job,
    sign_script,
    submit_job,
)
from .owner_commands import OWNER_HOME, open_owner, owner_options
from .service import ServiceError

log = logging.getLogger(__name__)


SIGNATURE_BYTES = 65


def _signature(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
    """`--signature` as bytes: 65 of them in hex, as `enigma sign` prints."""
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != SIGNATURE_BYTES:
        raise click.BadParameter(f"{value[:20]!r} is not a signature ({2 * SIGNATURE_BYTES} "
                                 "hex digits); copy it from `enigma sign SCRIPT`", ctx, param)
    return raw


@click.command("sign")
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@ledger_options("The analyst's ledger account (dev chains).", role="analyst_account")
def sign_command(script: Path, rpc: str, deployment: Path, account: str | bytes) -> None:
    """Sign a script as its author; prints the signature for `enigma run --signature`."""
    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    author, sig = sign_script(ledger, script.read_text())
    click.echo(f"author={author} signature={sig.hex()}")


def _estimated_limit(owner: Any, dataset: str, script: Path, secure: bool
                     ) -> tuple[float, float]:
    """The job's time limit from the script's cost estimate on the dataset's rows
    (`lang.cost.time_limit`), said on stderr, and the seconds the estimate expects."""
    from enigma.lang.cost import DEALER, MARGIN, SECURE, estimate, time_limit

    state = owner.state(dataset)
    cost = estimate(script.read_text(), Schema.from_dict(state.schema), state.rows,
                    filename=script.name).cost
    limit = time_limit(cost, secure)
    click.echo(f"run: time limit {limit:,.0f} s (cost estimate at {state.rows:,} rows: "
               f"{cost}, times {MARGIN:g}; --time-limit sets it)", err=True)
    return limit, (SECURE if secure else DEALER).seconds(cost)


EPSILON = click.option(
    "--epsilon", type=float,
    help="The ε this job spends of the dataset's privacy budget (required on a "
         "differentially private dataset; `enigma dataset budget` shows what is left).")
DELTA = click.option("--delta", type=float, default=0.0, show_default=True,
                     help="The δ this job spends of the dataset's privacy budget.")


@click.command("run")
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--dataset", required=True, help="Name of a dataset this owner shared.")
@click.option("--author", type=ACCOUNT, help="The analyst's address (from `enigma sign`) "
              "[default: the context's analyst signs, when neither this nor --signature].")
@click.option("--signature", callback=_signature,
              help="The analyst's signature (130 hex digits, from `enigma sign`).")
@click.option("--job", "posted_job", type=int,
              help="Run this job, which an analyst posted and paid for (`enigma job post`), "
                   "instead of posting one; SCRIPT must be the text it was posted for.")
@click.option("--quorum", default=3, show_default=True, help="Members of the quorum.")
@click.option("--reward", default=0, show_default=True, help="Wei for the author on success.")
@EPSILON
@DELTA
@OWNER_HOME
@ledger_options("The owner's ledger account (dev chains).", role="owner_account")
@click.option("--insecure-dealer", is_flag=True,
              help="Preprocess with the test dealer, which sees every secret (tests only).")
@click.option("--chunk-quorums", default=0, show_default=True,
              help="Network reduction: run groups of chunks on this many quorums in parallel "
                   "and reduce on the job's quorum (scripts of associative aggregates).")
@click.option("--blame/--no-blame", default=None,
              help="Blame mode, on by default for a job on one quorum: on a failure, name "
                   "the culprit, slash or suspend it on the ledger and re-run on a new quorum "
                   "[default: on without --chunk-quorums].")
@click.option("--time-limit", type=click.FloatRange(min=1.0),
              help="Seconds the owner waits for the quorum [default: the script's cost "
                   "estimate on the dataset's rows, expected time times 4, at least 120].")
@JSON
def run_command(script: Path, dataset: str, author: str | None, signature: bytes | None,
                posted_job: int | None, quorum: int, reward: int, home: Path, rpc: str,
                deployment: Path, account: str | bytes, insecure_dealer: bool,
                chunk_quorums: int, blame: bool | None, time_limit: float | None,
                as_json: bool, epsilon: float | None, delta: float) -> None:
    """Run a signed script as a job on one of your datasets; prints the results (to you).

    Either post the job here (--author and --signature; without both, the context's
    analyst account signs, as on a network `enigma up` started), or run a job an analyst
    posted and paid for (--job ID, plus --author to insist on who wrote it).
    On a differentially private dataset, --epsilon says what the job spends of its
    budget; a job that would overrun it is refused before anything is posted.
    """
    from .owner import Owner

    analyst = context.default("analyst_account")
    if posted_job is None and author is None and signature is None and analyst is not None:
        author, signature = sign_script(Ledger.connect(rpc, analyst, Deployment.load(
            deployment)), script.read_text())
        click.echo(f"run: signed by the context's analyst account {author}", err=True)
    if posted_job is None and (author is None or signature is None):
        raise click.UsageError("give --author and --signature (from `enigma sign`), or --job "
                               "ID of a posted job")
    if blame and chunk_quorums > 0:
        raise click.UsageError("--blame needs one quorum: chunk and reducing quorums run "
                               "without it (docs/blame.md); drop --chunk-quorums")
    if insecure_dealer:
        click.echo("WARNING: insecure test dealer: preprocessing sees every secret", err=True)
    with Owner.open(home, rpc, deployment, account) as owner, Progress("run") as progress:
        try:
            if time_limit is None:
                time_limit, expected = _estimated_limit(owner, dataset, script,
                                                        not insecure_dealer)
                progress.expect(expected)
            out = run_job(owner, dataset, script.read_text(), author=author,
                          signature=signature,
                          quorum_size=quorum, reward=reward, filename=script.name,
                          dealer_seed=os.urandom(32) if insecure_dealer else None,
                          progress=lambda s: (progress.note(f"run: {s}") if
                                              s.startswith("WARNING") else progress.phase(s)),
                          chunk_quorums=chunk_quorums, posted_job=posted_job, blame=blame,
                          timeout=time_limit, epsilon=epsilon, delta=delta)
        except (JobError, ServiceError, ScriptError, LedgerError) as exc:
            _say_incidents(getattr(exc, "incidents", ()))
            raise click.ClickException(str(exc)) from exc
    _say_incidents(out.incidents)
    if out.refunded:
        raise click.ClickException("no quorum could finish the job; its escrow was refunded")
    if as_json:
        click.echo(json.dumps({
            "job": out.job_id, "quorum": out.quorum, "paid": out.payout,
            "results": {n: results.as_json(r) for n, r in out.results.items()},
            "printed": out.printed, "insecure_dealer": out.insecure_dealer,
            **({"reduction": out.reduction, "chunk_jobs": out.sub_jobs} if chunk_quorums
               else {})}))
        return
    for name, r in out.results.items():
        click.echo(results.text(name, r))
    click.echo(f"job {out.job_id}: quorum {out.quorum}, paid {out.payout}"
               + (f", refund to the poster {out.poster}" if posted_job is not None else ""))
    if chunk_quorums:
        click.echo(f"ran on {out.reduction}; chunk jobs {out.sub_jobs}")


def _say_incidents(incidents: Any) -> None:
    """The failed attempts of a job, on stderr: who was named, how, and the evidence."""
    for i in incidents:
        if not i.culprit:
            continue  # the job's own error says it: nobody was blamed
        click.echo(f"job {i.job_id} failed ({i.error[:120]}): {i.describe()}; evidence "
                   f"{i.evidence_path} (keccak256 {i.evidence_hash})", err=True)


@click.group("job")
def job_command() -> None:
    """The analyst's jobs: post and pay for a job where a dataset's policy allows it."""


@job_command.command("post")
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--dataset", "dataset_id", cls=Renamed, old=("--dataset-id",), required=True,
              type=int, metavar="ID",
              help="The dataset's id on the ledger (its owner tells you; `enigma status`).")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path, exists=True),
              help="The dataset's schema: check the script against it before paying.")
@click.option("--quorum", default=3, show_default=True, help="Members of the quorum.")
@click.option("--reward", default=0, show_default=True,
              help="Wei to the author when the owner accepts the result.")
@click.option("--rounds", default=DEFAULT_ROUNDS, show_default=True,
              help="Work budget: rounds (the unspent part is refunded to you).")
@click.option("--multiplications", default=DEFAULT_MULTIPLICATIONS, show_default=True,
              help="Work budget: multiplications.")
@EPSILON
@DELTA
@ledger_options("The analyst's ledger account (dev chains).", role="analyst_account")
def job_post_command(script: Path, dataset_id: int, schema_path: Path | None, quorum: int,
                     reward: int, rounds: int, multiplications: int, epsilon: float | None,
                     delta: float, rpc: str, deployment: Path, account: str | bytes) -> None:
    """Sign SCRIPT and post it as a job you pay for; the result goes to the dataset's owner.

    Give the owner the script text and the job id it prints: the owner runs it with
    `enigma run SCRIPT --dataset NAME --job ID`. Without a release policy on the dataset
    the owner alone reads the result; with one, you read the released cells too (`enigma
    job result ID`), and on a differentially private dataset --epsilon is required.
    """
    from enigma.lang.errors import SchemaError

    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    try:
        schema = None if schema_path is None else Schema.load(schema_path)
        job = submit_job(ledger, dataset_id, script.read_text(), quorum_size=quorum,
                         reward=reward, rounds=rounds, multiplications=multiplications,
                         schema=schema, filename=script.name, epsilon=epsilon, delta=delta)
    except (JobError, ScriptError, SchemaError, LedgerError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"job {job.job_id}: posted on ledger dataset {dataset_id} by {job.poster}, "
               f"escrow {job.escrow} wei, quorum {job.quorum}, script hash "
               f"{job.script_hash.hex()}"
               + (f", spending ε {epsilon:g} of the dataset's budget" if job.epsilon else ""))


@job_command.command("result")
@click.argument("job_id", type=int)
@ledger_options("The analyst's ledger account (dev chains): the job's poster.",
                role="analyst_account")
@JSON
def job_result_command(job_id: int, rpc: str, deployment: Path, account: str | bytes,
                       as_json: bool) -> None:
    """The released cells of a job you posted on a dataset with a release policy, sealed
    to your account's key by every member; readable once the owner accepted the job."""
    from .recipient import read_result

    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    try:
        out = read_result(ledger, job_id)
    except (JobError, LedgerError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"job": job_id,
                               "results": {n: results.as_json(r) for n, r in out.items()}}))
        return
    for name, r in out.items():
        click.echo(results.text(name, r))


@job_command.command("settle")
@click.argument("job_id", type=int)
@ledger_options("Any ledger account (it pays the gas).", role="owner_account")
def job_settle_command(job_id: int, rpc: str, deployment: Path, account: str | bytes) -> None:
    """Close a job past its deadline (anyone may): the poster gets its whole escrow back."""
    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    try:
        refund = ledger.timeout(job_id)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"job {job_id}: closed past its deadline; {refund} wei went back to its poster")


@job_command.command("cancel")
@click.argument("job_id", type=int)
@owner_options
def job_cancel_command(job_id: int, **owner_args: Any) -> None:
    """Stop a job you posted or that runs on your data: its quorum stops, the escrow goes
    back to whoever posted it, and nobody is blamed."""
    with open_owner(**owner_args) as owner:
        try:
            refund = cancel_job(owner, job_id)
        except (JobError, LedgerError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"job {job_id}: cancelled; {refund} wei of escrow went back to its poster")
