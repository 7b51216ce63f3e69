"""`resnetcli test`: evaluate a checkpoint on a split, print the report, write metrics, predictions, confusion.

The pieces live in resnetcli/inference/ (restore, data, run, metrics, reports); this is the order they run in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnetcli.engine.device import pick_device
from resnetcli.errors import DataError, UsageError
from resnetcli.inference.data import EvalDataset, choose_split, is_training_data, label_map, open_data
from resnetcli.inference.metrics import compute_metrics
from resnetcli.inference.reports import accuracy_line, print_report, write_outputs
from resnetcli.inference.restore import eval_pipeline, restore
from resnetcli.inference.run import default_workers, run_model
from resnetcli.runs import RunLayout, find_checkpoint, run_dir_of


@dataclass
class EvalResult:
    checkpoint: Path
    output: Path
    metrics: dict[str, Any]
    files: list[Path]


def checkpoint_to_test(run: str | os.PathLike[str] | None, checkpoint: str | os.PathLike[str] | None, which: str,
                       runs_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint `test` evaluates: --checkpoint, else RUN's <which>.pt, else the latest run's."""
    if checkpoint is not None:
        return find_checkpoint(checkpoint, which, runs_dir, option="--checkpoint")
    return find_checkpoint(run, which, runs_dir)


def evaluate_checkpoint(
    run: str | os.PathLike[str] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    which: str = "last",
    data: str | None = None,
    split: str | None = None,
    output: str | os.PathLike[str] | None = None,
    tta_flip: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    workers: int | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    progress: bool = True,
    console: Any = None,
) -> EvalResult:
    """Evaluate a checkpoint on a split, print the report and write metrics, predictions and confusion matrix."""
    from resnetcli.console import escape, out

    console = console or out
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    if workers is not None and workers < 0:
        raise UsageError(f"--workers must be 0 or more, not {workers}")
    if checkpoint is not None and run is not None:
        raise UsageError("give either a run folder or --checkpoint, not both")
    path = checkpoint_to_test(run, checkpoint, which, runs_dir)
    dev = pick_device(device)
    restored = restore(path, dev)
    source = open_data(restored, data)
    split_name = choose_split(source, split)
    where = data if data is not None else str(restored.data_spec)
    if is_training_data(restored, data) and split_name != "train" and split_name in restored.trained_on:
        # reopening the data holds the split out again, but training had given it back to train
        raise UsageError(
            f"{path} was trained on the {split_name} split of {where} (it was given back to train: "
            f"--val-split {restored.state['data'].get('val_split') or 'none'}); scoring it would measure "
            "memory, not accuracy: choose another --split, or pass --split train to score training images"
        )
    mapping = label_map(restored.classes, source.classes, path, where)
    split_obj = source.split(split_name)
    if len(split_obj) == 0:
        raise DataError(f"the {split_name} split of {where} is empty")
    dataset = EvalDataset(split_obj, eval_pipeline(restored), restored.channels, mapping)
    console.print(escape(
        f"testing {path} ({restored.arch}, epoch {restored.epoch}, {len(restored.classes)} classes, "
        f"{restored.image_size}px) on {where}, {split_name} split, {len(split_obj)} images"
        + (", flip TTA" if tta_flip else "")
    ))
    outputs = run_model(restored.model, dataset, batch_size=batch_size, device=dev,
                        workers=default_workers() if workers is None else workers, tta_flip=tta_flip,
                        progress=progress, desc=f"test {split_name}")
    metrics = {
        "checkpoint": str(path),
        "arch": restored.arch,
        "epoch": restored.epoch,
        "data": where,
        "data_options": restored.data_options if data is None else {},  # what opened it (the report reads them)
        "split": split_name,
        "tta_flip": tta_flip,
        "image_size": restored.image_size,
        "unit": "percent",
        **compute_metrics(outputs.probs, outputs.targets, restored.classes, float(outputs.loss or 0.0)),
    }
    out_dir = Path(output) if output is not None else RunLayout(run_dir_of(path)).eval_dir(split_name)
    idents = [split_obj.ident(i) for i in range(len(split_obj))]
    files = write_outputs(out_dir, metrics, idents, outputs.probs, outputs.targets, restored.classes,
                          f"{restored.arch} on {where} [{split_name}]")
    print_report(metrics, console)
    for f in files:
        console.print(escape(f"wrote {f}"))
    console.print(escape(accuracy_line(metrics)))
    return EvalResult(checkpoint=path, output=out_dir, metrics=metrics, files=files)
