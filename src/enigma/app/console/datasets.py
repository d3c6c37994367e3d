"""Datasets: the owner's list, one dataset's schema and ledger record, upload, renew, policy.

Upload in two requests, so that nothing is shared before the owner has seen the check:
1. POST /upload keeps the file and its schema in the console's private temporary folder
   and checks every cell against the schema (`Schema.validate` for CSV, the one the CLI's
   `enigma schema validate` runs; the sharing reader `upload.read_chunks` for Parquet), and
   shows the result cell by cell: each refused cell in its row and column with why. Only
   the refused cells' own texts appear (the owner must see what to fix), no other value.
2. POST /upload/<id>/share, offered only when every cell passed, shares the table with
   `Owner.share` in a background task whose progress bar counts the rows sent.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, abort, redirect, render_template, request, url_for
from werkzeug.utils import secure_filename

from enigma.app.home import DATASET_NAME
from enigma.app.owner import DEFAULT_DURATION, DEFAULT_QUORUM, DatasetState
from enigma.app.owner_commands import _count_rows as count_rows
from enigma.app.upload import UploadError, read_chunks
from enigma.field import Field
from enigma.lang.errors import SchemaError, Violation
from enigma.lang.schema import Schema
from enigma.ledger import Policy

from .tasks import Task

if TYPE_CHECKING:
    from .server import Console

UPLOAD_ID = re.compile(r"[0-9a-f]{16}")
SHOWN_ROWS = 20
"""Rows with refused cells drawn in the grid; the count says how many more there are."""
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
MAX_QUORUM = 20


def form_int(name: str, default: int, lo: int, hi: int) -> int:
    """An integer field of the posted form, or a 400 naming the field and its range."""
    text = request.form.get(name) or str(default)
    try:
        value = int(text)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        abort(400, f"{name} must be a whole number from {lo} to {hi}, not {text!r}")
    return value


def owner_datasets(console: Console) -> list[DatasetState]:
    """The owner's progress files (no data, no shares), by name."""
    folder = console.network().owner.home / "datasets"
    found = (DatasetState.load(p) for p in sorted(folder.glob("*.json")))
    return [s for s in found if s is not None]


def ledger_facts(console: Console, state: DatasetState) -> dict[str, Any]:
    """The dataset's public record: expiry, policy, holders, and the fee of 30 more days."""
    if state.ledger_id is None:
        return {"on_ledger": False}
    ledger = console.network().owner.ledger
    record = ledger.dataset(state.ledger_id)
    return {"on_ledger": True, "id": record.dataset_id,
            "expires": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.expires_at)),
            "policy": record.policy.name.lower().replace("_", "-"),
            "holders": record.holders,
            "renew_fee_eth": ledger.storage_fee(len(record.holders), DEFAULT_DURATION) / 1e18}


def check_table(path: Path, schema: Schema) -> dict[str, Any]:
    """Every refused cell, grouped by row, for the grid (module docstring, step 1)."""
    if path.suffix.lower() == ".csv":
        violations = schema.validate(path)
    else:
        try:
            for _ in read_chunks(path, schema, Field()):
                pass
            violations = []
        except UploadError as exc:
            violations = [Violation(exc.row or 0, exc.column or "*", str(exc))]
    by_row: dict[int, dict[str, str]] = {}
    for v in violations:
        by_row.setdefault(v.row, {})[v.column] = v.message
    rows = sorted(by_row)
    return {"violations": len(violations), "bad_rows": len(rows),
            "grid": [(r, by_row[r]) for r in rows[:SHOWN_ROWS]],
            "more_rows": max(0, len(rows) - SHOWN_ROWS), "rows": count_rows(path)}


