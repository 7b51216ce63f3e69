"""`resnetcli predict IMAGES...`: the top-k classes of image files, and the formats they are written in.

Images are read as resnetcli/inference/files.py describes and run through the same forward pass as
`resnetcli test` (resnetcli/inference/run.py), so both give the same probabilities for the same image.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnetcli.errors import DataError, UsageError
from resnetcli.inference.files import ImageFiles, collate_readable, collect_images, pre_resize_side
from resnetcli.io import csv_text

FORMATS = ("table", "csv", "json")


@dataclass
class Prediction:
    """The top-k classes of one image, most likely first."""

    image: str
    classes: list[str]
    probabilities: list[float]


def predict(
    images: Sequence[str | os.PathLike[str]],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    which: str = "last",
    top_k: int = 5,
    batch_size: int = 64,
    device: str = "auto",
    tta_flip: bool = False,
    runs_dir: str | os.PathLike[str] = "runs",
    model: str | os.PathLike[str] | None = None,
) -> tuple[Path, list[Prediction]]:
    """Top-k classes for every readable image; unreadable ones are warned about and skipped.

    With `model`, an exported .onnx file runs with onnxruntime and its card's preprocessing
    (resnetcli/export/runtime.py) instead of a checkpoint.
    """
    from resnetcli.console import warn
    from resnetcli.engine.device import pick_device
    from resnetcli.inference.restore import eval_pipeline, restore
    from resnetcli.inference.run import run_model
    from resnetcli.runs import find_checkpoint

    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, not {top_k}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    if not images:
        raise UsageError("give at least one image file or folder")
    if model is not None:
        from resnetcli.export.runtime import open_onnx

        if checkpoint is not None:
            raise UsageError("give either --model (an exported .onnx file) or --checkpoint, not both")
        deployed = open_onnx(model)
        path, network, classes, pipeline = deployed.path, deployed.model, deployed.classes, deployed.transform
        channels, side, dev = deployed.channels, deployed.side, pick_device("cpu")  # onnxruntime's CPU session
    else:
        # a run folder or a .pt file, both through --checkpoint (IMAGES... takes every positional argument)
        path = find_checkpoint(checkpoint, which, runs_dir, option="--checkpoint")
        dev = pick_device(device)
        restored = restore(path, dev)
        pipeline = eval_pipeline(restored)
        network, classes, channels = restored.model, restored.classes, restored.channels
        side = pre_resize_side(pipeline, restored.image_size)

    files, problems = collect_images(images)
    for problem in problems:
        warn(problem)
    dataset = ImageFiles(files, pipeline, channels, side, on_bad=lambda file, exc: warn(f"{file}: {exc}; skipped"))
    outputs = run_model(network, dataset, batch_size=batch_size, device=dev, tta_flip=tta_flip,
                        progress=False, labelled=False, collate_fn=collate_readable)
    if not len(outputs.targets):
        what = f"none of the {len(files)} file(s) could be read" if files else "no image files were found"
        raise DataError(f"nothing to classify: {what} in {', '.join(str(i) for i in images)}")
    k = min(top_k, len(classes))
    order = np.argsort(-outputs.probs, axis=1, kind="stable")[:, :k]
    results = [
        Prediction(str(files[i]), [classes[j] for j in top], [float(outputs.probs[row, j]) for j in top])
        for row, (i, top) in enumerate(zip(outputs.targets, order))
    ]
    return path, results


# -------------------------------------------------------------------------------------------- rendering


def to_csv(results: Sequence[Prediction]) -> str:
    """image, then rank-ordered class/probability pairs (the layout of test's predictions.csv)."""
    k = max(len(r.classes) for r in results)
    header = ["image"]
    for rank in range(1, k + 1):
        header += [f"top{rank}_class", f"top{rank}_prob"]
    rows = []
    for r in results:
        row: list[Any] = [r.image]
        for c, p in zip(r.classes, r.probabilities):
            row += [c, f"{p:.6f}"]
        rows.append(row)
    return csv_text(header, rows)


def to_json(results: Sequence[Prediction], checkpoint: Path) -> str:
    data = {
        "checkpoint": str(checkpoint),
        "predictions": [
            {"image": r.image, "top": [{"class": c, "probability": p} for c, p in zip(r.classes, r.probabilities)]}
            for r in results
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def to_table(results: Sequence[Prediction], checkpoint: Path) -> Any:
    from rich.table import Table

    from resnetcli.console import escape

    k = max(len(r.classes) for r in results)
    table = Table(title=escape(f"predictions of {checkpoint}"))
    table.add_column("image", overflow="fold")
    for rank in range(1, k + 1):
        table.add_column(f"#{rank}")
    for r in results:
        table.add_row(escape(r.image), *(escape(f"{c} {100 * p:.1f}%") for c, p in zip(r.classes, r.probabilities)))
    return table


def render(results: Sequence[Prediction], checkpoint: Path, fmt: str) -> Any:
    """A rich Table for 'table', text for 'csv' and 'json'."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not '{fmt}'")
    if fmt == "csv":
        return to_csv(results)
    if fmt == "json":
        return to_json(results, checkpoint)
    return to_table(results, checkpoint)


def choose_format(fmt: str | None, output: Path | None) -> str:
    """--format, else from --output's suffix (.json, .csv; anything else csv), else a table."""
    if fmt is not None:
        return fmt
    if output is None:
        return "table"
    return "json" if output.suffix.lower() == ".json" else "csv" if output.suffix.lower() == ".csv" else (
        "table" if output.suffix.lower() == ".txt" else "csv")


def check_output(output: Path | None) -> None:
    """--output must be a file name: renaming over a device or FIFO (/dev/stdout) would replace it."""
    from resnetcli.inference.reports import writing

    if output is None:
        return
    with writing(output):  # even asking about a name can fail (too long)
        odd = output.exists() and not output.is_file()
        kind = "a folder" if output.is_dir() else "not a regular file" if odd else ""
    if kind:
        raise UsageError(f"--output {output} is {kind}; give a file name (or leave --output out to print)")


def write_or_print(rendered: Any, output: Path | None, console: Any) -> None:
    """Print to the console, or write `output` atomically (never over something that is not a file)."""
    from resnetcli.inference.reports import writing
    from resnetcli.io import write_text

    check_output(output)
    if output is None:
        if isinstance(rendered, str):
            console.out(rendered, end="", highlight=False)
        else:
            console.print(rendered)
        return
    if not isinstance(rendered, str):
        from resnetcli.console import new_console

        buf = io.StringIO()
        new_console(file=buf, width=160, no_color=True, soft_wrap=False).print(rendered)
        rendered = buf.getvalue()
    with writing(output):
        write_text(output, rendered)
