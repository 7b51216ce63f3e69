"""Freezing stages of a network for fine-tuning, and a smaller learning rate for its pretrained part.

Stages are the network's top-level parts: `stem` (everything before layer1), `layer1` ... `layerN`.
A frozen stage's parameters get no gradient (so no optimizer step, no weight decay and no momentum moves
them) and its BatchNorm layers stay in eval mode, using and keeping their running statistics, even while
the rest of the network trains.

Freezing is a pure function of the plan and the epoch (`FreezePlan.apply(model, epoch)`, called before
each epoch), so a resumed run freezes exactly what the interrupted one did. Build the optimizer over all
parameters *before* freezing: frozen parameters then sit in it without moving (their grad stays None), the
optimizer's groups are the same whether or not a stage is frozen, and `--unfreeze-at` only has to switch
gradients back on. Under DistributedDataParallel, wrap the model after each change of what is frozen (DDP
registers the parameters that require grad when it is built).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from resnetcli.errors import UsageError
from resnetcli.optim import param_groups

_STAGE = re.compile(r"layer(\d+)$")
#: attribute under which a frozen BatchNorm keeps its forward pre-hook handle
_HOOK = "_resnetcli_frozen_bn"


def stages(model: nn.Module) -> dict[str, list[nn.Module]]:
    """{"stem": [...], "layer1": [...], ...}: the freezable top-level parts, in order."""
    children = list(model.named_children())
    layers = [i for i, (name, _) in enumerate(children) if _STAGE.match(name)]
    if not layers:
        raise UsageError(
            f"{type(model).__name__} has no stages named layer1, layer2, ...; freezing needs a resnetcli ResNet"
        )
    found: dict[str, list[nn.Module]] = {"stem": [m for _, m in children[: layers[0]]]}
    for i in layers:
        name, module = children[i]
        found[name] = [module]
    return found


def parse_stages(model: nn.Module, freeze: str | Sequence[str] | None = None, until: str | None = None) -> list[str]:
    """The stage names `--freeze stem,layer1` or `--freeze-until layer2` (stem through layer2) mean."""
    names = list(stages(model))
    wanted = [s.strip() for s in freeze.split(",")] if isinstance(freeze, str) else list(freeze or [])
    wanted = [s for s in wanted if s]
    if until is not None:
        if until not in names:
            raise UsageError(f"--freeze-until {until}: this network's stages are {', '.join(names)}")
        wanted += names[: names.index(until) + 1]
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise UsageError(
            f"--freeze {','.join(unknown)}: unknown stage(s); this network's stages are {', '.join(names)}"
        )
    return [n for n in names if n in wanted]


def freeze(model: nn.Module, names: Iterable[str]) -> list[str]:
    """Freeze the named stages (see `stages`); returns the names frozen. Idempotent."""
    parts = stages(model)
    frozen = list(names)
    for name in frozen:
        for module in parts[name]:
            for p in module.parameters():
                p.requires_grad_(False)
            for m in module.modules():
                if isinstance(m, _BatchNorm) and not hasattr(m, _HOOK):
                    setattr(m, _HOOK, m.register_forward_pre_hook(_stay_in_eval))
                    m.eval()
    return frozen


def unfreeze(model: nn.Module) -> None:
    """Every parameter trainable again, every BatchNorm following model.train()/eval() again."""
    for p in model.parameters():
        p.requires_grad_(True)
    for m in model.modules():
        handle = m.__dict__.pop(_HOOK, None)
        if handle is not None:
            handle.remove()
            m.train(model.training)


def frozen_stages(model: nn.Module) -> list[str]:
    """The stages whose parameters are all frozen."""
    return [name for name, modules in stages(model).items()
            if any(True for m in modules for _ in m.parameters())
            and all(not p.requires_grad for m in modules for p in m.parameters())]


def _stay_in_eval(module: nn.Module, args: Any) -> None:
    # model.train() flips every module back to training; a frozen BN is put back before each forward, so it
    # normalizes with, and never updates, the running statistics it was loaded with
    module.training = False


@dataclass(frozen=True)
class FreezePlan:
    """Which stages are frozen, and from which epoch on everything trains (epochs counted from 1, as logged)."""

    stages: tuple[str, ...] = ()
    unfreeze_at: int | None = None

    def __post_init__(self) -> None:
        if self.unfreeze_at is not None and self.unfreeze_at < 1:
            raise UsageError(f"--unfreeze-at must be an epoch (1 or more), not {self.unfreeze_at}")

    def frozen_at(self, epoch: int) -> bool:
        return bool(self.stages) and (self.unfreeze_at is None or epoch < self.unfreeze_at)

    def apply(self, model: nn.Module, epoch: int) -> bool:
        """Freeze or unfreeze for `epoch` (1-based), about to run; True when stages are frozen in it."""
        if self.frozen_at(epoch):
            freeze(model, self.stages)
            return True
        unfreeze(model)
        return False


def param_groups_with_backbone_mult(
    model: nn.Module, lr: float, mult: float, weight_decay: float = 0.0, *, decay_bn_bias: bool = True,
) -> list[dict[str, Any]]:
    """optim.param_groups (its weight-decay split), each split again: the classifier at lr, the rest at lr*mult.

    Every group is named ("head", "backbone", with "/no_decay" when biases and norms are split off) so logs
    and checkpoints say which is which. The head comes first: the one rate the epoch line and metrics.csv show
    is the first group's (Schedule.lr), and it should be --lr's, not the backbone's.
    """
    from resnetcli.pretrained import classifier_name

    if not mult > 0:
        raise UsageError(f"--backbone-lr-mult must be positive, not {mult}")
    head = model.get_submodule(classifier_name(model))
    head_ids = {id(p) for p in head.parameters()}
    base = param_groups(model, weight_decay, decay_bn_bias=decay_bn_bias)
    groups = [dict(g) for g in base] if _are_groups(base) else [{"params": list(base)}]
    split_decay = len(groups) > 1
    out: list[dict[str, Any]] = []
    for group in groups:
        suffix = "" if not split_decay or group.get("weight_decay", weight_decay) else "/no_decay"
        for part, scale in (("head", 1.0), ("backbone", mult)):
            params = [p for p in group["params"] if (id(p) in head_ids) == (part == "head")]
            if params:
                out.append({**group, "params": params, "lr": lr * scale, "name": part + suffix})
    return out


def _are_groups(params: Any) -> bool:
    return isinstance(params, list) and bool(params) and isinstance(params[0], dict)
