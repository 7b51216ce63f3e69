"""When each built-in schedule steps: continuous ones every batch (so one epoch anneals), piecewise ones per epoch."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from resnetcli.optim import Schedule
from resnetcli.registry import registry


def _build(name: str, epochs: int, steps: int, **options: object) -> Schedule:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    return registry("schedulers").build(name, optimizer, options=options, epochs=epochs, steps_per_epoch=steps)


def _train(schedule: Schedule, epochs: int, steps: int) -> list[float]:
    """The lr after every batch, stepping exactly as the engine does."""
    schedule.start()
    seen = []
    for _ in range(epochs):
        for _ in range(steps):
            schedule.optimizer.step()
            schedule.step_batch()
            seen.append(schedule.lr())
        schedule.step_epoch({"val_acc": 50.0, "val_loss": 1.0})
    return seen


def test_one_epoch_of_cosine_anneals_to_zero_by_default() -> None:
    schedule = _build("cosine", epochs=1, steps=8)
    lrs = _train(schedule, 1, 8)
    assert schedule.interval == "step"
    assert lrs[-1] == pytest.approx(0.0, abs=1e-9) and schedule.lr() == pytest.approx(0.0, abs=1e-9)
    assert all(a > b for a, b in pairwise(lrs))  # every batch lowers it: no per-epoch staircase


def test_cosine_per_epoch_on_request_and_warmup_per_batch() -> None:
    per_epoch = _build("cosine", epochs=1, steps=8, interval="epoch")
    assert _train(per_epoch, 1, 8)[:-1] == [0.1] * 7  # the old behaviour: one epoch never anneals
    warm = _build("cosine", epochs=10, steps=4)
    warm.warmup_steps = 4
    lrs = _train(warm, 10, 4)
    assert lrs[0] < lrs[1] < lrs[2] > lrs[3] and lrs[-1] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("name", "interval"), [("onecycle", "step"), ("step", "epoch"), ("multistep", "epoch"),
                                                ("plateau", "epoch"), ("constant", "epoch")])
def test_continuous_schedules_step_per_batch_piecewise_per_epoch(name: str, interval: str) -> None:
    assert _build(name, epochs=4, steps=3).interval == interval