def register(app: Flask, console: Console) -> None:
    @app.route("/")
    def home() -> Any:
        return redirect(url_for("datasets"))

    @app.route("/datasets")
    def datasets() -> Any:
        states = owner_datasets(console)
        facts = {s.name: ledger_facts(console, s) for s in states}
        return render_template("datasets.html", states=states, facts=facts)

    @app.route("/datasets/<name>")
    def dataset(name: str) -> Any:
        if not DATASET_NAME.fullmatch(name):
            abort(404, f"no dataset {name!r}")
        state = console.network().owner.state(name)
        facts = ledger_facts(console, state)
        schema = Schema.from_dict(state.schema)
        return render_template("dataset.html", state=state, facts=facts, schema=schema,
                               policies=[p.name.lower().replace("_", "-") for p in Policy])

    @app.route("/datasets/<name>/renew", methods=["POST"])
    def renew(name: str) -> Any:
        days = form_int("days", 30, 1, 3650)
        with console.lock:
            owner = console.network().owner
            owner.ledger.renew(owner.ledger_id(name), days * 24 * 3600)
        return redirect(url_for("dataset", name=name))

    @app.route("/datasets/<name>/policy", methods=["POST"])
    def policy(name: str) -> Any:
        chosen = request.form.get("policy", "")
        try:
            value = Policy[chosen.upper().replace("-", "_")]
        except KeyError:
            abort(400, f"policy {chosen!r} is none of owner-only, allow-list, open")
        analysts = [a.strip() for a in request.form.get("analysts", "").split(",") if a.strip()]
        with console.lock:
            console.network().set_policy(name, value, analysts)
        return redirect(url_for("dataset", name=name))

    @app.route("/upload", methods=["GET", "POST"])
    def upload() -> Any:
        if request.method == "GET":
            return render_template("upload.html", quorum=DEFAULT_QUORUM)
        table, schema_file = request.files.get("table"), request.files.get("schema")
        if table is None or not table.filename or schema_file is None:
            abort(400, "choose a table (CSV or Parquet) and its schema (YAML)")
        suffix = Path(table.filename).suffix.lower()
        if suffix not in TABLE_SUFFIXES:
            abort(400, f"{table.filename}: a table is a .csv or .parquet file, not {suffix!r}")
        name = request.form.get("name") or Path(secure_filename(table.filename)).stem
        if not DATASET_NAME.fullmatch(name):
            abort(400, f"dataset name {name!r} must be 1-48 letters, digits, '_' or '-'")
        upload_id = secrets.token_hex(8)
        folder = console.uploads / upload_id
        folder.mkdir(mode=0o700)
        data_path, schema_path = folder / f"table{suffix}", folder / "schema.yaml"
        table.save(data_path)
        schema_file.save(schema_path)
        try:
            schema = Schema.load(schema_path)
        except SchemaError as exc:
            abort(400, f"{schema_file.filename}: {exc}")
        quorum = form_int("quorum", DEFAULT_QUORUM, 2, MAX_QUORUM)
        (folder / "name").write_text(f"{name}\n{quorum}\n")
        report = check_table(data_path, schema)
        if report["violations"]:  # nothing to share: the owner's file is not kept
            shutil.rmtree(folder)
        return render_template("check.html", report=report, schema=schema, name=name,
                               upload_id=upload_id, filename=table.filename, quorum=quorum)

    @app.route("/upload/<upload_id>/share", methods=["POST"])
    def share(upload_id: str) -> Any:
        if not UPLOAD_ID.fullmatch(upload_id) or not (console.uploads / upload_id).is_dir():
            abort(404, "no such upload: send the file again")
        folder = console.uploads / upload_id
        name, quorum = (folder / "name").read_text().split()
        data_path = next(folder.glob("table.*"))
        schema = Schema.load(folder / "schema.yaml")
        task = Task("share", total=count_rows(data_path))

        def work(task: Task) -> Any:
            task.say(f"sharing {name}: {task.total} rows, for quorums of {quorum}")
            with console.lock:
                owner = console.network().owner
                # onto every active node, as `api.Network.share` does: any quorum the
                # ledger draws then holds shares
                result = owner.share(data_path, schema, name, quorum=int(quorum),
                                     n=len(owner.ledger.active_nodes()),
                                     progress=task.advance)
            task.say(f"recorded on the ledger as dataset {result.ledger_id}, "
                     f"{len(result.holders)} holders")
            data_path.unlink()
            return result

        page = url_for("dataset", name=name)
        task_id = console.tasks.start(task, work, lambda _: page)
        return redirect(url_for("task_page", task_id=task_id))
