"""`resnetcli runs [DIR]`: the runs under DIR as a table or JSON; `--compare A B` puts two side by side
(work in resnetcli/runs_table.py)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from resnetcli.commands.common import option


class Format(str, Enum):
    table = "table"
    json = "json"


def runs_command(
    runs_dir: Annotated[Path, typer.Argument(help="Folder that holds the runs.")] = Path("runs"),
    compare: Annotated[tuple[str, str] | None, typer.Option(
        "--compare", metavar="A B", help="Two runs (names under DIR or run folders): their configs' differences "
        "and metric curves side by side.", show_default=False)] = None,
    output_format: Annotated[Format, option("format", "table or json.")] = Format.table,
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE.png", help="With --compare: also draw both runs' loss and accuracy per epoch "
        "into this PNG.", show_default=False)] = None,
) -> None:
    """List runs (newest first): arch, data, epochs, best/last val and test accuracy, state, when."""
    from resnetcli.console import err, escape, out
    from resnetcli.errors import UsageError
    from resnetcli.runs_table import compare_json, compare_png, compare_tables, find_run, find_runs, runs_table

    if plot is not None and not compare:
        raise UsageError("--plot draws the two runs of --compare A B; give --compare too")
    if compare:
        a, b = (find_run(name, runs_dir) for name in compare)
        if plot is not None:
            if not compare_png(plot, a, b):
                raise UsageError("--plot needs matplotlib: pip install 'resnetcli[plot]'")
            err.print(escape(f"wrote {plot}"))  # stderr: stdout may be the JSON a script parses
        if output_format is Format.json:
            typer.echo(json.dumps(compare_json(a, b), indent=2))  # plain: rich would wrap what a script parses
            return
        for table in compare_tables(a, b):
            out.print(table)
        return
    runs = find_runs(runs_dir)
    if output_format is Format.json:
        typer.echo(json.dumps([r.to_json() for r in runs], indent=2))
    elif not runs:
        out.print(escape(f"no runs under {runs_dir}/ (train writes runs/<name>/)"))
    else:
        out.print(runs_table(runs, f"runs in {runs_dir}"))
