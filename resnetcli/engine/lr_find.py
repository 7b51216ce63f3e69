"""The learning-rate range test (Smith 2017; fastai's `lr_find`): train a fresh model for a few steps while the
learning rate grows exponentially from min_lr to max_lr, and suggest the rate where the smoothed loss falls
fastest.

It builds the data, model and optimizer exactly as `train` does (engine/build.py, engine/trainer.py) and takes
each step through the training loop itself (engine/loop.train_epoch, one batch at a time), so mixup, CutMix,
label smoothing, AMP and gradient clipping act as they would in the run it prepares. Nothing is saved: the
model and optimizer are thrown away, and files are written only where asked (`write_outputs`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetcli.engine import distributed as D
from resnetcli.engine.build import build_model, build_optimizer, check_config
from resnetcli.engine.config import TrainConfig, replace
from resnetcli.engine.data import open_training_data
from resnetcli.engine.device import choose_precision
from resnetcli.engine.loop import NonFiniteLoss, Stepper, amp_settings, train_epoch
from resnetcli.engine.rng import derive_seed, seed_everything
from resnetcli.errors import UsageError

#: stop once the smoothed loss exceeds this many times its best (fastai's rule)
DIVERGE = 4.0
#: weight of the past in the loss's exponential moving average (fastai's 0.98)
BETA = 0.98
#: train settings the sweep does not apply (it steps a fresh, fully trainable model one batch at a time, with
#: unweighted loss): a --config file that sets one is refused rather than swept as if it were not there
NOT_SWEPT = ("pretrained", "freeze", "freeze_until", "accumulate", "class_weights")


@dataclass
class LrFindResult:
    """The sweep: one point per step taken, and the suggested rate (None when too few points)."""

    min_lr: float
    max_lr: float
    steps: int  # planned
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None
    stopped: str | None = None  # why the sweep ended early

    def to_dict(self) -> dict[str, Any]:
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "steps": self.steps, "points": len(self.lrs),
                "suggestion": self.suggestion, "stopped": self.stopped}


def sweep_lr(step: int, steps: int, min_lr: float, max_lr: float) -> float:
    """The rate of step `step` (0-based) of `steps`: min_lr at the first, max_lr at the last, exponential between."""
    return min_lr * (max_lr / min_lr) ** (step / max(1, steps - 1))


def steepest(lrs: list[float], smoothed: list[float]) -> float | None:
    """fastai's 'steep' suggestion: the rate where the smoothed loss falls fastest against log(lr), with the
    first tenth and the last five points left out (warm-up noise and the blow-up); all points if that leaves
    fewer than two."""
    n = len(lrs)
    lo, hi = n // 10, n - 5
    if hi - lo < 2:
        lo, hi = 0, n
    if hi - lo < 2:
        return None
    x, y = np.log(np.asarray(lrs[lo:hi])), np.asarray(smoothed[lo:hi])
    slopes = (y[1:] - y[:-1]) / (x[1:] - x[:-1])
    return float(lrs[lo + int(np.argmin(slopes))])


def lr_find(config: TrainConfig, *, steps: int = 100, min_lr: float = 1e-7, max_lr: float = 10.0) -> LrFindResult:
    """Sweep the learning rate over `steps` training steps of a fresh model built from `config`."""
    from resnetcli.engine.trainer import build_loaders, fill_defaults

    if not 0 < min_lr < max_lr:
        raise UsageError(f"--min-lr ({min_lr}) must be positive and below --max-lr ({max_lr})")
    if steps < 2:
        raise UsageError(f"--steps must be at least 2, got {steps}")
    check_config(config)
    ignored = [key for key in NOT_SWEPT if getattr(config, key) != getattr(TrainConfig(), key)]
    if ignored:
        raise UsageError(f"lr-find does not apply {', '.join(ignored)} (set in the --config file): the sweep trains "
                         "a fresh model with every layer learning, one plain step per batch; remove them for it")
    single = D.DistInfo()
    device = D.pick_device(config.device, single)
    config = replace(config, **choose_precision(config.amp, config.amp_dtype, config.channels_last, device).settings())
    amp_dtype, scaler = amp_settings(config.amp, config.amp_dtype, device)
    data = open_training_data(config.data or "", config.data_options, "none")  # no validation: loss on train
    seed_everything(config.seed)
    model = build_model(config, len(data.classes), data.source.channels)
    config = replace(fill_defaults(config, data, model), lr=min_lr)
    loaders = build_loaders(config, data, single, device)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(config, model)
    base = [group["lr"] / min_lr for group in optimizer.param_groups]  # per-group multipliers (backbone lr...)
    stepper = Stepper(model=model, optimizer=optimizer, schedule=None, device=device,
                      label_smoothing=config.label_smoothing, mixup=config.mixup, cutmix=config.cutmix,
                      amp_dtype=amp_dtype, scaler=scaler, channels_last=config.channels_last,
                      grad_clip=config.grad_clip, log_every=1)

    result = LrFindResult(min_lr=min_lr, max_lr=max_lr, steps=steps)
    average, best = 0.0, math.inf
    batches = _forever(loaders)
    for step in range(steps):
        lr = sweep_lr(step, steps, min_lr, max_lr)
        for group, multiplier in zip(optimizer.param_groups, base):
            group["lr"] = lr * multiplier
        try:
            loss = train_epoch(stepper, [next(batches)], epoch=step + 1, max_steps=1,
                               rng_seed=derive_seed(config.seed, step, 2))["train_loss"]
        except NonFiniteLoss:
            result.stopped = f"the loss became non-finite at lr {lr:.3g} (step {step + 1})"
            break
        average = BETA * average + (1 - BETA) * loss
        smooth = average / (1 - BETA ** (step + 1))  # bias-corrected, as fastai's Recorder does
        result.lrs.append(lr)
        result.losses.append(loss)
        result.smoothed.append(smooth)
        best = min(best, smooth)
        if smooth > DIVERGE * best:
            result.stopped = f"the loss diverged (over {DIVERGE:g}x its best) at lr {lr:.3g} (step {step + 1})"
            break
    result.suggestion = steepest(result.lrs, result.smoothed)
    return result


def _forever(loaders: dict[str, Any]) -> Iterator[Any]:
    """Training batches, epoch after epoch (each epoch shuffled as train shuffles it)."""
    epoch = 0
    while True:
        epoch += 1
        loaders["sampler"].set_epoch(epoch)
        empty = True
        for batch in loaders["train"]:
            empty = False
            yield batch
        if empty:
            raise UsageError("no training batch: lower --batch-size or pass --no-drop-last")


def write_outputs(result: LrFindResult, folder: Path) -> dict[str, Path]:
    """lr_find.png (loss against lr), lr_find.csv (every point) and lr_find.json (the summary) in `folder`."""
    from resnetcli.io import write_csv, write_json

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / "lr_find.csv", "json": folder / "lr_find.json", "plot": folder / "lr_find.png"}
    write_csv(paths["csv"], ["lr", "loss", "smoothed_loss"], zip(result.lrs, result.losses, result.smoothed))
    write_json(paths["json"], result.to_dict())
    if not write_plot(paths["plot"], result):
        del paths["plot"]
    return paths


def write_plot(path: Path, result: LrFindResult) -> bool:
    """Loss (raw and smoothed) against lr on a log axis, the suggestion marked; False without matplotlib."""
    from resnetcli.plots import new_figure, save_png

    fig = new_figure(7, 4.5)
    if fig is None:
        return False
    ax = fig.subplots()
    ax.plot(result.lrs, result.losses, alpha=0.3, label="loss")
    ax.plot(result.lrs, result.smoothed, label="smoothed loss")
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="red", linestyle="--", label=f"suggested lr {result.suggestion:.3g}")
    ax.set_xscale("log")
    if result.smoothed:  # the last raw losses of a diverged sweep would flatten everything else
        ax.set_ylim(min(min(result.losses), min(result.smoothed)) * 0.9, max(result.smoothed) * 1.2)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend()
    save_png(fig, path)
    return True
