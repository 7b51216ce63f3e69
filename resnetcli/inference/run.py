"""Batching and the forward pass: the one way `test`, `predict` and training's validation run a network."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from resnetcli.engine.data import Loader
from resnetcli.inference.metrics import Tally


@dataclass
class Outputs:
    """What one pass over a dataset produced."""

    probs: np.ndarray  # N x C float32 (softmax; averaged with the mirror image under --tta-flip)
    targets: np.ndarray  # N int64: class indices for labelled data, item indices for predict's files
    loss: float | None  # mean cross-entropy; None for unlabelled data


def forward_log_probs(model: nn.Module, images: torch.Tensor, *, tta_flip: bool = False,
                      autocast: Callable[[], contextlib.AbstractContextManager[Any]] | None = None) -> torch.Tensor:
    """Log-softmax of the logits (float32); with tta_flip, the log of the mean probability over image and mirror.

    `autocast` is training's mixed-precision context (engine/loop.py's Stepper.autocast), if any.
    """
    context = autocast or contextlib.nullcontext
    with torch.inference_mode():
        with context():
            logits = model(images)
        log_probs = torch.log_softmax(logits.float(), dim=1)
        if tta_flip:
            with context():
                mirrored = model(images.flip(3))
            log_probs = torch.logaddexp(log_probs, torch.log_softmax(mirrored.float(), dim=1)) - math.log(2.0)
    return log_probs


def default_workers() -> int:
    """DataLoader workers for test/predict: none on 1-2 CPUs, else half of them (at most 4)."""
    # decoding small images is cheap; on a 2-core machine a worker would only fight the forward pass
    cpus = os.cpu_count() or 1
    return 0 if cpus <= 2 else min(4, cpus // 2)


def run_model(
    model: nn.Module, dataset: Dataset, *, batch_size: int = 256, device: torch.device | str = "cpu",
    workers: int = 0, tta_flip: bool = False, progress: bool = True, desc: str = "test",
    labelled: bool = True, collate_fn: Callable[[list[Any]], Any] | None = None,
) -> Outputs:
    """One pass over `dataset` ((image, target) items) with a tqdm bar; the loss only when `labelled`."""
    from tqdm import tqdm

    device = torch.device(device)
    # channels_last is what oneDNN and cuDNN run fastest; the result is the same
    model = model.to(device).to(memory_format=torch.channels_last).eval()
    loader = Loader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                    pin_memory=device.type == "cuda", collate_fn=collate_fn)
    all_probs: list[torch.Tensor] = []
    all_targets: list[torch.Tensor] = []
    tally = Tally(device)
    with tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for images, targets in loader:
            if len(targets):
                images = images.to(device, non_blocking=True, memory_format=torch.channels_last)
                log_probs = forward_log_probs(model, images, tta_flip=tta_flip)
                if labelled:
                    tally.update(log_probs, targets.to(device))
                all_probs.append(log_probs.exp().cpu())
                all_targets.append(targets)
            bar.update(len(targets))
            if labelled and progress:
                bar.set_postfix_str(f"acc {tally.result()['top1']:.2f}%", refresh=False)
    if not all_probs:  # nothing readable: the caller says what that means
        return Outputs(probs=np.zeros((0, 0), np.float32), targets=np.zeros(0, np.int64), loss=None)
    return Outputs(probs=torch.cat(all_probs).numpy(), targets=torch.cat(all_targets).numpy().astype(np.int64),
                   loss=tally.result()["loss"] if labelled else None)
