"""The checkpoint policy (timm's CheckpointSaver): what is saved after each epoch, and in which order.

Invariant: **last.pt is committed last.** It is the commit point `--resume` reads, so after a kill -9 at
any moment the run resumes from the last epoch whose every output (metrics row, TensorBoard scalars,
best.pt, epoch_NNN.pt, and the plot when it was redrawn: engine/callbacks.py) was written before it; a redone
epoch rewrites those rather than losing them. This callback must therefore come after every other writer in
the callback list.

With --checkpoint-every-steps/--checkpoint-every-minutes, last.pt is also written inside an epoch, with the
epoch's progress (engine/partial.py); best.pt, epoch_NNN.pt and the metrics files only ever change at an
epoch's end.

A new run also gets an epoch-0 last.pt, so that even a run stopped in its first epoch can be resumed by
path. It is written in a background thread from a copy of the state, so the first training step does not
wait for the disk; it is joined before any later save and when training ends.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from resnetcli.engine.callbacks import Callback
from resnetcli.engine.checkpoint import save_checkpoint
from resnetcli.engine.partial import MidEpochPolicy, Snapshot
from resnetcli.engine.state import TrainState
from resnetcli.runs import RunLayout


def _detached_copy(value: Any) -> Any:
    """A copy of a checkpoint's tensors on the CPU, so training may change the originals meanwhile."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _detached_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_detached_copy(v) for v in value)
    return value


class CheckpointSaver(Callback):
    """Writes checkpoints/{best,epoch_NNN,last}.pt (rank 0 only); `saved` maps each name to its path."""

    def __init__(self, layout: RunLayout, *, every: int, mid_epoch: MidEpochPolicy | None = None) -> None:
        self.layout = layout
        self.folder = layout.checkpoints
        self.every = every
        self.mid_epoch = mid_epoch or MidEpochPolicy(None, None)
        self.saved: dict[str, Path] = {}
        self._background: threading.Thread | None = None
        self._error: BaseException | None = None

    def on_train_start(self, state: TrainState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if state.resumed_from is not None:
            self.saved["last"] = self.layout.last
            return
        snapshot = _detached_copy(state.checkpoint())
        self._background = threading.Thread(target=self._save_quietly, args=(snapshot,), daemon=True,
                                            name="epoch-0 checkpoint")
        self._background.start()

    def _save_quietly(self, snapshot: dict[str, Any]) -> None:
        try:
            self.saved["last"] = save_checkpoint(snapshot, self.layout.last)
        except BaseException as exc:  # re-raised in the training thread by _join
            self._error = exc

    def _join(self) -> None:
        if self._background is not None:
            self._background.join()
            self._background = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def on_epoch_start(self, state: TrainState, epoch: int) -> None:
        self.mid_epoch.start_epoch(state.partial.step if state.partial is not None else 0)

    def on_step(self, state: TrainState, step: int, snapshot: Snapshot) -> None:
        if not self.mid_epoch.due(step) or step >= state.steps_per_epoch:  # the epoch's end saves anyway
            return
        self._join()
        ckpt = state.checkpoint() | {"partial_epoch": snapshot().to_dict()}
        self.saved["last"] = save_checkpoint(ckpt, self.layout.last)
        self.mid_epoch.saved(step)

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        self._join()
        ckpt = state.checkpoint()
        if state.best_epoch == state.epoch:
            self.saved["best"] = save_checkpoint(ckpt, self.layout.best)
        if self.every and state.epoch % self.every == 0:
            name = f"epoch_{state.epoch:03d}"
            self.saved[name] = save_checkpoint(ckpt, self.layout.epoch(state.epoch))
        self.saved["last"] = save_checkpoint(ckpt, self.layout.last)  # the commit point: always the last write

    def on_train_end(self, state: TrainState) -> None:
        self._join()
        if "best" not in self.saved and self.layout.best.is_file():
            self.saved["best"] = self.layout.best
