"""Optimizers and learning-rate schedules, registered under `resnetcli.optimizers` / `resnetcli.schedulers`.

A scheduler entry returns a `Schedule`: the torch scheduler plus when to step it ("step" = after every
batch, "epoch" = after every epoch) and, for ReduceLROnPlateau-style schedulers, which validation metric it
watches. The engine only ever calls `Schedule.step_batch()` and `Schedule.step_epoch(metrics)`, so a
plugin scheduler needs nothing beyond what torch schedulers already have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

Interval = Literal["step", "epoch"]
Monitor = Literal["val_acc", "val_loss"]


@dataclass
class Schedule:
    """A learning-rate scheduler, when it steps, what it monitors, and an optional linear warm-up.

    Warm-up scales the scheduler's own learning rate by (step + 1) / warmup_steps for the first
    `warmup_steps` batches. The scheduler never sees the scaled value: it is handed back its own ("target")
    rate before each of its steps, so chainable schedulers (StepLR, CosineAnnealingLR, ReduceLROnPlateau)
    keep their schedule and the warm-up simply overlays the first batches, as in timm.
    """

    scheduler: Any
    interval: Interval = "epoch"
    monitor: Monitor | None = None
    warmup_steps: int = 0
    _step: int = field(default=0, init=False, repr=False)
    _target: list[float] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.interval not in ("step", "epoch"):
            raise ValueError(f"Schedule.interval must be 'step' or 'epoch', not {self.interval!r}")
        if self.monitor not in (None, "val_acc", "val_loss"):
            raise ValueError(f"Schedule.monitor must be None, 'val_acc' or 'val_loss', not {self.monitor!r}")

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.scheduler.optimizer

    def _groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def _apply(self) -> None:
        if self._target is None:
            self._target = [float(g["lr"]) for g in self._groups()]
        factor = self.warmup_factor()
        for group, target in zip(self._groups(), self._target, strict=True):
            group["lr"] = target * factor

    def warmup_factor(self) -> float:
        if self.warmup_steps <= 0 or self._step >= self.warmup_steps:
            return 1.0
        return (self._step + 1) / self.warmup_steps

    def start(self) -> None:
        """Set the learning rate for the first batch (applies the warm-up's first factor)."""
        self._apply()

    def _scheduler_step(self, *args: Any) -> None:
        if self._target is None:
            self._target = [float(g["lr"]) for g in self._groups()]
        for group, target in zip(self._groups(), self._target, strict=True):
            group["lr"] = target
        self.scheduler.step(*args)
        self._target = [float(g["lr"]) for g in self._groups()]

    def step_batch(self) -> None:
        """After every optimizer step."""
        self._step += 1
        if self.interval == "step":
            self._scheduler_step()
        self._apply()

    def step_epoch(self, metrics: Mapping[str, float | None]) -> None:
        """After every epoch (and its validation)."""
        if self.interval == "epoch":
            if self.monitor is not None:
                value = metrics.get(self.monitor)
                if value is None:  # no validation split: nothing to watch, keep the rate
                    return
                self._scheduler_step(value)
            else:
                self._scheduler_step()
        self._apply()

    def lr(self) -> float:
        """The learning rate of the first parameter group, as the next batch will use it."""
        return float(self._groups()[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict(), "step": self._step, "target": self._target}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """ValueError when `state` belongs to another scheduler class: torch's load_state_dict would take it
        and the run would break (or silently follow another schedule) an epoch later."""
        if not _same_fields(state["scheduler"], self.scheduler.state_dict()):
            raise ValueError(f"its scheduler state is not a {type(self.scheduler).__name__}'s")
        self.scheduler.load_state_dict(state["scheduler"])
        self._step = int(state["step"])
        self._target = None if state["target"] is None else [float(t) for t in state["target"]]
        self._apply()


def _same_fields(saved: Any, own: Any) -> bool:
    """Do two scheduler state dicts have the same public fields (T_max, step_size, ...), nested ones
    (SequentialLR's) included? Private ones (_step_count, ...) come and go with torch versions."""
    if isinstance(own, Mapping):
        if not isinstance(saved, Mapping):
            return False
        public = {k for k in own if not str(k).startswith("_")}
        return public == {k for k in saved if not str(k).startswith("_")} and all(
            _same_fields(saved[k], own[k]) for k in own if k in saved)
    if isinstance(own, list) and all(isinstance(v, Mapping) for v in own):
        return isinstance(saved, list) and len(saved) == len(own) and all(
            _same_fields(a, b) for a, b in zip(saved, own, strict=True))
    return True


def param_groups(
    model: torch.nn.Module, weight_decay: float, *, decay_bn_bias: bool = True
) -> list[dict[str, Any]] | Iterable[torch.nn.Parameter]:
    """Parameters for an optimizer; with decay_bn_bias=False, biases and norm weights (ndim <= 1) get no decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_bn_bias or weight_decay == 0:
        return params
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


__all__ = ["Interval", "Monitor", "Schedule", "param_groups"]
