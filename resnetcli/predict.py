"""Classifying image files with a trained checkpoint: `resnetcli predict IMAGES...`.

Each image is decoded like the training data was (resnetcli.data.images: EXIF orientation, alpha on
white, the checkpoint's channel count), its smaller side resized with Pillow's antialiased bicubic filter
as `resnetcli preprocess` does, then put through the evaluation pipeline the checkpoint validated with
(center crop to the stored image size, the stored normalization).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetcli.errors import DataError, UsageError

FORMATS = ("table", "csv", "json")


@dataclass
class Prediction:
    """The top-k classes of one image, most likely first."""

    image: str
    classes: list[str]
    probabilities: list[float]


def collect_images(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[str]]:
    """Files named directly, and image files found by recursing into folders; plus what was not found."""
    from resnetcli.data.images import is_image_name

    files: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p.name))
            if not found:
                problems.append(f"{path}: folder holds no image files")
        elif path.is_file():
            found = [path]  # named explicitly: try it whatever its suffix
        else:
            problems.append(f"{path}: no such file or folder")
            found = []
        for p in found:
            if p not in seen:
                seen.add(p)
                files.append(p)
    return files, problems


def pre_resize_side(pipeline: Any, image_size: int) -> int:
    """The side the pipeline's first resize brings the smaller side to (image_size when it has none)."""
    for transform in getattr(pipeline, "transforms", []) or []:
        name = type(transform).__name__
        if name == "SmallestMaxSize":
            size = getattr(transform, "max_size", None)
            if isinstance(size, int):
                return size
            if isinstance(size, Sequence) and size:
                return int(size[0])
        if name in ("CenterCrop", "Normalize", "ToTensorV2"):
            break
    return image_size


def load_image(path: Path, *, channels: int, side: int) -> np.ndarray:
    """Decode, orient and resize (smaller side to `side`, Pillow bicubic) one file; raises BadImage."""
    from resnetcli.data.images import decode_min_size, open_image, resize

    img = open_image(path, channels=channels, min_size=decode_min_size(side))
    arr = np.asarray(resize(img, side))
    return arr[:, :, None] if arr.ndim == 2 else arr


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
) -> tuple[Path, list[Prediction]]:
    """Top-k classes for every readable image; unreadable ones are warned about and skipped."""
    from resnetcli.console import warn
    from resnetcli.data.images import BadImage
    from resnetcli.engine.device import pick_device
    from resnetcli.evaluate import eval_pipeline, find_checkpoint, forward_log_probs, restore

    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, not {top_k}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    if not images:
        raise UsageError("give at least one image file or folder")
    # a run folder or a .pt file, both through --checkpoint (IMAGES... takes every positional argument)
    path = find_checkpoint(checkpoint, None, which, runs_dir)
    dev = pick_device(device)
    restored = restore(path, dev)
    pipeline = eval_pipeline(restored)
    side = pre_resize_side(pipeline, restored.image_size)
    k = min(top_k, len(restored.classes))

    files, problems = collect_images(images)
    for problem in problems:
        warn(problem)
    model = restored.model.to(memory_format=torch.channels_last).eval()
    results: list[Prediction] = []
    batch: list[torch.Tensor] = []
    names: list[str] = []

    def flush() -> None:
        if not batch:
            return
        log_probs = forward_log_probs(model, torch.stack(batch).to(dev), tta_flip=tta_flip).cpu()
        probs, idx = log_probs.exp().topk(k, dim=1)
        for name, p, i in zip(names, probs.tolist(), idx.tolist()):
            results.append(Prediction(name, [restored.classes[j] for j in i], [float(v) for v in p]))
        batch.clear()
        names.clear()

    skipped = 0
    for file in files:
        try:
            arr = load_image(file, channels=restored.channels, side=side)
        except BadImage as exc:
            warn(f"{file}: {exc}; skipped")
            skipped += 1
            continue
        batch.append(pipeline(image=arr)["image"])
        names.append(str(file))
        if len(batch) == batch_size:
            flush()
    flush()
    if not results:
        what = f"none of the {len(files)} file(s) could be read" if files else "no image files were found"
        raise DataError(f"nothing to classify: {what} in {', '.join(str(i) for i in images)}")
    return path, results


# -------------------------------------------------------------------------------------------- rendering


def to_csv(results: Sequence[Prediction]) -> str:
    """image, then rank-ordered class/probability pairs (the layout of test's predictions.csv)."""
    k = max(len(r.classes) for r in results)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["image"]
    for rank in range(1, k + 1):
        header += [f"top{rank}_class", f"top{rank}_prob"]
    writer.writerow(header)
    for r in results:
        row: list[Any] = [r.image]
        for c, p in zip(r.classes, r.probabilities):
            row += [c, f"{p:.6f}"]
        writer.writerow(row)
    return buf.getvalue()


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
    from rich.markup import escape
    from rich.table import Table

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


def write_or_print(rendered: Any, output: Path | None, console: Any) -> None:
    from resnetcli.io import write_text

    if output is None:
        if isinstance(rendered, str):
            console.out(rendered, end="", highlight=False)
        else:
            console.print(rendered)
        return
    if not isinstance(rendered, str):
        from rich.console import Console

        buf = io.StringIO()
        Console(file=buf, width=160, no_color=True, highlight=False).print(rendered)
        rendered = buf.getvalue()
    write_text(output, rendered)
