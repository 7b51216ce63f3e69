"""--ema DECAY: an exponential moving average of the weights (torch's AveragedModel), updated after every
optimizer step, validated instead of the raw weights, and what `test`, `export` and `predict` use.

Checkpoint layout with EMA on: `model` holds the averaged weights (so every reader of a checkpoint uses
them without knowing about EMA), and `ema` holds what resuming needs besides: the raw training weights,
the number of averaged steps and the decay.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from resnetcli.errors import CheckpointError


class WeightAverage:
    """The EMA of `model`'s parameters and buffers (BatchNorm statistics averaged too, use_buffers=True)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be between 0 and 1, got {decay}")
        self.model = model  # the unwrapped training model (not DDP / compiled)
        self.decay = decay
        self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    @property
    def module(self) -> nn.Module:
        """The averaged network (evaluate this one)."""
        return self.average.module

    def update(self) -> None:
        """Fold the current weights in: the first call copies them, later ones lerp by 1 - decay."""
        self.average.update_parameters(self.model)

    def save(self) -> dict[str, Any]:
        """Checkpoint entries: `model` is the average, `ema` the raw weights and the averaging state."""
        return {"model": self.module.state_dict(),
                "ema": {"decay": self.decay, "n_averaged": int(self.average.n_averaged.item()),
                        "weights": self.model.state_dict()}}

    def load(self, checkpoint: dict[str, Any]) -> None:
        """The inverse of `save` (the raw weights back into the training model)."""
        ema = checkpoint.get("ema")
        if not ema:
            raise CheckpointError("the checkpoint was trained without --ema, so it holds no average to continue; "
                                  "resume without --ema, or start a new run")
        self.model.load_state_dict(ema["weights"])
        self.module.load_state_dict(checkpoint["model"])
        self.average.n_averaged.fill_(int(ema["n_averaged"]))

