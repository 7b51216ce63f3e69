"""The built-in file loggers, declared in pyproject.toml like a plugin's: csv and tensorboard."""

from __future__ import annotations

from resnetcli.engine.callbacks import MetricsFiles, TensorBoard
from resnetcli.runs import RunLayout


def csv(layout: RunLayout) -> MetricsFiles:
    """metrics.csv and metrics.jsonl in the run folder (always on: resume and `resnetcli runs` read them)."""
    return MetricsFiles(layout)


def tensorboard(layout: RunLayout) -> TensorBoard:
    """TensorBoard scalars per epoch (loss, accuracy, lr at the start and end, images/s) under tensorboard/."""
    return TensorBoard(layout.tensorboard)
