"""`resnetcli report [RUN]`: one self-contained HTML page about a run (resnetcli/report/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report_command(
    run_dir: Annotated[
        Path | None,
        typer.Argument(help="A run folder (runs/<name>). Default: the most recent run under --runs-dir.",
                       show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="HTML file to write. Default: <run>/report.html.", show_default=False),
    ] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    runs_dir: Annotated[Path, typer.Option(help="Where runs live, for finding the latest one.")] = Path("runs"),
) -> None:
    """Write one HTML file (no network needed to view it): curves, per-class results, calibration, data."""
    from resnetcli.console import escape, out
    from resnetcli.report import build_report

    path = build_report(run_dir, output, runs_dir=runs_dir)
    out.print(escape(f"wrote {path}"))
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
