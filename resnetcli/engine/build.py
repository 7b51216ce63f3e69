"""Build what a training run needs from its config: refuse bad settings, then the model, optimizer and
schedule from their registries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetcli.engine.config import TrainConfig
from resnetcli.errors import UsageError
from resnetcli.optim import Schedule, param_groups
from resnetcli.optim.schedulers import warmup_steps
from resnetcli.registry import registry


def _check_name(kind: str, name: str | None) -> None:
    """An unknown name fails here, listing the known ones, before any data is read."""
    if name is not None:
        registry(kind).entry(name)  # raises UsageError / PluginError with the known names


def check_config(config: TrainConfig) -> None:
    """What the config cannot check when it is built: required options and registered names.

    Types, ranges and rules between options are checked by TrainConfig itself (resnetcli/engine/config.py).
    """
    if not config.data:
        raise UsageError("no data given: pass --data (a processed folder, an image folder or a dataset name)")
    if not config.arch:
        raise UsageError("no architecture given: pass --arch (see `resnetcli list architectures`)")
    _check_name("architectures", config.arch)
    _check_name("optimizers", config.optimizer)
    _check_name("schedulers", config.scheduler)
    for name in config.loggers:
        _check_name("loggers", name)
    if config.pretrained:
        from resnetcli.pretrained import check_source

        check_source(config.pretrained, arch=config.arch)  # a missing file or unknown name, without downloading
    if config.augment and not config.augment.endswith((".yaml", ".yml")) and not Path(config.augment).is_file():
        _check_name("augmentations", config.augment)


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
    if config.backbone_lr_mult != 1:
        from resnetcli.engine.freeze import param_groups_with_backbone_mult

        params: Any = param_groups_with_backbone_mult(model, config.lr, config.backbone_lr_mult, config.weight_decay,
                                                      decay_bn_bias=config.decay_bn_bias)
    else:
        params = param_groups(model, config.weight_decay, decay_bn_bias=config.decay_bn_bias)
    return entry.build(params, options=options, expect=torch.optim.Optimizer, lr=config.lr,
                       weight_decay=config.weight_decay)


def build_schedule(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Schedule:
    schedule = registry("schedulers").build(config.scheduler, optimizer, options=config.sched_options,
                                            expect=Schedule, epochs=config.epochs, steps_per_epoch=steps_per_epoch)
    schedule.warmup_steps = warmup_steps(config.warmup_epochs, steps_per_epoch)
    return schedule
