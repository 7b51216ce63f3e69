"""`resnetcli list [KIND]`: what the registry holds, and which plugins failed."""

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
    from rich.markup import escape
    from rich.table import Table

    from resnetcli.console import out
    from resnetcli.errors import ResnetCliError
    from resnetcli.registry import registry

    kinds = [kind] if kind else list(GROUPS)
    table = Table(title="resnetcli registry", show_lines=False)
    for column in ("name", "kind", "distribution", "description"):
        table.add_column(column, overflow="fold")
    problems: list[str] = []
    for k in kinds:
        reg = registry(k)  # raises UsageError (with suggestions) for an unknown kind
        for entry in reg:
            try:
                description = entry.description()
            except ResnetCliError as exc:
                problems.append(str(exc))
                continue
            table.add_row(entry.name, k, entry.distribution, escape(description))
        for name, dists in sorted(reg.conflicts.items()):
            problems.append(
                f"{k[:-1]} '{name}' is registered by {' and '.join(dists)}; it is unusable until one is removed"
            )
    out.print(table)
    for problem in problems:
        out.print(f"[bold red]broken:[/] {escape(problem)}")
