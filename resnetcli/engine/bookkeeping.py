"""What a run leaves behind: config.yaml, metrics.csv + metrics.jsonl, train.log, TensorBoard events and
plot.png (seed 000's TrainingMonitor), all in the run folder and all written by rank 0 only.

Metrics files are rewritten whole (temporary file + rename) each epoch from the in-memory history, so a
resumed run that restarts from an earlier epoch drops the rows it is about to redo.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from resnetcli.io import write_csv, write_text
from resnetcli.plots import new_figure, save_png
from resnetcli.runs import RunLayout

#: lr is the rate the epoch started with, lr_end the one it ended with; images_per_s counts training only.
#: val_top5 keeps its name for older readers but holds top-k with k = val_k (fewer than 5 classes: k < 5)
COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "lr_end", "time",
           "images_per_s", "val_k")
#: metrics.jsonl's extra key on the last row of a run that a callback ended early (MetricsLog.mark_stopped)
STOPPED = "stopped"
LOGGER_NAME = "resnetcli.train"


def setup_logging(log_file: Path | None, level: str) -> logging.Logger:
    """Console (stderr) and train.log (`log_file`) handlers on the `resnetcli.train` logger."""
    logger = logging.getLogger(LOGGER_NAME)
    close_logging()
    logger.setLevel(level.upper())
    logger.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_Printable("%(message)s"))
    logger.addHandler(console)
    if log_file is not None:
        file = logging.FileHandler(log_file, encoding="utf-8")
        file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(file)
    return logger


class _Printable(logging.Formatter):
    """Terminal lines with control characters shown as escapes: a path or run name may hold ESC."""

    def format(self, record: logging.LogRecord) -> str:
        from resnetcli.console import printable

        return printable(super().format(record))


def close_logging() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """metrics.csv and metrics.jsonl for the epochs run so far."""

    def __init__(self, layout: RunLayout, *, keep_until: int) -> None:
        self.layout = layout
        self.rows: list[dict[str, Any]] = []
        jsonl = layout.metrics_jsonl
        if jsonl.is_file() and keep_until > 0:
            for line in jsonl.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                epoch = row.get("epoch") if isinstance(row, dict) else None
                if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch <= keep_until:
                    self.rows.append(row)  # a row without a whole epoch number is no epoch's: dropped

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append({k: _clean(row.get(k)) for k in COLUMNS})
        self._write()

    def clear_stopped(self) -> None:
        """A resumed run trains on: an earlier early stop no longer describes it (rewritten at once, so a Ctrl-C
        before its first epoch ends shows it as interrupted, not stopped)."""
        if any(STOPPED in row for row in self.rows):
            for row in self.rows:
                row.pop(STOPPED, None)
            self._write()

    def mark_stopped(self, reason: str) -> None:
        """Why the run ended before --epochs (early stopping), on the last row of metrics.jsonl only: what
        `resnetcli runs` reads, without torch, to tell a run that stopped from one that was interrupted."""
        if self.rows:
            self.rows[-1][STOPPED] = reason
            self._write()

    def _write(self) -> None:
        write_csv(self.layout.metrics_csv, COLUMNS,
                  ([("" if row.get(k) is None else row.get(k)) for k in COLUMNS] for row in self.rows))
        write_text(self.layout.metrics_jsonl, "".join(json.dumps(r) + "\n" for r in self.rows))


def topk_label(rows: list[dict[str, Any]]) -> str:
    """"top-k" with the k the rows' val_top5 column was scored at (older rows lack val_k: they were top-5)."""
    ks = [r.get("val_k") for r in rows if r.get("val_k") is not None]
    return f"top-{ks[-1] if ks else 5}"


def write_plot(path: Path, rows: list[dict[str, Any]]) -> bool:
    """Loss, accuracy and learning-rate curves as a PNG; False when matplotlib is missing."""
    fig = new_figure(16, 4)
    if fig is None:
        return False
    epochs = [r["epoch"] for r in rows]

    def series(key: str) -> list[float]:
        return [math.nan if r.get(key) is None else float(r[key]) for r in rows]

    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    ax_loss.plot(epochs, series("train_loss"), marker="o", label="train loss")
    ax_loss.plot(epochs, series("val_loss"), marker="o", label="val loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_acc.plot(epochs, series("train_acc"), marker="o", label="train acc")
    ax_acc.plot(epochs, series("val_acc"), marker="o", label="val acc")
    ax_acc.plot(epochs, series("val_top5"), marker=".", linestyle="--", label=f"val {topk_label(rows)}")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    # each epoch from its start (epoch - 1) to its end: the schedule's shape, warm-up and decay included
    ax_lr.plot([x for e in epochs for x in (e - 1, e)],
               [v for pair in zip(series("lr"), series("lr_end")) for v in pair], marker=".", label="lr")
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate")
    ax_lr.legend()
    save_png(fig, path)
    return True


class Board:
    """TensorBoard scalars when tensorboard is installed; silent otherwise.

    No model graph: tracing it cost seconds before the first training step.
    """

    def __init__(self, folder: Path, *, purge_step: int | None, logger: logging.Logger) -> None:
        self.writer: Any = None
        self.logger = logger
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.debug("tensorboard is not installed; no event files written")
            return
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)

    def scalars(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        epoch = int(row["epoch"])
        for key in ("train_loss", "val_loss"):
            if row.get(key) is not None:
                self.writer.add_scalar(f"loss/{key.split('_')[0]}", row[key], epoch)
        for key in ("train_acc", "val_acc", "val_top5"):
            if row.get(key) is not None:
                self.writer.add_scalar(f"accuracy/{key}", row[key], epoch)
        self.writer.add_scalar("lr", row["lr"], epoch)
        for key in ("lr_end", "images_per_s"):
            if row.get(key) is not None:
                self.writer.add_scalar(key, row[key], epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
