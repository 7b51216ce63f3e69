"""What a training run holds while it runs: the built pieces and the counters a checkpoint records."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetcli.engine.config import TrainConfig
from resnetcli.engine.distributed import DistInfo
from resnetcli.engine.freeze import FreezePlan
from resnetcli.engine.rng import rng_state
from resnetcli.inference.metrics import topk_for
from resnetcli.optim import Schedule
from resnetcli.runs import RunLayout


@dataclass
class TrainState:
    """The run in progress; callbacks read it, the epoch loop advances it."""

    config: TrainConfig
    layout: RunLayout
    dist: DistInfo
    model: nn.Module  # unwrapped: what checkpoints save
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: Any
    classes: list[str]
    normalization: dict[str, list[float]]
    data_info: dict[str, Any]
    logger: logging.Logger
    steps_per_epoch: int
    freeze: FreezePlan = field(default_factory=FreezePlan)  # stages frozen, and until when
    start_epoch: int = 0  # epochs already done when this invocation started
    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    resumed_from: Path | None = None
    partial: Any = None  # EpochProgress: the epoch a mid-epoch checkpoint resumes, until fit takes it up
    last_row: dict[str, Any] = field(default_factory=dict)
    #: pieces with their own checkpointed state (EMA, early stopping): save() -> checkpoint entries (which
    #: may replace the defaults, e.g. EMA's `model`), load(checkpoint) on resume
    parts: list[Any] = field(default_factory=list)
    stop_reason: str | None = None  # set by a callback (early stopping) to end training after this epoch

    @property
    def run_dir(self) -> Path:
        return self.layout.run_dir

    @property
    def updates_per_epoch(self) -> int:
        """Optimizer steps per epoch, the schedule's unit: the epoch's last, shorter --accumulate window steps too."""
        return -(-self.steps_per_epoch // self.config.accumulate)

    @property
    def topk(self) -> int:
        """k of the top-k accuracy validation reports (resnetcli.inference.metrics.topk_for)."""
        return topk_for(len(self.classes))

    def checkpoint(self) -> dict[str, Any]:
        """Everything `--resume` needs to continue exactly, and `test`/`predict` need to use the model."""
        config = self.config
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "rng": rng_state(),
            "classes": self.classes,
            "normalization": self.normalization,
            "arch": {"name": config.arch, "num_classes": len(self.classes),
                     "in_channels": self.data_info["channels"], "options": dict(config.arch_options)},
            "data": self.data_info,
            "config": config.to_dict(),
            "metrics": self.last_row or None,
        } | {key: value for part in self.parts for key, value in part.save().items()}
