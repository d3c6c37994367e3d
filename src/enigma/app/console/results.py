"""Results: the owner's values with their error bounds and labels, a chart, downloads, and
beside them the job's public record as the chain holds it.

Why the record is read from the chain and not from the JobResult: the page should show
what anyone can verify (quorum, each member's result commitment, fees, the author's
reward), so the owner can compare it with what the console computed; the JobResult's own
copy is what the owner's client checked.

Labels: a result's dimensions are named from the script and the schema alone where the
checker says them (`ValueType.axes`: group-by levels, histogram bins, regression terms);
where it does not, positions are numbered. A value is shown only on these pages, to the
owner who ran the job; downloads are sent with `no-store` so no cache keeps them.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from flask import Flask, Response, abort, render_template

from .charts import chart

if TYPE_CHECKING:
    from .server import Console


@dataclass
class Finished:
    """A job this console ran: its result (the owner's), its script and the output types."""

    outcome: Any
    """The JobResult."""
    script: str
    dataset: str
    outputs: dict[str, Any]
    """Reveal name -> the checker's type of it (shape, and the names along its axes)."""


def labels(output_type: Any, shape: tuple[int, ...]) -> list[list[str]]:
    """Names along each dimension of a result: the checker's, else positions."""
    axes = getattr(output_type, "axes", ())
    if len(axes) == len(shape):
        return [list(a.labels) for a in axes]
    return [[str(i) for i in range(d)] for d in shape]


def rows_of(finished: Finished) -> list[dict[str, Any]]:
    """One row per element of every result: name, position labels, value, error bound."""
    rows = []
    for name, r in finished.outcome.results.items():
        value, error = np.asarray(r.value), np.asarray(r.error)
        names = labels(finished.outputs.get(name), value.shape)
        for index in np.ndindex(value.shape):
            rows.append({"result": name,
                         "label": " / ".join(names[d][i] for d, i in enumerate(index)),
                         "value": float(value[index]), "error": float(error[index])})
    return rows


def chain_record(console: Console, job_id: int) -> dict[str, Any]:
    """The job's public record: status, quorum with each commitment, fees and reward."""
    ledger = console.network().owner.ledger
    job = ledger.job(job_id)
    members = [{"address": a, "commitment": ledger.commit_of(job_id, a).commitment.hex()}
               for a in job.quorum]
    paid = next((args for name, args in ledger.events()
                 if name == "JobAccepted" and int(args["job_id"]) == job_id), None)
    return {"job": job, "status": job.status.name.lower(), "members": members,
            "escrow_eth": job.escrow / 1e18, "script_hash": job.script_hash.hex(),
            "paid": None if paid is None else {k: int(paid[k]) / 1e18
                                               for k in ("to_nodes", "reward", "refund")}}


def register(app: Flask, console: Console) -> None:
    def found(job_id: int) -> Finished:
        finished = console.finished.get(job_id)
        if finished is None:
            abort(404, f"this console ran no job {job_id} (results live in the console that "
                       "ran the job, in memory only)")
        return finished

    @app.route("/results")
    def results() -> Any:
        return render_template("results.html", finished=sorted(console.finished.items()))

    @app.route("/results/<int:job_id>")
    def result(job_id: int) -> Any:
        finished = found(job_id)
        charts = {}
        for name, r in finished.outcome.results.items():
            value = np.asarray(r.value)
            names = labels(finished.outputs.get(name), value.shape)
            charts[name] = chart(value, r.error, names[0] if names else [], name)
        record = chain_record(console, job_id)
        return render_template("result.html", job_id=job_id, finished=finished,
                               rows=rows_of(finished), charts=charts, record=record)

    @app.route("/results/<int:job_id>.<kind>")
    def download(job_id: int, kind: str) -> Any:
        rows = rows_of(found(job_id))
        if kind == "json":
            body, mime = json.dumps({"job": job_id, "results": rows}, indent=1), \
                "application/json"
        elif kind == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, ["result", "label", "value", "error"])
            writer.writeheader()
            writer.writerows(rows)
            body, mime = out.getvalue(), "text/csv"
        else:
            abort(404, "download as .csv or .json")
        return Response(body, mimetype=mime, headers={
            "Content-Disposition": f"attachment; filename=job-{job_id}.{kind}",
            "Cache-Control": "no-store"})
