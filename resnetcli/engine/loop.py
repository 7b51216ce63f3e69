"""The training and evaluation loops: one optimizer step per batch, with as little host work as possible.

Loss and accuracy are summed on the device and read back (a host sync) only every `log_every` batches, for
the progress bar and the non-finite-loss check, so the loop costs next to nothing next to the model itself
(benchmarks/train_bench.py measures it against a hand-written loop).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnetcli.engine.distributed import all_reduce_sum
from resnetcli.engine.partial import EpochProgress, Snapshot
from resnetcli.errors import TrainingError, UsageError
from resnetcli.optim import Schedule


@dataclass
class Stepper:
    """Everything one training step needs; built once per run (and by the benchmark)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule | None
    device: torch.device
    label_smoothing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    amp_dtype: torch.dtype | None = None
    scaler: Any = None  # torch.amp.GradScaler for fp16 on CUDA
    channels_last: bool = False
    grad_clip: float | None = None
    log_every: int = 20
    accumulate: int = 1  # batches per optimizer step (--accumulate)
    class_weights: torch.Tensor | None = None  # per-class loss weights (--class-weights), on `device`
    ema: Any = None  # engine/ema.py's WeightAverage (--ema): updated after every optimizer step, validated
    _memory_format: torch.memory_format = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._memory_format = torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_device(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        non_blocking = self.device.type == "cuda"
        images = images.to(self.device, non_blocking=non_blocking, memory_format=self._memory_format)
        return images, targets.to(self.device, non_blocking=non_blocking)


def amp_settings(amp: bool, amp_dtype: str, device: torch.device) -> tuple[torch.dtype | None, Any]:
    """(autocast dtype or None, GradScaler or None) for --amp/--amp-dtype on `device`."""
    if not amp:
        return None, None
    if amp_dtype == "bf16":
        return torch.bfloat16, None
    if device.type == "cpu":
        raise UsageError("--amp-dtype fp16 needs a GPU; on CPU use --amp-dtype bf16")
    return torch.float16, torch.amp.GradScaler(device.type)


def mixup_batch(
    images: torch.Tensor, targets: torch.Tensor, alpha: float, rng: np.random.Generator, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al.): a convex mix of the batch with a shuffled copy of itself, lambda ~ Beta(a, a)."""
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(images.shape[0], generator=gen).to(images.device)
    mixed = images.mul(lam).add_(images[perm], alpha=1.0 - lam)
    return mixed, targets, targets[perm], lam


def cutmix_batch(
    images: torch.Tensor, targets: torch.Tensor, alpha: float, rng: np.random.Generator, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al.): a box of a shuffled copy pasted into each image; lambda ~ Beta(a, a) sizes the box,
    then becomes exactly the share of pixels left unpasted (the box is clipped at the border, as timm does)."""
    lam = float(rng.beta(alpha, alpha))
    height, width = images.shape[-2:]
    cut_h, cut_w = int(height * math.sqrt(1.0 - lam)), int(width * math.sqrt(1.0 - lam))
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    perm = torch.randperm(images.shape[0], generator=gen).to(images.device)
    mixed = images.clone()
    mixed[..., y0:y1, x0:x1] = images[perm][..., y0:y1, x0:x1]
    return mixed, targets, targets[perm], 1.0 - (y1 - y0) * (x1 - x0) / (height * width)


def mix_batch(
    stepper: Stepper, images: torch.Tensor, targets: torch.Tensor, rng: np.random.Generator, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix; with both on, one of them per batch with p=0.5 (timm's Mixup switch)."""
    use_cutmix = stepper.cutmix > 0 and (stepper.mixup <= 0 or rng.random() < 0.5)
    if use_cutmix:
        return cutmix_batch(images, targets, stepper.cutmix, rng, gen)
    return mixup_batch(images, targets, stepper.mixup, rng, gen)


def mixup_loss(
    logits: torch.Tensor, targets_a: torch.Tensor, targets_b: torch.Tensor, lam: float, smoothing: float,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    return lam * F.cross_entropy(logits, targets_a, weight=weight, label_smoothing=smoothing) + (
        1.0 - lam) * F.cross_entropy(logits, targets_b, weight=weight, label_smoothing=smoothing)


def optimizer_step(stepper: Stepper) -> None:
    """Clip, step (through the GradScaler for fp16), then advance the schedule and the weight average."""
    model, optimizer = stepper.model, stepper.optimizer
    if stepper.scaler is not None:
        if stepper.grad_clip:
            stepper.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), stepper.grad_clip)
        stepper.scaler.step(optimizer)
        stepper.scaler.update()
    else:
        if stepper.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), stepper.grad_clip)
        optimizer.step()
    if stepper.schedule is not None:
        stepper.schedule.step_batch()
    if stepper.ema is not None:
        stepper.ema.update()


