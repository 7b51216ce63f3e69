"""The optional training practices a run may switch on, built in one place for `build_run`:
--ema (engine/ema.py), --early-stop (engine/early_stop.py), --class-weights (engine/imbalance.py).
--accumulate is a Stepper setting (engine/loop.py) and --balanced-sampler the loader's sampler
(engine/trainer.py's build_loaders). All are off by default; each piece with state of its own is a
`state.parts` entry, so it is checkpointed and restored with the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from resnetcli.engine.callbacks import Callback
from resnetcli.errors import UsageError

if TYPE_CHECKING:
    from resnetcli.engine.ema import WeightAverage
    from resnetcli.engine.state import TrainState


@dataclass
class Practices:
    ema: WeightAverage | None = None
    class_weights: torch.Tensor | None = None  # on the training device
    callbacks: list[Callback] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the run's first lines should say about them


def build_practices(state: TrainState, labels: Sequence[int], device: torch.device) -> Practices:
    """The pieces the config asks for, around the built (not yet resumed) model; fills `state.parts`."""
    config, built = state.config, Practices()
    if config.ema is not None:
        from resnetcli.engine.ema import WeightAverage

        built.ema = WeightAverage(state.model, config.ema)
        state.parts.append(built.ema)
        built.notes.append(f"EMA of the weights (decay {config.ema:g}): validation, best.pt and the saved model "
                           "use the average")
    if config.early_stop is not None:
        if state.data_info.get("val_split") is None:
            raise UsageError(f"--early-stop watches {config.early_stop_metric}, but this run has no validation "
                             "split; pass --val-split (or data with a val/test split), or drop --early-stop")
        from resnetcli.engine.early_stop import EarlyStopping

        stopper = EarlyStopping(config.early_stop, config.early_stop_metric, config.early_stop_min_delta)
        built.callbacks.append(stopper)
        state.parts.append(stopper)
    if config.class_weights is not None:
        from resnetcli.engine.imbalance import class_weights

        weights = class_weights(config.class_weights, labels, state.classes)
        built.class_weights = torch.tensor(weights, dtype=torch.float32, device=device)
        shown = ", ".join(f"{c} {w:.3g}" for c, w in list(zip(state.classes, weights, strict=True))[:10])
        built.notes.append(f"class weights ({config.class_weights}): {shown}"
                           + (f" and {len(weights) - 10} more" if len(weights) > 10 else ""))
    if config.accumulate > 1:
        built.notes.append(f"gradients accumulated over {config.accumulate} batches: effective batch "
                           f"{config.accumulate * config.batch_size * state.dist.world}, "
                           f"{state.updates_per_epoch} optimizer steps per epoch")
    if config.balanced_sampler:
        built.notes.append("balanced sampler: every class drawn equally often in each epoch")
    return built
