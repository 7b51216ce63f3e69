"""A network rebuilt from a checkpoint, with everything needed to feed it as training did.

A checkpoint carries its architecture (name, classes, input channels, options), normalization and the
evaluation pipeline's name, so no flag has to repeat them. `load_checkpoint` has already checked every
field (engine/checkpoint.py): weights and normalization are finite, std > 0, shapes and counts agree.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetcli.engine.checkpoint import load_checkpoint, load_weights
from resnetcli.errors import CheckpointError, PluginError, UsageError


@dataclass
class Restored:
    """A network rebuilt from a checkpoint, in eval mode, with its classes and input settings."""

    path: Path
    model: nn.Module
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    channels: int
    arch: str
    epoch: int
    augment: str
    aug_options: dict[str, Any]
    data_spec: str | None
    data_options: dict[str, Any]
    state: dict[str, Any] = field(repr=False)
    #: splits whose images training used (the checkpoint's data.trained_on; empty when not recorded)
    trained_on: list[str] = field(default_factory=list)


def build_network(arch: dict[str, Any], path: Path) -> nn.Module:
    """Call the registered architecture with the checkpoint's num_classes, in_channels and options."""
    from resnetcli.registry import registry

    name = str(arch["name"])
    try:
        entry = registry("architectures").entry(name)
    except (UsageError, PluginError) as exc:
        raise CheckpointError(
            f"checkpoint {path} was trained with architecture '{name}', which cannot be built here ({exc}); "
            "install the plugin that provides it"
        ) from None
    try:
        return entry.build(options=dict(arch.get("options") or {}), expect=nn.Module,
                           num_classes=int(arch["num_classes"]), in_channels=int(arch.get("in_channels", 3)))
    except (UsageError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint {path}: architecture '{name}' refuses the stored settings {arch} ({exc})"
        ) from None


def restore(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Restored:
    """Rebuild network, classes, normalization and input size from a checkpoint file alone."""
    path = Path(path)
    state = load_checkpoint(path, map_location="cpu")
    arch = state["arch"]
    model = build_network(arch, path)
    load_weights(model, state["model"], path, str(arch["name"]))
    model.eval().to(device)

    data = dict(state.get("data") or {})
    config = dict(state.get("config") or {})
    channels = int(arch.get("in_channels", 3))
    norm = dict(state.get("normalization") or {})
    image_size = data.get("image_size") or config.get("image_size") or getattr(model, "default_input_size", 224)
    return Restored(
        path=path, model=model, classes=list(state["classes"]),
        mean=tuple(float(v) for v in norm.get("mean", [0.5] * channels)),
        std=tuple(float(v) for v in norm.get("std", [0.5] * channels)),
        image_size=int(image_size), channels=channels, arch=str(arch["name"]), epoch=int(state["epoch"]),
        augment=str(data.get("augment") or config.get("augment") or "none"),
        aug_options=dict(config.get("aug_options") or {}),
        data_spec=data.get("spec") or config.get("data") or data.get("source"),
        data_options=dict(config.get("data_options") or {}),
        state=state, trained_on=list(data.get("trained_on") or []),
    )


def eval_pipeline(restored: Restored) -> Callable[..., dict[str, Any]]:
    """The evaluation pipeline training validated with (resize, center crop, normalize), or `none`."""
    from resnetcli.augment import build_pipeline
    from resnetcli.console import warn

    kwargs: dict[str, Any] = {"train": False, "image_size": restored.image_size, "mean": restored.mean,
                              "std": restored.std}
    try:
        return build_pipeline(restored.augment, options=restored.aug_options, **kwargs)
    except (UsageError, PluginError) as exc:
        # a pipeline file moved away or a plugin uninstalled: its eval half is resize + crop + normalize
        warn(f"augmentation '{restored.augment}' of {restored.path} is unavailable ({exc}); "
             "evaluating with 'none' (resize, center crop, normalize)")
        return build_pipeline("none", **kwargs)
