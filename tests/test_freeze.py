"""Freezing stages: frozen weights and BatchNorm statistics do not move; the backbone can get a smaller lr."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnetcli.engine.freeze import (
    FreezePlan,
    freeze,
    frozen_stages,
    param_groups_with_backbone_mult,
    parse_stages,
    stages,
    unfreeze,
)
from resnetcli.errors import UsageError
from resnetcli.models import zoo
from resnetcli.optim import param_groups


def _model() -> nn.Module:
    torch.manual_seed(0)
    return zoo.resnet20(num_classes=3)  # CIFAR stem (conv1, bn1, act) and layer1..layer3


def _train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    model.train()
    for i in range(steps):
        torch.manual_seed(100 + i)
        x, y = torch.randn(4, 3, 16, 16) * 2 + 1, torch.randint(0, 3, (4,))
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_stages_and_specs() -> None:
    model = _model()
    assert list(stages(model)) == ["stem", "layer1", "layer2", "layer3"]
    assert parse_stages(model, "stem, layer2") == ["stem", "layer2"]
    assert parse_stages(model, until="layer2") == ["stem", "layer1", "layer2"]
    resnet18 = zoo.resnet18(num_classes=2)
    assert stages(resnet18)["stem"] == [resnet18.conv1, resnet18.bn1, resnet18.act, resnet18.maxpool]
    assert list(stages(resnet18))[1:] == ["layer1", "layer2", "layer3", "layer4"]
    with pytest.raises(UsageError, match="layer4.*stages are stem, layer1, layer2, layer3"):
        parse_stages(model, "layer4")
    with pytest.raises(UsageError, match="--freeze-until fc"):
        parse_stages(model, until="fc")


def test_frozen_stages_do_not_move_but_the_rest_trains() -> None:
    model = _model()
    # the optimizer is built over every parameter first (weight decay and momentum included), then stages freeze
    optimizer = torch.optim.SGD(param_groups(model, 5e-4), lr=0.1, momentum=0.9, weight_decay=5e-4)
    _train_steps(model, optimizer, 1)  # momentum buffers exist for every parameter before freezing
    assert freeze(model, parse_stages(model, until="layer1")) == ["stem", "layer1"]
    assert frozen_stages(model) == ["stem", "layer1"]
    frozen = {"conv1": _snapshot(model.conv1), "bn1": _snapshot(model.bn1), "layer1": _snapshot(model.layer1)}
    trained = {"layer2": _snapshot(model.layer2), "fc": _snapshot(model.fc)}
    _train_steps(model, optimizer)
    for name, before in frozen.items():
        after = model.get_submodule(name).state_dict()
        for key, value in before.items():  # weights and BN running_mean/var/num_batches_tracked
            assert torch.equal(after[key], value), f"{name}.{key}"
    assert not torch.equal(model.layer2.state_dict()["0.bn1.running_mean"], trained["layer2"]["0.bn1.running_mean"])
    assert not torch.equal(model.fc.weight, trained["fc"]["weight"])
    assert model.layer2[0].bn1.training and not model.layer1[0].bn1.training


def test_unfreeze_at_follows_the_epoch_and_restores_training_mode() -> None:
    model = _model()
    plan = FreezePlan(("stem",), unfreeze_at=3)  # epochs 1 and 2 frozen, everything trains from epoch 3
    assert plan.apply(model, 1) and plan.apply(model, 2)
    assert frozen_stages(model) == ["stem"]
    model.train()
    model(torch.randn(2, 3, 16, 16))
    assert not model.bn1.training
    assert not plan.apply(model, 3)
    assert frozen_stages(model) == [] and model.bn1.training
    before = model.bn1.running_mean.clone()
    model(torch.randn(2, 3, 16, 16) + 3)
    assert not torch.equal(model.bn1.running_mean, before)
    # a resumed run (fresh model, epoch 2) freezes exactly as the first one did in epoch 2
    resumed = _model()
    assert FreezePlan(("stem",), unfreeze_at=3).apply(resumed, 2) and frozen_stages(resumed) == ["stem"]
    unfreeze(resumed)
    assert frozen_stages(resumed) == []
    assert not FreezePlan((), unfreeze_at=None).apply(resumed, 1)  # no stages: nothing frozen
    with pytest.raises(UsageError, match="--unfreeze-at must be an epoch"):
        FreezePlan(("stem",), unfreeze_at=0)


@pytest.mark.parametrize("decay_bn_bias", [True, False])
def test_backbone_lr_mult_composes_with_weight_decay_groups(decay_bn_bias: bool) -> None:
    model = _model()
    groups = param_groups_with_backbone_mult(model, 0.1, 0.1, 5e-4, decay_bn_bias=decay_bn_bias)
    head = {id(model.fc.weight), id(model.fc.bias)}
    names = [g["name"] for g in groups]
    if decay_bn_bias:
        assert names == ["head", "backbone"]
    else:
        assert names == ["head", "backbone", "head/no_decay", "backbone/no_decay"]
        assert [g["weight_decay"] for g in groups] == [5e-4, 5e-4, 0.0, 0.0]
    for g in groups:
        in_head = {id(p) in head for p in g["params"]}
        assert in_head == {g["name"].startswith("head")}
        assert g["lr"] == pytest.approx(0.1 if g["name"].startswith("head") else 0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    assert [g["lr"] for g in optimizer.param_groups] == [g["lr"] for g in groups]
    with pytest.raises(UsageError, match="--backbone-lr-mult"):
        param_groups_with_backbone_mult(model, 0.1, 0.0)


def test_with_a_backbone_lr_mult_the_rate_shown_is_the_classifiers() -> None:
    """The epoch line and metrics.csv show Schedule.lr(): --lr's schedule, not the backbone's fraction of it."""
    from resnetcli.engine.build import build_optimizer, build_schedule
    from resnetcli.engine.config import TrainConfig, replace

    config = replace(TrainConfig(), arch="resnet20", lr=0.1, backbone_lr_mult=0.01, scheduler="constant", epochs=1)
    optimizer = build_optimizer(config, _model())
    assert build_schedule(config, optimizer, steps_per_epoch=1).lr() == pytest.approx(0.1)
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([0.001, 0.1])
