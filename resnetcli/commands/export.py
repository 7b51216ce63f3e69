"""`resnetcli export [RUN|CHECKPOINT]`: ONNX, TorchScript, torch.export and safetensors files (resnetcli/export/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from resnetcli.commands.common import option


def export_command(
    run: Annotated[
        Path | None,
        typer.Argument(help="A run folder (runs/<name>) or a checkpoint file. Default: the most recent run.",
                       show_default=False),
    ] = None,
    fmt: Annotated[
        str,
        option("format", "onnx, torchscript, pt2 (torch.export), safetensors, a comma-separated list, or all."),
    ] = "onnx",
    output: Annotated[
        Path | None, option("output", "Folder for the files and their model cards. Default: <run>/export.")
    ] = None,
    which: Annotated[
        Literal["last", "best"], typer.Option(help="With a run folder: its last or its best checkpoint.")
    ] = "last",
    tolerance: Annotated[
        float, typer.Option(help="Largest logit difference from PyTorch accepted by the check.")
    ] = 1e-4,
    runs_dir: Annotated[Path, typer.Option(help="Where runs live, for finding the latest one.")] = Path("runs"),
) -> None:
    """Export a checkpoint for deployment; each file is run back and compared with PyTorch before it is kept."""
    from resnetcli.export import export_checkpoint

    export_checkpoint(run, formats=fmt, output=output, which=which, runs_dir=runs_dir, tolerance=tolerance)