def train_epoch(
    stepper: Stepper,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    epoch: int,
    max_steps: int | None = None,
    rng_seed: int = 0,
    on_progress: Callable[[int, float, float], None] | None = None,
    start: EpochProgress | None = None,
    on_step: Callable[[int, Snapshot], None] | None = None,
) -> dict[str, float]:
    """One pass over `batches`: train_loss, train_acc (percent), steps (optimizer steps), batches and images,
    summed over all ranks.

    `on_progress(batches, mean loss, accuracy)` is called every `log_every` batches and after the last one.
    With `stepper.accumulate` N > 1 the gradients of N batches (each loss divided by the window's size) make
    one optimizer step, and the epoch's last, shorter window makes one too (steps = ceil(batches / N)).

    `start`: where a mid-epoch checkpoint left this epoch (`batches` then yields only the batches after it);
    `on_step(batches, snapshot)`: after every batch that closes an optimizer step (engine/partial.py).
    """
    model, optimizer = stepper.model, stepper.optimizer
    model.train()
    rng = np.random.default_rng(rng_seed)
    gen = torch.Generator().manual_seed(rng_seed)
    loss_sum = torch.zeros((), device=stepper.device, dtype=torch.float64)
    correct_sum = torch.zeros((), device=stepper.device, dtype=torch.float64)
    seen = 0
    steps = 0
    updates = 0  # optimizer steps
    pending = False  # gradients accumulated but not yet stepped (batches of unknown count)
    accumulate = stepper.accumulate
    mixing = stepper.mixup > 0 or stepper.cutmix > 0
    if start is not None:  # continue the interrupted epoch: its counters, sums and generators
        steps, updates, seen = start.step, start.updates, start.seen
        loss_sum.fill_(start.loss_sum)
        correct_sum.fill_(start.correct_sum)
        rng.bit_generator.state = start.mix_numpy
        gen.set_state(start.mix_torch)
    total = steps + len(batches) if isinstance(batches, Sized) else None
    if max_steps is not None and total is not None:
        total = min(total, max_steps)
    for images, targets in batches:
        if max_steps is not None and steps >= max_steps:
            break
        images, targets = stepper.to_device(images, targets)
        batch = targets.shape[0]
        with stepper.autocast():
            if mixing:
                images, targets_a, targets_b, lam = mix_batch(stepper, images, targets, rng, gen)
                logits = model(images)
                loss = mixup_loss(logits, targets_a, targets_b, lam, stepper.label_smoothing, stepper.class_weights)
            else:
                logits = model(images)
                loss = F.cross_entropy(logits, targets, weight=stepper.class_weights,
                                       label_smoothing=stepper.label_smoothing)
        if steps % accumulate == 0:
            optimizer.zero_grad(set_to_none=True)
        if accumulate == 1:
            window, closes = 1, True
        else:  # the epoch's last window may be shorter: its batches are averaged over its own size
            window_start = steps - steps % accumulate
            window = accumulate if total is None else min(accumulate, total - window_start)
            closes = steps + 1 == window_start + window
        scaled = loss if window == 1 else loss / window
        no_sync = getattr(model, "no_sync", None)  # DDP: all-reduce only the window's last backward
        with contextlib.nullcontext() if closes or no_sync is None else no_sync():
            (stepper.scaler.scale(scaled) if stepper.scaler is not None else scaled).backward()
        pending = not closes
        if closes:
            optimizer_step(stepper)
            updates += 1
        with torch.no_grad():
            loss_sum += loss.detach() * batch
            hits = logits.argmax(dim=1)
            if mixing:
                correct_sum += lam * (hits == targets_a).sum() + (1.0 - lam) * (hits == targets_b).sum()
            else:
                correct_sum += (hits == targets).sum()
        seen += batch
        steps += 1
        if steps % stepper.log_every == 0 or steps == total:
            # the only host sync in the loop: a few times per epoch
            mean_loss = loss_sum.item() / seen
            if not math.isfinite(mean_loss):
                raise NonFiniteLoss(epoch, steps, mean_loss)
            if on_progress is not None:
                on_progress(steps, mean_loss, 100.0 * correct_sum.item() / seen)
        if on_step is not None and not pending:
            on_step(steps, functools.partial(_progress, epoch, steps, updates, loss_sum, correct_sum, seen, rng, gen))
    if pending:
        optimizer_step(stepper)
        updates += 1
    sums = all_reduce_sum(torch.stack([loss_sum, correct_sum, torch.tensor(float(seen), device=stepper.device,
                                                                             dtype=torch.float64)]))
    loss_total, correct_total, count = (float(v) for v in sums.tolist())
    if count == 0:
        return {"train_loss": float("nan"), "train_acc": float("nan"), "steps": 0, "batches": 0, "images": 0}
    mean_loss = loss_total / count
    if not math.isfinite(mean_loss):
        raise NonFiniteLoss(epoch, steps, mean_loss)
    return {"train_loss": mean_loss, "train_acc": 100.0 * correct_total / count, "steps": updates,
            "batches": steps, "images": int(count)}


