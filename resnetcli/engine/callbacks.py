"""The pieces the epoch loop calls (MMEngine's hooks, Lightning's callbacks): console lines, progress bar,
metrics files, plot, TensorBoard; the checkpoint policy is engine/saver.py.

A callback overrides the events it cares about. The loop calls, in list order:
    on_train_start(state)            after everything is built and restored, before the first step
    on_epoch_start(state, epoch)
    on_progress(state, steps, loss, acc)   every log_every training steps and after an epoch's last one
    on_step(state, step, snapshot)   after every batch that closes an optimizer step (mid-epoch checkpoints)
    on_epoch_end(state, row)         the epoch's metrics row; state.epoch == row["epoch"]
    on_train_end(state)              always, also when training stopped on an error or Ctrl-C
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any

from resnetcli.engine.bookkeeping import Board, MetricsLog, write_plot
from resnetcli.runs import RunLayout

if TYPE_CHECKING:
    from resnetcli.engine.partial import Snapshot
    from resnetcli.engine.state import TrainState


class Callback:
    """Does nothing on every event; subclasses override what they need."""

    def on_train_start(self, state: TrainState) -> None:
        pass

    def on_epoch_start(self, state: TrainState, epoch: int) -> None:
        pass

    def on_progress(self, state: TrainState, steps: int, loss: float, acc: float) -> None:
        pass

    def on_step(self, state: TrainState, step: int, snapshot: Snapshot) -> None:
        """After batch `step` of the epoch whenever no gradients wait to be applied; snapshot() is the epoch's
        progress so far (engine/partial.py), to be called only when wanted (it waits for the device)."""

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        pass

    def on_train_end(self, state: TrainState) -> None:
        pass


class Callbacks(Callback):
    """Several callbacks called in order as one."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def on_train_start(self, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_train_start(state)

    def on_epoch_start(self, state: TrainState, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_start(state, epoch)

    def on_progress(self, state: TrainState, steps: int, loss: float, acc: float) -> None:
        for cb in self.callbacks:
            cb.on_progress(state, steps, loss, acc)

    def on_step(self, state: TrainState, step: int, snapshot: Snapshot) -> None:
        for cb in self.callbacks:
            cb.on_step(state, step, snapshot)

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(state, row)

    def on_train_end(self, state: TrainState) -> None:
        errors: list[BaseException] = []
        for cb in self.callbacks:  # every one gets to close its files, even if another fails
            try:
                cb.on_train_end(state)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def format_lr(start: float, end: float) -> str:
    """'lr 0.1', or 'lr 0.1→0' when the rate moved during the epoch."""
    return f"lr {start:.4g}" if f"{start:.4g}" == f"{end:.4g}" else f"lr {start:.4g}→{end:.4g}"


def epoch_line(state: TrainState, row: dict[str, Any]) -> str:
    """The one console line per epoch."""
    line = f"epoch {row['epoch']}/{state.config.epochs}: loss {row['train_loss']:.4f}, " \
           f"train acc {row['train_acc']:.2f}%"
    if row.get("val_acc") is not None:
        line += (f", val loss {row['val_loss']:.4f}, val acc {row['val_acc']:.2f}%, "
                 f"top-{state.topk} {row['val_top5']:.2f}%")
    return line + f", {format_lr(row['lr'], row['lr_end'])}, {row['images_per_s']:.0f} img/s, {row['time']:.1f}s"


class EpochLine(Callback):
    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        state.logger.info(epoch_line(state, row))


class ProgressBar(Callback):
    """A tqdm bar per epoch (rank 0), its postfix in seed 002's order: epoch, loss, val acc, train acc, lr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.val_acc: float | None = None
        self.loss = self.acc = float("nan")

    def on_train_start(self, state: TrainState) -> None:
        metrics = state.last_row or {}
        self.val_acc = metrics.get("val_acc")

    def on_epoch_start(self, state: TrainState, epoch: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.steps_per_epoch, desc=f"epoch {epoch}/{state.config.epochs}", unit="batch",
                        disable=not self.enabled, leave=True, dynamic_ncols=True)

    def _show(self, state: TrainState) -> None:
        self.bar.set_postfix(ordered_dict={
            "epoch": state.epoch + 1, "loss": f"{self.loss:.4f}",
            "val acc": "-" if self.val_acc is None else f"{self.val_acc:.3f}",
            "train acc": f"{self.acc:.3f}", "lr": f"{state.schedule.lr():.4g}"}, refresh=False)

    def on_progress(self, state: TrainState, steps: int, loss: float, acc: float) -> None:
        self.loss, self.acc = loss, acc
        self._show(state)
        self.bar.update(steps - self.bar.n)

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        if row.get("val_acc") is not None:
            self.val_acc = row["val_acc"]
            self.bar.set_postfix(ordered_dict={
                "epoch": row["epoch"], "loss": f"{row['train_loss']:.4f}", "val acc": f"{self.val_acc:.3f}",
                "train acc": f"{row['train_acc']:.3f}", "lr": f"{row['lr_end']:.4g}"}, refresh=False)
        self.bar.close()
        self.bar = None

    def on_train_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class MetricsFiles(Callback):
    """metrics.csv and metrics.jsonl, rewritten whole each epoch; a resumed run keeps its earlier rows."""

    def __init__(self, layout: RunLayout) -> None:
        self.layout = layout
        self.log: MetricsLog | None = None

    def on_train_start(self, state: TrainState) -> None:
        self.log = MetricsLog(self.layout, keep_until=state.start_epoch)
        if not state.stop_reason:  # set here by early stopping (a callback before this one) if it stays stopped
            self.log.clear_stopped()

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        assert self.log is not None
        self.log.add(row)

    def on_train_end(self, state: TrainState) -> None:
        if state.stop_reason and self.log is not None:
            self.log.mark_stopped(state.stop_reason)


#: plot.png is redrawn after the first epoch, then at most this often (seconds), and after the run's last epoch
#: (or the one it stopped in). Drawing it takes a quarter of a second: a share of a short epoch worth keeping (a
#: CIFAR epoch on a GPU takes seconds), for a picture nobody needs more often than this.
PLOT_EVERY_S = 30.0


class Plot(Callback):
    """plot.png: loss and accuracy curves of every epoch so far (from the metrics files' rows)."""

    def __init__(self, path: Path, metrics: MetricsFiles, every: float = PLOT_EVERY_S) -> None:
        self.path = path
        self.metrics = metrics
        self.every = every
        self.drawn_at: float | None = None
        self.drawn = 0  # rows in the picture on disk

    def _draw(self) -> None:
        assert self.metrics.log is not None
        write_plot(self.path, self.metrics.log.rows)
        self.drawn_at, self.drawn = monotonic(), len(self.metrics.log.rows)

    def on_train_start(self, state: TrainState) -> None:
        self.drawn = len(self.metrics.log.rows) if self.metrics.log is not None else 0  # a resumed run's

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        last = row["epoch"] >= state.config.epochs or state.stop_reason is not None  # early stopping ran first
        if last or self.drawn_at is None or monotonic() - self.drawn_at >= self.every:
            self._draw()

    def on_train_end(self, state: TrainState) -> None:
        # Ctrl-C, a stop signal or an error ended the run between drawings: draw the epochs since, unless that
        # fails, which must not replace what ended the run (resuming draws them anyway)
        if self.metrics.log is not None and self.drawn < len(self.metrics.log.rows):
            with contextlib.suppress(Exception):
                self._draw()


class TensorBoard(Callback):
    """Scalars per epoch under tensorboard/; a resumed run purges the steps it redoes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.board: Board | None = None

    def on_train_start(self, state: TrainState) -> None:
        purge = state.start_epoch + 1 if state.resumed_from is not None else None
        self.board = Board(self.folder, purge_step=purge, logger=state.logger)

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        assert self.board is not None
        self.board.scalars(row)

    def on_train_end(self, state: TrainState) -> None:
        if self.board is not None:
            self.board.close()
