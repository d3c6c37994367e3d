"""Command-line options that every layer's commands share: renamed flags that still parse.

Why here, beside the layers: the commands of every layer (prep, ledger, storage, lang, app)
use the one vocabulary of docs/cli.md, and a flag that was renamed to it keeps its old
spelling for one release, so that a script written against the old one keeps working.
`Renamed` parses both spellings and shows only the new one in `--help`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click


class Renamed(click.Option):
    """An option whose `old` spellings still parse but no longer appear in `--help`.

    Use as `@click.option("--quorum", "quorum", cls=Renamed, old=("--parties",), ...)`:
    give the parameter's name explicitly, so that the function keeps its argument whatever
    the spellings are.
    """

    def __init__(self, param_decls: Sequence[str], *, old: Sequence[str] = (),
                 **attrs: Any) -> None:
        super().__init__([*param_decls, *old], **attrs)
        self.old = tuple(old)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown = [o for o in self.opts if o not in self.old]
        spelled = self.opts
        self.opts = shown
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = spelled
