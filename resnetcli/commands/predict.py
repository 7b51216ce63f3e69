"""`resnetcli predict IMAGES...`: top-k classes per image from a trained checkpoint (resnetcli/predict.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from resnetcli.commands.common import Device, option


def predict_command(
    images: Annotated[
        list[Path], typer.Argument(help="Image files and folders (searched recursively).", show_default=False)
    ],
    checkpoint: Annotated[
        Path | None,
        option("checkpoint", "Checkpoint file or run folder. Default: the most recent run."),
    ] = None,
    which: Annotated[
        Literal["last", "best"], typer.Option(help="With a run folder: its last or its best checkpoint.")
    ] = "last",
    model: Annotated[
        Path | None,
        typer.Option("--model", help="An exported .onnx file (resnetcli export) to run with onnxruntime instead "
                     "of a checkpoint; preprocessing comes from its model card."),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many classes to show per image.")] = 5,
    fmt: Annotated[
        Literal["table", "csv", "json"] | None,
        option("format", "table, csv or json. Default: table, or from --output's suffix.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None, option("output", "Write the predictions to this file instead of stdout.")
    ] = None,
    tta_flip: Annotated[
        bool, typer.Option("--tta-flip", help="Average over each image and its mirror image.")
    ] = False,
    batch_size: Annotated[int, option("batch_size", "Images per forward pass.")] = 64,
    device: Device = "auto",
    runs_dir: Annotated[Path, typer.Option(help="Where runs live, for finding the latest one.")] = Path("runs"),
) -> None:
    """Classify images with a trained checkpoint (same resize and normalization as training)."""
    from resnetcli.console import err, escape, out
    from resnetcli.predict import check_output, choose_format, predict, render, write_or_print

    check_output(output)  # before the work, not after it
    path, results = predict(images, checkpoint=checkpoint, which=which, top_k=top_k, batch_size=batch_size,
                            device=device, tta_flip=tta_flip, runs_dir=runs_dir, model=model)
    write_or_print(render(results, path, choose_format(fmt, output)), output, out)
    if output is not None:
        err.print(escape(f"wrote {len(results)} prediction(s) to {output}"))
