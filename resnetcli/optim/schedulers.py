"""Built-in learning-rate schedules; each returns a Schedule saying when the engine steps it.

Continuous schedules (cosine, onecycle, and the linear warm-up every schedule can have) step after every
batch, so even a one-epoch run anneals; piecewise ones (step, multistep, plateau) step after every
epoch, as their epoch counts say. cosine's interval=epoch gives the older per-epoch staircase.

Epoch counts given as fractions below 1 (multistep milestones [0.5, 0.75]) are fractions of the run,
so a recipe like the CIFAR paper's "divide by 10 at 50% and 75%" works for any --epochs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.optim import lr_scheduler

from resnetcli.errors import UsageError
from resnetcli.optim import Interval, Monitor, Schedule


def _epochs(value: float, epochs: int) -> int:
    """An epoch count; a value in (0, 1) is a fraction of the run."""
    if 0 < value < 1:
        return max(1, round(value * epochs))
    return int(value)


def _interval(value: str) -> Interval:
    if value not in ("step", "epoch"):
        raise UsageError(f"scheduler option interval must be 'step' or 'epoch', not '{value}'")
    return value  # type: ignore[return-value]


def constant(optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int) -> Schedule:
    """A constant learning rate."""
    return Schedule(lr_scheduler.LambdaLR(optimizer, lambda _: 1.0), interval="epoch")


def step(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, step_size: float = 0.0,
    gamma: float = 0.1,
) -> Schedule:
    """Multiply the rate by gamma (0.1) every step_size epochs (default: a third of the run)."""
    size = _epochs(step_size, epochs) if step_size else max(1, epochs // 3)
    return Schedule(lr_scheduler.StepLR(optimizer, step_size=size, gamma=gamma), interval="epoch")


def multistep(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
    milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.1,
) -> Schedule:
    """Multiply the rate by gamma (0.1) at each milestone epoch (default 50% and 75%: the CIFAR paper)."""
    points = sorted({_epochs(m, epochs) for m in milestones})
    return Schedule(lr_scheduler.MultiStepLR(optimizer, milestones=points, gamma=gamma), interval="epoch")


def cosine(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, T_max: float = 0.0,
    eta_min: float = 0.0, interval: str = "step",
) -> Schedule:
    """Cosine annealing to eta_min over T_max epochs (default: the run), per batch (interval=epoch: per epoch)."""
    period = _epochs(T_max, epochs) if T_max else epochs
    how = _interval(interval)
    if how == "step":
        period *= steps_per_epoch
    return Schedule(lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, period), eta_min=eta_min), interval=how)


def plateau(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, monitor: str = "val_acc",
    factor: float = 0.1, patience: int = 10, threshold: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0,
) -> Schedule:
    """Reduce the rate by factor when the monitored metric (val_acc or val_loss) stops improving."""
    if monitor not in ("val_acc", "val_loss"):
        raise UsageError(f"plateau scheduler option monitor must be val_acc or val_loss, not '{monitor}'")
    watched: Monitor = monitor  # type: ignore[assignment]
    sched = lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if watched == "val_acc" else "min", factor=factor, patience=patience,
        threshold=threshold, cooldown=cooldown, min_lr=min_lr,
    )
    return Schedule(sched, interval="epoch", monitor=watched)


def onecycle(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, pct_start: float = 0.3,
    div_factor: float = 25.0, final_div_factor: float = 1e4, anneal_strategy: str = "cos",
) -> Schedule:
    """One-cycle policy (Smith): warm up to the given lr, then anneal, stepped every batch."""
    max_lrs = [float(g["lr"]) for g in optimizer.param_groups]
    sched = lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lrs, epochs=epochs, steps_per_epoch=max(1, steps_per_epoch), pct_start=pct_start,
        div_factor=div_factor, final_div_factor=final_div_factor, anneal_strategy=anneal_strategy,
        cycle_momentum=any("momentum" in g or "betas" in g for g in optimizer.param_groups),
    )
    return Schedule(sched, interval="step")


def warmup_steps(warmup_epochs: float, steps_per_epoch: int) -> int:
    """Warm-up length in batches."""
    return max(0, math.ceil(warmup_epochs * steps_per_epoch))
