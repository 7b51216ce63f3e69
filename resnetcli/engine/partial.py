"""A checkpoint inside an epoch (--checkpoint-every-steps N, --checkpoint-every-minutes M), and resuming one
exactly: a preempted machine loses at most N steps of a long epoch.

What an epoch in progress holds beyond an epoch-end checkpoint, saved in last.pt's `partial_epoch` (declared in
engine/checkpoint.py): how many batches and optimizer steps it has done, its running loss/accuracy sums (so
its metrics row equals the uninterrupted one), the learning rate it started at (the row's `lr`), and the state
of the epoch's own mixup generators. The global RNG state is the checkpoint's `rng`, taken at the same moment
(the resumed epoch continues it instead of re-seeding); the sampler skips the batches already consumed, and
augmentation is seeded per batch from its first sample (engine/rng.py), so the rest of the epoch draws alike.

Single-process runs only: under torchrun every rank's generators would have to be gathered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from resnetcli.errors import UsageError


@dataclass
class EpochProgress:
    """How far epoch `epoch` got (batches and optimizer steps), its sums, and its generators' state."""

    epoch: int
    step: int  # batches done in this epoch
    updates: int  # optimizer steps taken in this epoch
    loss_sum: float
    correct_sum: float
    seen: int
    lr_start: float
    mix_numpy: dict[str, Any]  # np.random.Generator.bit_generator.state
    mix_torch: torch.Tensor  # torch.Generator.get_state()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> EpochProgress:
        return cls(**value)


class MidEpochPolicy:
    """When to write a checkpoint inside an epoch: every `steps` batches and/or every `minutes` minutes."""

    def __init__(self, steps: int | None, minutes: float | None) -> None:
        self.steps, self.minutes = steps, minutes
        self._last_step = 0
        self._last_time = time.monotonic()

    @property
    def enabled(self) -> bool:
        return bool(self.steps or self.minutes)

    def start_epoch(self, step: int) -> None:
        self._last_step, self._last_time = step, time.monotonic()

    def due(self, step: int) -> bool:
        if self.steps and step - self._last_step >= self.steps:
            return True
        return bool(self.minutes) and time.monotonic() - self._last_time >= 60 * float(self.minutes or 0)

    def saved(self, step: int) -> None:
        self._last_step, self._last_time = step, time.monotonic()


def check_supported(policy: MidEpochPolicy, *, distributed: bool, sampler: Any) -> None:
    """Refuse mid-epoch checkpoints where their resume could not be exact."""
    if not policy.enabled:
        return
    if distributed:
        raise UsageError("--checkpoint-every-steps/--checkpoint-every-minutes work in single-process training; "
                         "under torchrun checkpoints are written at the end of each epoch")
    if not hasattr(sampler, "skip"):
        raise UsageError("--checkpoint-every-steps/--checkpoint-every-minutes need the default sampler "
                         f"({type(sampler).__name__} cannot skip the batches an interrupted epoch consumed)")


Snapshot = Callable[[], EpochProgress]


def with_lr(snapshot: Snapshot, lr_start: float) -> Snapshot:
    """The loop's snapshot with the epoch's first learning rate, which only the caller knows."""
    return lambda: replace(snapshot(), lr_start=lr_start)
