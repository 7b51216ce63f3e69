"""--early-stop PATIENCE: stop when the monitored validation metric has not improved for PATIENCE epochs.

A callback: it watches each epoch's row and asks the loop to stop (state.stop_reason); best.pt is kept by
the checkpoint policy as always. Its counters are checkpointed (key `early_stop`), so a resumed run stops
at the same epoch an uninterrupted one would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from resnetcli.engine.callbacks import Callback

if TYPE_CHECKING:
    from resnetcli.engine.state import TrainState

Metric = Literal["val_acc", "val_loss"]
_LABELS = {"val_acc": "val acc", "val_loss": "val loss"}


class EarlyStopping(Callback):
    """Counts epochs without an improvement larger than `min_delta` (up for accuracy, down for loss)."""

    def __init__(self, patience: int, metric: Metric = "val_acc", min_delta: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.patience = patience
        self.metric = metric
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.metric == "val_loss":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_start(self, state: TrainState) -> None:
        if self.bad_epochs >= self.patience and state.epoch < state.config.epochs:
            state.stop_reason = self.reason(state.epoch)  # resumed after it had stopped: stay stopped

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        value = row.get(self.metric)
        if value is not None and value == value and self.improved(float(value)):  # NaN never improves
            self.best, self.best_epoch, self.bad_epochs = float(value), int(row["epoch"]), 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= self.patience and row["epoch"] < state.config.epochs:
            state.stop_reason = self.reason(int(row["epoch"]))
            state.logger.info(state.stop_reason)

    def reason(self, epoch: int) -> str:
        """'stopped early at epoch 7: val acc has not improved by 0.0 for 3 epochs (best 91.20% at epoch 4)'."""
        best = "-" if self.best is None else (f"{self.best:.2f}%" if self.metric == "val_acc" else f"{self.best:.4f}")
        return (f"stopped early at epoch {epoch}: {_LABELS[self.metric]} has not improved by {self.min_delta:g} "
                f"for {self.bad_epochs} epochs (best {best} at epoch {self.best_epoch})")

    def save(self) -> dict[str, Any]:
        return {"early_stop": {"metric": self.metric, "best": self.best, "best_epoch": self.best_epoch,
                               "bad_epochs": self.bad_epochs}}

    def load(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("early_stop")
        if saved and saved["metric"] == self.metric:  # another metric (or none saved) starts counting afresh
            self.best, self.best_epoch, self.bad_epochs = saved["best"], saved["best_epoch"], saved["bad_epochs"]
