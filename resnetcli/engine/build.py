"""Build what a training run needs from its config: refuse bad settings, then the model, optimizer and
schedule from their registries."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from resnetcli.engine.config import TrainConfig
from resnetcli.errors import UsageError
from resnetcli.optim import Schedule, param_groups
from resnetcli.optim.schedulers import warmup_steps
from resnetcli.registry import registry

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _check_name(kind: str, name: str | None) -> None:
    """An unknown name fails here, listing the known ones, before any data is read."""
    if name is not None:
        registry(kind).entry(name)  # raises UsageError / PluginError with the known names


def check_config(config: TrainConfig) -> None:
    """Refuse impossible settings before opening any data."""
    if not config.data:
        raise UsageError("no data given: pass --data (a processed folder, an image folder or a dataset name)")
    if not config.arch:
        raise UsageError("no architecture given: pass --arch (see `resnetcli list architectures`)")
    _check_name("architectures", config.arch)
    _check_name("optimizers", config.optimizer)
    _check_name("schedulers", config.scheduler)
    if config.augment and not config.augment.endswith((".yaml", ".yml")) and not Path(config.augment).is_file():
        _check_name("augmentations", config.augment)
    if config.epochs <= 0:
        raise UsageError(f"--epochs must be at least 1, got {config.epochs}")
    if config.batch_size <= 0:
        raise UsageError(f"--batch-size must be at least 1, got {config.batch_size}")
    if config.lr is not None and not (config.lr > 0 and math.isfinite(config.lr)):
        raise UsageError(f"--lr must be a positive number, got {config.lr}")
    if config.weight_decay < 0:
        raise UsageError(f"--weight-decay must be 0 or more, got {config.weight_decay}")
    if config.mixup < 0:
        raise UsageError(f"--mixup alpha must be 0 (off) or positive, got {config.mixup}")
    if config.mixup > 0 and config.batch_size < 2:
        raise UsageError("--mixup mixes images within a batch and needs --batch-size of at least 2")
    if not 0 <= config.label_smoothing < 1:
        raise UsageError(f"--label-smoothing must be in [0, 1), got {config.label_smoothing}")
    if config.warmup_epochs < 0:
        raise UsageError(f"--warmup-epochs must be 0 or more, got {config.warmup_epochs}")
    if config.warmup_epochs >= config.epochs and config.warmup_epochs > 0:
        raise UsageError(f"--warmup-epochs ({config.warmup_epochs}) must be shorter than --epochs ({config.epochs})")
    if config.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be 0 (off) or positive, got {config.checkpoint_every}")
    if config.max_steps is not None and config.max_steps <= 0:
        raise UsageError(f"--max-steps must be at least 1, got {config.max_steps}")
    if config.workers is not None and config.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {config.workers}")
    if config.log_level.upper() not in LOG_LEVELS:
        raise UsageError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got '{config.log_level}'")
    if config.image_size is not None and config.image_size < 8:
        raise UsageError(f"--image-size must be at least 8, got {config.image_size}")
    if config.log_every <= 0:
        raise UsageError(f"log_every must be at least 1, got {config.log_every}")


def build_model(config: TrainConfig, num_classes: int, in_channels: int) -> nn.Module:
    assert config.arch
    return registry("architectures").build(config.arch, options=config.arch_options, expect=nn.Module,
                                           num_classes=num_classes, in_channels=in_channels)


def build_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    entry = registry("optimizers").entry(config.optimizer)
    options = dict(config.optimizer_options)
    if config.momentum is not None:
        if not entry.accepts("momentum"):
            raise UsageError(f"optimizer '{config.optimizer}' has no momentum; drop --momentum")
        options["momentum"] = config.momentum
    assert config.lr is not None
    params = param_groups(model, config.weight_decay, decay_bn_bias=config.decay_bn_bias)
    return entry.build(params, options=options, expect=torch.optim.Optimizer, lr=config.lr,
                       weight_decay=config.weight_decay)


def build_schedule(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Schedule:
    schedule = registry("schedulers").build(config.scheduler, optimizer, options=config.sched_options,
                                            expect=Schedule, epochs=config.epochs, steps_per_epoch=steps_per_epoch)
    schedule.warmup_steps = warmup_steps(config.warmup_epochs, steps_per_epoch)
    return schedule
