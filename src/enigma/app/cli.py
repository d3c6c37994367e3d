"""The one command line, `enigma ...`; each layer contributes its own command group."""

import click


@click.group()
@click.version_option(package_name="enigma")
def main() -> None:
    """Enigma: analytics on private data that no one but its owner can read."""


if __name__ == "__main__":
    main()
