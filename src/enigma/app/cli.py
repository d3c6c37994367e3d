"""The one command line, `enigma ...`; each layer contributes its own command group."""

import click

from enigma.app.demo import demo
from enigma.app.faults import evidence_group, faults_command
from enigma.app.job_commands import job_command, run_command, sign_command
from enigma.app.network import down_command, status_command, up_command
from enigma.app.node import node_command
from enigma.app.owner_commands import dataset_command, share_command
from enigma.lang.commands import check, schema
from enigma.lang.script_commands import script
from enigma.ledger.commands import ledger
from enigma.net.commands import net
from enigma.prep.commands import prep
from enigma.storage.commands import dht, store


@click.group()
@click.version_option(package_name="enigma")
def main() -> None:
    """Enigma: analytics on private data that no one but its owner can read."""


main.add_command(ledger)
main.add_command(net)
main.add_command(dht)
main.add_command(store)
main.add_command(schema)
main.add_command(check)
main.add_command(node_command)
main.add_command(share_command)
main.add_command(dataset_command)
main.add_command(prep)
main.add_command(script)
main.add_command(sign_command)
main.add_command(run_command)
main.add_command(job_command)
main.add_command(up_command)
main.add_command(status_command)
main.add_command(down_command)
main.add_command(demo)
main.add_command(faults_command)
main.add_command(evidence_group)

if __name__ == "__main__":
    main()
