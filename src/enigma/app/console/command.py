"""`enigma console`: serve the owner's console for the context in force until Ctrl-C."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from enigma.app.context import Context, ContextError

from . import safety

SUMMARY = "The owner's web console (datasets, analyses, results, network) on 127.0.0.1."


def login_token(host: str) -> str | None:
    """The token a browser must present, made for any bind beyond loopback (safety.py)."""
    return None if safety.is_loopback(host) else secrets.token_urlsafe(32)


def start(context: Context, host: str = safety.LOOPBACK, port: int = 0,
          insecure_dealer: bool = False):
    """(server, url, console): a console for `context` listening on host:port (0: free).

    Off loopback a login token is made; the URL carries it, for the owner alone to open.
    """
    from .server import Console, create_app, serve

    token = login_token(host)
    console = Console(context, insecure_dealer=insecure_dealer)
    server = serve(create_app(console, token), host, port)
    url = f"http://{host}:{server.server_port}/" + (f"?token={token}" if token else "")
    return server, url, console


@click.command("console", help=SUMMARY)
@click.option("--host", default=safety.LOOPBACK, show_default=True,
              help="Address to listen on; anything but loopback needs --allow-remote and "
                   "then a login with the token printed at start.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free one).")
@click.option("--allow-remote", is_flag=True,
              help="Listen on a non-loopback --host (other machines reach the console).")
@click.option("--context", "context_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The context file [default: the one in force, as for every command].")
@click.option("--insecure-dealer", is_flag=True,
              help="INSECURE: jobs preprocess with the test dealer (tests and demos only).")
def console_command(host: str, port: int, allow_remote: bool, context_path: Path | None,
                    insecure_dealer: bool) -> None:
    if not safety.is_loopback(host) and not allow_remote:
        raise click.UsageError(f"--host {host} is not loopback: other machines could reach "
                               "the owner's console; add --allow-remote to mean it")
    found = Context.load(context_path) if context_path else Context.find()
    if found is None:
        raise ContextError("no context: start a network with `enigma up`, or write one with "
                           "`enigma context set`, or give --context FILE")
    if not safety.is_loopback(host):
        click.echo("WARNING: plain HTTP beyond this machine: whoever sees the traffic reads the "
                   "token and your results; prefer an SSH tunnel to 127.0.0.1, or put TLS in "
                   "front", err=True)
    if insecure_dealer:
        click.echo("WARNING: insecure test dealer: preprocessing sees every secret", err=True)
    server, url, console = start(found, host, port, insecure_dealer)
    click.echo(f"console: {url}" + ("  (the token in this URL is the login: keep it private)"
                                    if "token=" in url else ""))
    click.echo(f"console: context {found.path}; Ctrl-C stops it", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        console.close()
