"""The one command line, `enigma ...`; each layer contributes its own command group.

Why the commands load lazily: importing every command module pulls in the ledger client
(web3, eth_account, py-evm), the HE library and the compiled field kernels, 2.5-3 s on
this machine before `enigma --help` could print a line. The group below knows each
command's module and one-line summary; it imports a command's module only when that
command runs (or its own --help is asked for), so `enigma --help` costs click alone.
`tests/test_app_cli.py` checks that the summaries here match the commands' own help.

Why errors are caught here, once: an ordinary mistake (a dataset that does not exist, a
chain that is down, an unfunded account) used to end in a traceback of up to a hundred
lines from whichever layer noticed it. The group turns every exception a command lets
through into one line naming the problem (app/errors.py says how; exit 1), as click does
for usage errors (exit 2); `enigma --debug ...` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from enigma.app.logs import configure, log_options

COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("enigma.lang.commands:check",
              "Check analysis SCRIPTS against a schema: refuse any private value that could "
              "leak."),
    "console": ("enigma.app.console.command:console_command",
                "The owner's web console (datasets, analyses, results, network) on "
                "127.0.0.1."),
    "context": ("enigma.app.context:context_command",
                "Show the network every command uses by default: chain, deployment, accounts, "
                "owner home."),
    "dataset": ("enigma.app.owner_commands:dataset_command",
                "Look after a dataset this owner shared: read it back, recover, refresh, "
                "repair."),
    "demo": ("enigma.app.demo:demo",
             "The whole system on a local network (default, as `system`), or `foundations`."),
    "dht": ("enigma.storage.commands:dht",
            "Discovery: the Kademlia DHT that maps datasets and chunks to their holders."),
    "down": ("enigma.app.network:down_command",
             "Stop every node and the ledger started by `enigma up`."),
    "evidence": ("enigma.app.faults:evidence_group",
                 "Accusations on the ledger and the evidence files behind them "
                 "(docs/blame.md)."),
    "faults": ("enigma.app.faults:faults_command",
               "Run every fault kind on a local network: detected, identified, slashed, "
               "honest loss, seconds to recovery, result correct (test nodes cheat on "
               "purpose; the INSECURE test dealer unless --he)."),
    "job": ("enigma.app.job_commands:job_command",
            "The analyst's jobs: post and pay for a job where a dataset's policy allows it."),
    "ledger": ("enigma.ledger.commands:ledger",
               "The public ledger: an Ethereum chain with Enigma's contracts."),
    "net": ("enigma.net.commands:net",
            "Transport: node keys for the authenticated, encrypted mesh between quorum "
            "members."),
    "node": ("enigma.app.node:node_command",
             "Run a node until SIGTERM: stake, join the DHT, store shares, serve metrics."),
    "prep": ("enigma.prep.commands:prep",
             "Preprocessing by homomorphic encryption (no trusted dealer)."),
    "run": ("enigma.app.job_commands:run_command",
            "Run a signed script as a job on one of your datasets; prints the results (to "
            "you)."),
    "schema": ("enigma.lang.commands:schema",
               "Schemas: the public description of a private table (kinds, ranges, levels, "
               "labels)."),
    "script": ("enigma.lang.script_commands:script",
               "Analysis scripts: dry run on synthetic data, cost estimate, run on a local "
               "quorum."),
    "share": ("enigma.app.owner_commands:share_command",
              "Share a CSV or Parquet table t-of-n into the network and record it on the "
              "ledger."),
    "sign": ("enigma.app.job_commands:sign_command",
             "Sign a script as its author; prints the signature for `enigma run "
             "--signature`."),
    "status": ("enigma.app.network:status_command",
               "Nodes, deposits, datasets (with their thresholds) and jobs of the local "
               "network."),
    "store": ("enigma.storage.commands:store", "The local share store of a node."),
    "up": ("enigma.app.network:up_command",
           "Start the embedded ledger, N nodes and the DHT in the background."),
}
"""Command name -> (module:attribute of the click command, the summary `--help` lists)."""


def load_command(target: str) -> click.Command:
    """The click command at "module:attribute" (imports the module)."""
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when they are invoked, not listed."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(load_command(self.lazy[cmd_name][0]), cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(self, args: Any = None, **kwargs: Any) -> Any:
        """From a terminal (no `args`), the owner's chain commands go to the network's warm
        agent when `enigma up` started one (app/agent.py says why); tests and the agent
        itself pass `args` and always run here."""
        if args is None:
            from enigma.app.forwarding import forward

            code = forward(sys.argv[1:])
            if code is not None:
                sys.exit(code)
        return super().main(args, **kwargs)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            # whoever read our output went away (`enigma ... | head`): nothing is wrong and
            # nobody is left to tell; Python's own advice for SIGPIPE, then exit 1
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            from enigma.app.errors import explain

            raise click.ClickException(explain(exc)) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the summaries of the table instead of loaded commands."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name) or click.Command(name, help=self.lazy[name][1])
            rows.append((name, loaded.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="enigma")
@click.option("--debug", is_flag=True, envvar="ENIGMA_DEBUG",
              help="Show the traceback of an error instead of its one-line message.")
@log_options("warning")
def main(debug: bool, log_level: str, log_format: str) -> None:
    """Enigma: analytics on private data that no one but its owner can read."""
    configure(log_level, log_format)


if __name__ == "__main__":
    main()
