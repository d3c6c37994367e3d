"""Analyses: a script checked against a dataset's schema, dry-run, estimated, then run.

Each button calls what the CLI calls, on the schema in the owner's progress file (the one
the nodes will hold the script to): `lang.checker.check` (the leak check; its finding is
drawn on the line it concerns), `lang.plain.dry_run` on SYNTHETIC data, `lang.cost.estimate`
(rounds, triples, bytes; measured on the test dealer over synthetic data, as `enigma
script estimate` does) priced by the ledger's own `job_price`, and `run_job` in a task
whose phases are the ones `enigma run` prints. Nothing is posted or paid before "run".

Who signs: a job names its author and the author's signature over the script (`enigma
sign`); the owner pastes both. On a local network whose context names an analyst account
the chain has unlocked, the console can sign with that account instead, and says so. Or
the owner picks a job an analyst posted and paid for (`enigma job post`, where the
dataset's policy admits it): the page lists the open ones on the owner's datasets, and the
script pasted must be the one whose hash the job names (`run_job(posted_job=)` checks it,
author and all, before any node is asked).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from flask import Flask, abort, redirect, render_template, request, url_for

from enigma.app.job_facts import JobError
from enigma.app.orchestration import (
    DEFAULT_MULTIPLICATIONS,
    DEFAULT_ROUNDS,
    run_job,
    sign_script,
)
from enigma.app.owner import DEFAULT_QUORUM
from enigma.lang.checker import check
from enigma.lang.cost import estimate
from enigma.lang.errors import ScriptError
from enigma.lang.plain import dry_run
from enigma.lang.schema import Schema
from enigma.ledger import JobStatus

from .datasets import MAX_QUORUM, form_int, owner_datasets
from .results import Finished
from .tasks import Task

if TYPE_CHECKING:
    from .server import Console

MAX_SCRIPT = 200_000
"""Characters of a pasted script (the language's scripts are a few dozen lines)."""


def _form() -> dict[str, Any]:
    script = request.form.get("script", "")
    uploaded = request.files.get("script_file")
    if uploaded is not None and uploaded.filename:
        script = uploaded.read(MAX_SCRIPT + 1).decode("utf-8", errors="replace")
    if len(script) > MAX_SCRIPT:
        abort(400, f"the script has more than {MAX_SCRIPT} characters")
    return {"script": script.replace("\r\n", "\n"), "dataset": request.form.get("dataset", ""),
            "quorum": form_int("quorum", DEFAULT_QUORUM, 2, MAX_QUORUM),
            "author": request.form.get("author", "").strip(),
            "signature": request.form.get("signature", "").strip(),
            "dev_sign": request.form.get("dev_sign") == "on",
            "posted_job": form_int("posted_job", 0, 0, 2**63) if request.form.get(
                "posted_job") else None}


def posted_jobs(console: Console) -> list[dict[str, Any]]:
    """Open jobs analysts posted and paid for on this owner's datasets, awaiting the owner."""
    network = console.network()
    mine = {s.ledger_id: s.name for s in owner_datasets(console) if s.ledger_id is not None}
    me = network.owner.ledger.address.lower()
    return [{"job": j, "dataset": mine[j.dataset_id], "escrow_eth": j.escrow / 1e18}
            for j in network.jobs() if j.dataset_id in mine and j.status is JobStatus.OPEN
            and j.poster.lower() != me and not j.commits]


def _signed(console: Console, form: dict[str, Any]) -> tuple[str, bytes]:
    """(author, signature): pasted, or by the context's analyst account (dev chains)."""
    if form["dev_sign"]:
        return sign_script(console.network().analyst(), form["script"])
    if not form["author"] or not form["signature"]:
        abort(400, "give the author's address and the signature `enigma sign` printed, or "
                   "tick 'sign with the network's analyst account'")
    try:
        return form["author"], bytes.fromhex(form["signature"].removeprefix("0x"))
    except ValueError:
        abort(400, "the signature is not hexadecimal: paste what `enigma sign` printed")


def register(app: Flask, console: Console) -> None:
    @app.route("/analyses", methods=["GET", "POST"])
    def analyses() -> Any:
        names = [s.name for s in owner_datasets(console) if s.sealed]
        can_dev_sign = console.context.analyst_account is not None
        posted = posted_jobs(console)
        if request.method == "GET":
            return render_template("analyses.html", names=names, form={"quorum": DEFAULT_QUORUM},
                                   can_dev_sign=can_dev_sign, view=None, posted=posted)
        form, action = _form(), request.form.get("action", "check")
        if form["dataset"] not in names:
            abort(400, f"choose one of your shared datasets, not {form['dataset']!r}")
        if action == "run":
            return _run(console, form)
        state = console.network().owner.state(form["dataset"])
        schema = Schema.from_dict(state.schema, f"the progress file of {state.name!r}")
        view: dict[str, Any] = {"lines": form["script"].rstrip("\n").split("\n"),
                                "rows": state.rows}
        try:
            checked = check(form["script"], schema, "script")
        except ScriptError as exc:
            view["finding"] = exc
        else:
            view["outputs"] = [(o.name, str(o.type)) for o in checked.outputs]
            view["dry_run"] = dry_run(checked, schema, rows=state.rows)
            if action == "estimate":
                view["estimate"] = estimate(form["script"], schema, state.rows,
                                            filename="script")
                ledger = console.network().owner.ledger
                cost = view["estimate"].cost
                view["fee_eth"] = ledger.job_price(form["quorum"], cost.rounds,
                                                   cost.triples) / 1e18
                view["escrow_eth"] = ledger.job_price(
                    form["quorum"], DEFAULT_ROUNDS, DEFAULT_MULTIPLICATIONS) / 1e18
        return render_template("analyses.html", names=names, form=form, view=view,
                               can_dev_sign=can_dev_sign, posted=posted)


def _run(console: Console, form: dict[str, Any]) -> Any:
    """Start the job in a task; its page follows the phases and then shows the result."""
    author, signature = (None, None) if form["posted_job"] is not None else _signed(console,
                                                                                     form)
    state = console.network().owner.state(form["dataset"])
    schema = Schema.from_dict(state.schema, f"the progress file of {state.name!r}")
    outputs = {o.name: o.type for o in check(form["script"], schema, "script").outputs}
    task = Task("run")
    if console.insecure_dealer:
        task.say("INSECURE test dealer: this job's preprocessing could read every input")

    def work(task: Task) -> Any:
        with console.lock:
            result = run_job(console.network().owner, form["dataset"], form["script"],
                             author=author, signature=signature, quorum_size=form["quorum"],
                             posted_job=form["posted_job"],
                             filename="script", progress=task.say,
                             dealer_seed=os.urandom(32) if console.insecure_dealer else None)
        if result.refunded:
            raise JobError("no quorum could finish the job; its escrow was refunded")
        console.finished[result.job_id] = Finished(result, form["script"], form["dataset"],
                                                   outputs)
        task.say(f"job {result.job_id}: result checked, job accepted and paid")
        return result

    task_id = console.tasks.start(task, work, lambda r: f"/results/{r.job_id}")
    return redirect(url_for("task_page", task_id=task_id))
