"""engine/checkpoint.py: every field of a checkpoint is checked on save and on load; a crafted file is one
error line naming the field (exit 4), and non-finite weights or normalization are never used."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers_cli import one_error_line
from helpers_evaluate import TrainedRun, train_once
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine.checkpoint import load_checkpoint, non_finite_weight, save_checkpoint
from resnetcli.errors import CheckpointError

runner = CliRunner()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_once(tmp_path_factory)


@pytest.fixture(scope="module")
def good(trained: TrainedRun) -> dict[str, Any]:
    return load_checkpoint(trained.last)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets state[a][b]... = value for path 'a.b'."""
    *parents, last = path.split(".")

    def apply(state: dict[str, Any]) -> None:
        for key in parents:
            state = state[key]
        state[last] = value
    return apply


def _first_weight(state: dict[str, Any], value: Any) -> None:
    name = next(iter(state["model"]))
    state["model"][name] = value


def _ema_of_other_shapes(state: dict[str, Any]) -> None:
    """--ema's raw weights under the model's names, each one number: only their shapes are wrong."""
    state["ema"] = {"decay": 0.9, "n_averaged": 1, "weights": {k: torch.zeros(1) for k in state["model"]}}


def _partial(**change: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation adding a mid-epoch `partial_epoch` (engine/partial.py), valid but for `change`."""
    def apply(state: dict[str, Any]) -> None:
        import numpy as np

        state["partial_epoch"] = {
            "epoch": state["epoch"] + 1, "step": 1, "updates": 1, "loss_sum": 1.0, "correct_sum": 1.0, "seen": 1,
            "lr_start": 0.1, "mix_numpy": np.random.default_rng(0).bit_generator.state,
            "mix_torch": torch.Generator().get_state(), **change}
    return apply


# (field named in the message, mutation): wrong types and out-of-range values in every field
CRAFTED: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("version", _set("version", "1")),
    ("epoch", _set("epoch", "3")),
    ("epoch", _set("epoch", -1)),
    ("epoch", _set("epoch", 1.5)),
    ("global_step", _set("global_step", True)),
    ("model", _set("model", [1, 2])),
    ("model", _set("model", {})),
    ("model.", lambda s: _first_weight(s, [0.0, 1.0])),
    ("optimizer", _set("optimizer", 5)),
    ("optimizer", _set("optimizer", {"state": []})),
    ("scheduler", _set("scheduler", "cosine")),
    ("scaler", _set("scaler", [1])),
    ("best_metric", _set("best_metric", "high")),
    ("best_metric", _set("best_metric", float("inf"))),
    ("best_epoch", _set("best_epoch", -2)),
    ("best_epoch", _set("best_epoch", 99)),
    ("rng", _set("rng", {"python": 1})),
    ("rng.torch", _set("rng.torch", torch.zeros(3, dtype=torch.float32))),
    ("rng.python", _set("rng.python", [1, 2, 3])),
    ("rng.numpy", _set("rng.numpy", ["MT19937", "keys", 0, 0, 0.0])),
    ("classes", _set("classes", [])),
    ("classes", _set("classes", ["red", "red", "blue,bag"])),
    ("classes.0", _set("classes", [1, 2, 3])),
    ("classes.1", _set("classes", ["red", "", "blue"])),
    ("normalization.mean", _set("normalization.mean", "0.5")),
    ("normalization.mean.0", _set("normalization.mean", [float("nan"), 0.5, 0.5])),
    ("normalization.std.2", _set("normalization.std", [0.5, 0.5, 0.0])),
    ("normalization.mean", _set("normalization.mean", [0.5, 0.5])),
    ("arch.name", _set("arch.name", 5)),
    ("arch.num_classes", _set("arch.num_classes", "3")),
    ("arch.num_classes", _set("arch.num_classes", 4)),
    ("arch.in_channels", _set("arch.in_channels", 2)),
    ("arch.options", _set("arch.options", "depth=8")),
    ("data.image_size", _set("data.image_size", 10**6)),
    ("data.image_size", _set("data.image_size", "16")),
    ("data.channels", _set("data.channels", 1)),
    ("config.aug_options", _set("config.aug_options", 5)),
    ("config.image_size", _set("config.image_size", 0)),
    ("config.data_options", _set("config.data_options", [1])),
    ("metrics", _set("metrics", "good")),
    ("ema.weights", _ema_of_other_shapes),
    ("partial_epoch.mix_numpy", _partial(mix_numpy={"bit_generator": "PCG64"})),
    ("partial_epoch.mix_torch", _partial(mix_torch=torch.zeros(3))),
    ("partial_epoch.surplus", _partial(surplus=1)),  # EpochProgress(**partial_epoch) would not take it
]


@pytest.mark.parametrize(("field", "mutate"), CRAFTED, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CRAFTED)])
def test_a_crafted_checkpoint_is_one_line_naming_the_field(
    good: dict[str, Any], tmp_path: Path, field: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    state = copy.deepcopy(good)
    mutate(state)
    crafted = tmp_path / "crafted.pt"
    torch.save(state, crafted)  # written around save_checkpoint, which would refuse it
    line = one_error_line(runner.invoke(app, ["test", "--checkpoint", str(crafted)]), 4)
    assert f"checkpoint {crafted} is invalid: field '{field}" in line, line
    with pytest.raises(CheckpointError, match="not written, the previous checkpoint is intact"):
        save_checkpoint(state, tmp_path / "never.pt")
    assert not (tmp_path / "never.pt").exists()


def test_a_good_checkpoint_round_trips(good: dict[str, Any], tmp_path: Path) -> None:
    again = load_checkpoint(save_checkpoint(good, tmp_path / "again.pt"))
    assert again["classes"] == good["classes"] and again["epoch"] == good["epoch"]
    assert all(torch.equal(again["model"][k], v) for k, v in good["model"].items())


def test_wrong_tensor_shapes_are_one_line(good: dict[str, Any], tmp_path: Path) -> None:
    state = copy.deepcopy(good)
    name = next(k for k, v in state["model"].items() if v.ndim == 4)
    state["model"][name] = torch.zeros(1, 1, 1, 1)
    path = save_checkpoint(state, tmp_path / "shapes.pt")
    line = one_error_line(runner.invoke(app, ["test", "--checkpoint", str(path)]), 4)
    assert "wrong shape" in line and name in line


@pytest.mark.parametrize("damage", ["nan-weights", "inf-buffer", "std-zero", "std-nan"])
@pytest.mark.parametrize("command", ["test", "predict"])
def test_non_finite_weights_or_normalization_are_never_used(
    trained: TrainedRun, good: dict[str, Any], tmp_path: Path, damage: str, command: str
) -> None:
    state = copy.deepcopy(good)
    if damage == "nan-weights":
        name = next(k for k, v in state["model"].items() if v.is_floating_point() and v.ndim == 4)
        state["model"][name][0] = float("nan")
        expected = f"field 'model': weight {name} holds NaN or infinite values"
    elif damage == "inf-buffer":
        name = next(k for k in state["model"] if k.endswith("running_var"))
        state["model"][name][0] = float("inf")
        expected = f"weight {name} holds NaN or infinite values"
    else:
        state["normalization"]["std"][1] = 0.0 if damage == "std-zero" else float("nan")
        expected = "field 'normalization.std.1'"
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    argv = ["test", "--checkpoint", str(bad)] if command == "test" else [
        "predict", str(trained.data / "test" / "red" / "0.png"), "--checkpoint", str(bad)]
    line = one_error_line(runner.invoke(app, argv), 4)
    assert expected in line, line


def test_nan_weights_never_replace_a_good_checkpoint(good: dict[str, Any], tmp_path: Path) -> None:
    path = save_checkpoint(good, tmp_path / "last.pt")
    before = path.read_bytes()
    state = copy.deepcopy(good)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name].fill_(float("nan"))
    refused = f"weight {re.escape(name)} holds NaN.*not written, the previous checkpoint is intact"
    with pytest.raises(CheckpointError, match=refused):
        save_checkpoint(state, path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_data_options_the_dataset_does_not_take_are_the_checkpoints_fault(
    good: dict[str, Any], tmp_path: Path
) -> None:
    state = copy.deepcopy(good)
    state["config"]["data_options"] = {"bogus": 1}
    path = save_checkpoint(state, tmp_path / "opts.pt")
    line = one_error_line(runner.invoke(app, ["test", "--checkpoint", str(path)]), 4)
    assert "the data options it records ({'bogus': 1}) are refused" in line and "pass --data SOURCE" in line


_VALUES = st.one_of(st.floats(-10, 10), st.sampled_from([float("nan"), float("inf"), -float("inf"), 3e38, 6e4]))


@settings(max_examples=60, deadline=None)
@given(tensors=st.lists(st.tuples(st.sampled_from([torch.float32, torch.float16, torch.float64, torch.int64]),
                                  st.lists(_VALUES, min_size=1, max_size=6)), max_size=5))
def test_non_finite_weight_names_the_first_tensor_that_is_not_finite(tensors: list[tuple[torch.dtype, list]]) -> None:
    """Whatever the dtypes and values: huge finite ones (whose norm overflows float32 or float16) are finite,
    integer tensors are skipped, and the name is the first tensor holding NaN or infinity (one isfinite each)."""
    weights = {}
    for i, (dtype, values) in enumerate(tensors):
        if dtype == torch.int64:
            weights[f"t{i}"] = torch.tensor([int(v) if v == v and abs(v) < 1e18 else 0 for v in values])
        else:
            weights[f"t{i}"] = torch.tensor(values, dtype=torch.float64).to(dtype)  # 3e38 is inf in float16
    expected = next((name for name, t in weights.items()
                     if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)
    assert non_finite_weight(weights) == expected
