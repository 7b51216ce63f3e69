"""`resnetcli list [KIND]`: what the registry holds, and which plugins failed.

Descriptions are read from each entry's source, so listing imports neither torch nor any plugin; with
`resnetcli --verbose list` every entry is imported instead, which shows the real import error of a broken
plugin and the entry point each name comes from.
"""

from __future__ import annotations

from typing import Annotated

import typer

from resnetcli.registry import GROUPS


def _complete_kind(incomplete: str) -> list[str]:
    return [k for k in GROUPS if k.startswith(incomplete)]


def list_command(
    kind: Annotated[
        str | None,
        typer.Argument(
            help=f"One of: {', '.join(GROUPS)}. All kinds when left out.",
            autocompletion=_complete_kind,
            show_default=False,
        ),
    ] = None,
) -> None:
    """List registered architectures, augmentations, optimizers, schedulers and datasets."""
    from rich.table import Table

    from resnetcli.cli import verbose
    from resnetcli.console import escape, out
    from resnetcli.errors import ResnetCliError
    from resnetcli.registry import registry

    load = verbose()
    kinds = [kind] if kind else list(GROUPS)
    table = Table(title="resnetcli registry", show_lines=False)
    columns = ["name", "kind", "distribution", "description"] + (["entry point"] if load else [])
    for column in columns:
        table.add_column(column, overflow="fold")
    problems: list[str] = []
    for k in kinds:
        reg = registry(k)  # raises UsageError (with suggestions) for an unknown kind
        for entry in reg:
            try:
                description = entry.description(load=load)
            except ResnetCliError as exc:
                problems.append(str(exc))
                continue
            row = [escape(entry.name), k, escape(entry.distribution), escape(description)]
            table.add_row(*row, *([escape(entry.value)] if load else []))
        for name, dists in sorted(reg.conflicts.items()):
            problems.append(
                f"{k[:-1]} '{name}' is registered by {' and '.join(dists)}; it is unusable until one is removed"
            )
    out.print(table)
    for problem in problems:
        out.print(f"[bold red]broken:[/] {escape(problem)}")