def _progress(epoch: int, steps: int, updates: int, loss_sum: torch.Tensor, correct_sum: torch.Tensor, seen: int,
              rng: np.random.Generator, gen: torch.Generator) -> EpochProgress:
    """The epoch so far, for a checkpoint inside it (engine/partial.py); lr_start is the caller's to fill in."""
    return EpochProgress(epoch=epoch, step=steps, updates=updates, loss_sum=loss_sum.item(),
                         correct_sum=correct_sum.item(), seen=seen, lr_start=float("nan"),
                         mix_numpy=rng.bit_generator.state, mix_torch=gen.get_state())


class NonFiniteLoss(TrainingError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, value: float) -> None:
        super().__init__(f"the training loss became {value} in epoch {epoch} (by batch {step})")
        self.epoch = epoch
        self.step = step
        self.value = value


class NonFiniteWeights(TrainingError):
    """A weight or BatchNorm statistic became NaN or infinite while the loss still looked finite."""

    def __init__(self, epoch: int, name: str) -> None:
        super().__init__(f"the model's {name} became NaN or infinite in epoch {epoch}")
        self.epoch = epoch


@torch.inference_mode()
def evaluate(stepper: Stepper, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """Validation loss (plain cross-entropy), top-1 and top-k accuracy in percent, over all ranks.

    The forward pass and the metrics are `test`'s (resnetcli/inference); val_top5 holds the top-k accuracy
    with k = val_k = min(5, number of classes).
    """
    from resnetcli.inference.metrics import Tally
    from resnetcli.inference.run import forward_log_probs

    model = stepper.model if stepper.ema is None else stepper.ema.module  # with --ema, the average is validated
    model.eval()
    tally = Tally(stepper.device)
    for images, targets in batches:
        images, targets = stepper.to_device(images, targets)
        tally.update(forward_log_probs(model, images, autocast=stepper.autocast), targets)
    result = tally.reduce(all_reduce_sum).result()
    return {"val_loss": result["loss"], "val_acc": result["top1"], "val_top5": result["topk"], "val_k": result["k"]}
