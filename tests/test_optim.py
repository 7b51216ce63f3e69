"""Every registered optimizer and scheduler steps as it should; warm-up; checkpointable state."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from resnetcli.errors import UsageError
from resnetcli.optim import Schedule, param_groups
from resnetcli.registry import get, registry


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.Linear(3, 2))


def _sgd(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)


@pytest.mark.parametrize("name", registry("optimizers").names())
def test_each_optimizer_updates_parameters(name: str) -> None:
    model = _model()
    opt = get("optimizers", name)(param_groups(model, 1e-4, decay_bn_bias=False), lr=0.01, weight_decay=1e-4)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert all(changed)
    assert opt.param_groups[0]["lr"] == 0.01
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-4, 0.0]


def test_sgd_nesterov_is_nesterov_and_plain_sgd_is_not() -> None:
    params = [nn.Parameter(torch.zeros(1))]
    assert get("optimizers", "sgd-nesterov")(params, lr=0.1).defaults["nesterov"] is True
    assert get("optimizers", "sgd")(params, lr=0.1).defaults["nesterov"] is False
    assert get("optimizers", "sgd")(params, lr=0.1).defaults["momentum"] == 0.9


def test_no_decay_bn_bias_groups() -> None:
    model = _model()
    groups = param_groups(model, 5e-4, decay_bn_bias=False)
    assert all(p.ndim > 1 for p in groups[0]["params"]) and len(groups[0]["params"]) == 2
    assert all(p.ndim == 1 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0
    assert len(list(param_groups(model, 5e-4))) == len(list(model.parameters()))


def _run(schedule: Schedule, epochs: int, steps: int, metrics: list[dict[str, float]] | None = None) -> list[float]:
    """The lr each epoch starts with, stepping as the engine does."""
    schedule.start()
    seen = []
    for epoch in range(epochs):
        seen.append(schedule.lr())
        for _ in range(steps):
            schedule.optimizer.step()
            schedule.step_batch()
        schedule.step_epoch(metrics[epoch] if metrics else {})
    return seen


def test_constant_step_multistep_cosine_follow_their_formulas() -> None:
    assert _run(get("schedulers", "constant")(_sgd(), epochs=4, steps_per_epoch=2), 4, 2) == [1.0] * 4
    lrs = _run(get("schedulers", "step")(_sgd(), epochs=6, steps_per_epoch=2, step_size=2, gamma=0.5), 6, 2)
    assert lrs == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])
    # the CIFAR paper: /10 at 50% and 75% of the run, given as fractions
    lrs = _run(get("schedulers", "multistep")(_sgd(), epochs=8, steps_per_epoch=1, milestones=[0.5, 0.75]), 8, 1)
    assert lrs == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])
    # seed 002: T_max 5, eta_min 1e-5, stepped per epoch
    lrs = _run(get("schedulers", "cosine")(_sgd(), epochs=6, steps_per_epoch=3, T_max=5, eta_min=1e-5,
                                           interval="epoch"), 6, 3)
    expected = [1e-5 + (1 - 1e-5) * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(6)]
    assert lrs == pytest.approx(expected)
    per_step = get("schedulers", "cosine")(_sgd(), epochs=2, steps_per_epoch=4, interval="step")
    assert per_step.interval == "step" and per_step.scheduler.T_max == 8


def test_plateau_watches_validation_accuracy() -> None:
    sched = get("schedulers", "plateau")(_sgd(), epochs=8, steps_per_epoch=1, factor=0.5, patience=2)
    assert sched.monitor == "val_acc" and sched.scheduler.mode == "max"
    flat = [{"val_acc": 50.0, "val_loss": 1.0}] * 8
    lrs = _run(sched, 8, 1, flat)
    assert lrs[:4] == [1.0] * 4 and lrs[4] == 0.5  # 3 epochs without improvement after the first
    loss_sched = get("schedulers", "plateau")(_sgd(), epochs=2, steps_per_epoch=1, monitor="val_loss")
    assert loss_sched.monitor == "val_loss" and loss_sched.scheduler.mode == "min"
    with pytest.raises(UsageError, match="monitor"):
        get("schedulers", "plateau")(_sgd(), epochs=2, steps_per_epoch=1, monitor="train_acc")


def test_onecycle_steps_per_batch_up_then_down() -> None:
    sched = get("schedulers", "onecycle")(_sgd(), epochs=4, steps_per_epoch=5)
    assert sched.interval == "step"
    sched.start()
    lrs = []
    for _ in range(19):
        sched.optimizer.step()
        sched.step_batch()
        lrs.append(sched.lr())
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert 0 < peak < 18 and lrs[peak] == pytest.approx(1.0, rel=0.05) and lrs[-1] < 0.01


@pytest.mark.parametrize(("name", "options"), [("constant", {}), ("cosine", {"interval": "epoch"}), ("multistep", {})])
def test_linear_warmup_overlays_the_first_batches(name: str, options: dict) -> None:
    sched = get("schedulers", name)(_sgd(), epochs=10, steps_per_epoch=4, **options)
    plain = _run(get("schedulers", name)(_sgd(), epochs=10, steps_per_epoch=4, **options), 10, 4)
    sched.warmup_steps = 8
    sched.start()
    seen = [sched.lr()]
    for _epoch in range(10):
        for _ in range(4):
            sched.optimizer.step()
            sched.step_batch()
            seen.append(sched.lr())
        sched.step_epoch({})
        seen[-1] = sched.lr()
    assert seen[:4] == pytest.approx([1 / 8, 2 / 8, 3 / 8, 4 / 8])
    # after warm-up the schedule is exactly the one without warm-up
    assert [seen[4 * e] for e in range(2, 10)] == pytest.approx(plain[2:])


@pytest.mark.parametrize("name", registry("schedulers").names())
def test_schedule_state_survives_a_weights_only_checkpoint(name: str, tmp_path: Path) -> None:
    sched = get("schedulers", name)(_sgd(), epochs=4, steps_per_epoch=3)
    sched.warmup_steps = 2
    _run(sched, 2, 3, [{"val_acc": 1.0, "val_loss": 1.0}] * 2)
    # plain types only: the state must load with weights_only=True, as every checkpoint is read
    torch.save({"scheduler": sched.state_dict()}, tmp_path / "s.pt")
    state = torch.load(tmp_path / "s.pt", weights_only=True)["scheduler"]
    again = get("schedulers", name)(_sgd(), epochs=4, steps_per_epoch=3)
    again.load_state_dict(state)
    again.optimizer.param_groups[0]["lr"] = sched.optimizer.param_groups[0]["lr"]
    metrics = [{"val_acc": 1.0, "val_loss": 1.0}] * 2
    for s in (sched, again):
        for epoch in range(2):
            for _ in range(3):
                s.optimizer.step()
                s.step_batch()
            s.step_epoch(metrics[epoch])
    assert again.lr() == pytest.approx(sched.lr())


def test_unknown_scheduler_option_is_a_usage_error() -> None:
    from resnetcli.engine.build import build_schedule
    from resnetcli.engine.config import TrainConfig

    config = TrainConfig(scheduler="cosine", sched_options={"T_maxx": 3})
    with pytest.raises(UsageError, match=r"scheduler 'cosine' from distribution 'resnetcli' does not take "
                                         r"option\(s\) T_maxx; it takes: T_max, eta_min, interval$"):
        build_schedule(config, _sgd(), 4)


@pytest.mark.parametrize("name", registry("optimizers").names())
def test_unknown_optimizer_option_names_the_ones_it_takes(name: str) -> None:
    """No optimizer forwards **kwargs to torch: a typo is refused before torch sees it, listing the options."""
    entry = registry("optimizers").entry(name)
    refused = rf"optimizer '{name}' .* does not take option\(s\) betaz; it takes: weight_decay, "
    with pytest.raises(UsageError, match=refused):
        entry.build([nn.Parameter(torch.zeros(1))], options={"betaz": 1}, lr=0.1)


@pytest.mark.parametrize(("name", "option", "value", "words"), [
    ("sgd", "dampening", -1e30, r"option dampening must be a finite number in \[0, 1\], not -1e\+30"),
    ("sgd", "momentum", 1.5, r"option momentum must be a finite number in \[0, 1\], not 1.5"),
    ("rmsprop", "momentum", float("nan"), r"option momentum must be a finite number in \[0, 1\], not nan"),
    ("adam", "betas", [0.9, 1.0], r"option betas must be a finite number in \[0, 1\), not 1.0"),
    ("adamw", "betas", [0.9], r"option betas must be two numbers in \[0, 1\), not \[0.9\]"),
    ("adamw", "eps", 0, r"option eps must be a finite number in \(0, inf\), not 0"),
    ("rmsprop", "alpha", "high", r"option alpha must be a finite number in \[0, 1\], not 'high'"),
    ("adam", "amsgrad", "yes", r"option amsgrad must be true or false, not 'yes'"),
])
def test_built_in_optimizer_options_out_of_range_are_one_usage_line(name: str, option: str, value: object,
                                                                    words: str) -> None:
    """torch would take these and train on nonsense: refused before any step, naming option and range."""
    entry = registry("optimizers").entry(name)
    with pytest.raises(UsageError, match=rf"^optimizer '{name}' {words}$"):
        entry.build([nn.Parameter(torch.zeros(1))], options={option: value}, lr=0.1)


def test_in_range_edges_are_accepted() -> None:
    entry = registry("optimizers").entry("sgd")
    opt = entry.build([nn.Parameter(torch.zeros(1))], options={"momentum": 1, "dampening": 0.0}, lr=0.1)
    assert opt.param_groups[0]["momentum"] == 1.0
    adam = registry("optimizers").entry("adam").build([nn.Parameter(torch.zeros(1))], options={"betas": [0, 0.5]},
                                                      lr=0.1)
    assert adam.param_groups[0]["betas"] == (0.0, 0.5)
