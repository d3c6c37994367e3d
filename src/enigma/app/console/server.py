"""The console's application: one owner, one network, the pages registered on one Flask app.

Why one `Console` object passed to the pages rather than Flask globals: the pages are thin
(each calls what the CLI calls: `api.connect`, `Owner.share`, `run_job`, the checker, the
cost estimate, the ledger client) and the object says in one place what they share: the
owner's connection, made on first use and made again after a failure (a chain that was
down comes back without restarting the console), a lock that keeps the owner's client to
one change at a time (its DHT node and progress files are not made for two), the
background tasks, and the results of this session's jobs, which live in memory only: they
are the owner's private values and are never written by the console.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from enigma.app import api
from enigma.app.context import Context
from enigma.app.errors import explain
from enigma.lang.errors import ScriptError

from . import analyses, datasets, network, results, safety
from .results import Finished
from .tasks import Tasks


@dataclass
class Console:
    """What every page shares (module docstring)."""

    context: Context
    insecure_dealer: bool = False
    """Every job from this console preprocesses with the INSECURE test dealer (tests)."""
    tasks: Tasks = field(default_factory=Tasks)
    finished: dict[int, Finished] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held by what changes anything through the owner's client (share, run, renew, policy);
    pages that only read progress files or the ledger do not wait for a running job."""
    uploads: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="enigma-console-")))
    _network: api.Network | None = None
    _connecting: threading.Lock = field(default_factory=threading.Lock)

    def network(self) -> api.Network:
        """The owner's connection (made now if there is none; an error says why not)."""
        with self._connecting:
            if self._network is None:
                self._network = api.connect(context=self.context)
            return self._network

    def close(self) -> None:
        """Disconnect, and delete the uploads still kept (the owner's files, unshared)."""
        if self._network is not None:
            self._network.close()
            self._network = None
        shutil.rmtree(self.uploads, ignore_errors=True)


def create_app(console: Console, login_token: str | None = None) -> Flask:
    """The console as a WSGI app; `login_token` set means every browser must log in."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 30
    safety.install(app, login_token)
    app.jinja_env.globals["insecure_dealer"] = console.insecure_dealer
    for pages in (datasets, analyses, results, network):
        pages.register(app, console)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST" and login_token is not None and safety.token_matches(
                request.form.get("token"), login_token):
            session["logged_in"] = True
            return redirect(request.args.get("next") or url_for("datasets"))
        wrong = request.method == "POST"
        return render_template("login.html", wrong=wrong), 403 if wrong else 200

    @app.route("/tasks/<task_id>")
    def task_state(task_id: str) -> Any:
        """The task's phases and progress as JSON, for static/console.js."""
        task = console.tasks.get(task_id)
        if task is None:
            abort(404, "no such task (the console was restarted?)")
        return jsonify(task.as_json())

    @app.route("/tasks/<task_id>/view")
    def task_page(task_id: str) -> Any:
        task = console.tasks.get(task_id)
        if task is None:
            abort(404, "no such task (the console was restarted?)")
        return render_template("task.html", task=task.as_json(), task_id=task_id)

    @app.errorhandler(Exception)
    def failed(exc: Exception) -> Any:
        """Any failure as the CLI's one line (app/errors.py); nothing stored is touched."""
        if isinstance(exc, HTTPException):
            return render_template("error.html", message=exc.description), exc.code
        # bad input (a table, a script, a form); else a part that is down or a bug
        status = 400 if isinstance(exc, ValueError | ScriptError) else 503
        return render_template("error.html", message=explain(exc)), status

    return app


def serve(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """A threaded server for `app` (port 0: a free one); `serve_forever` runs it."""
    return make_server(host, port, app, threaded=True)
