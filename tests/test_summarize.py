"""`resnetcli summarize`: seed 002's ResNet-50 table, totals, formats, options and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.models import zoo
from resnetcli.summary import summarize_arch, summarize_model

runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, ["summarize", *args])


def summary_json(*args: str) -> dict[str, Any]:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def shapes(data: dict[str, Any]) -> list[list[int]]:
    return [layer["output_shape"] for layer in data["layers"]]


def test_resnet50_matches_seed_002_table() -> None:
    data = summary_json("--arch", "resnet50", "--num-classes", "256")
    assert data["arch"] == "resnet50"
    assert data["total_params"] == 24_032_576  # 23,508,032 trunk + 2048 x 256 + 256
    assert data["input_size"] == 224
    got = shapes(data)
    # seed 002's rows, in order (its BN and ReLU rows sit between them in ours)
    expected = [[112, 112, 64], [56, 56, 64]] + [[56, 56, 256]] * 3 + [[28, 28, 512]] * 4 \
        + [[14, 14, 1024]] * 6 + [[7, 7, 2048]] * 3 + [[1, 1, 2048], [2048], [256]]
    it = iter(got)
    assert all(any(shape == e for shape in it) for e in expected), got
    blocks = [layer for layer in data["layers"] if layer["type"] == "Bottleneck"]
    assert [b["output_shape"][2] for b in blocks] == [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    assert got[-3:] == [[1, 1, 2048], [2048], [256]]
    conv1 = next(layer for layer in data["layers"] if layer["name"] == "conv1")
    assert (conv1["kernel"], conv1["kernels"], conv1["stride"], conv1["padding"]) == (7, 64, 2, 3)
    maxpool = next(layer for layer in data["layers"] if layer["name"] == "maxpool")
    assert (maxpool["output_shape"], maxpool["kernel"], maxpool["stride"], maxpool["padding"]) == (
        [56, 56, 64], 3, 2, 1)


def test_resnet50_macs_and_totals() -> None:
    data = summary_json("--arch", "resnet50")
    assert data["num_classes"] == 1000
    assert data["total_params"] == data["trainable_params"] == 25_557_032
    assert data["non_trainable_params"] == 0
    assert data["macs"] == pytest.approx(4.09e9, rel=0.005)
    # the stem conv alone holds 112*112*64 floats; the whole forward pass far more
    assert data["activation_bytes"] > 112 * 112 * 64 * 4


def test_table_and_markdown_formats() -> None:
    table = run("--arch", "resnet50", "--num-classes", "256")
    assert table.exit_code == 0, table.output
    assert "24,032,576" in table.stdout and "MACs" in table.stdout and "Bottleneck" in table.stdout
    assert "56x56x256" in table.stdout
    markdown = run("--arch", "resnet20", "--format", "markdown")
    assert markdown.exit_code == 0
    assert "| conv1 | Conv2d | 32x32x16 | 3 | 16 | 1 | 1 | 432 |" in markdown.stdout
    assert "**Parameters**: 269,722" in markdown.stdout


def test_depth_shows_inner_layers() -> None:
    shallow = summary_json("--arch", "resnet20")
    deep = summary_json("--arch", "resnet20", "--depth", "2")
    assert not any(layer["name"].startswith("layer1.0.") for layer in shallow["layers"])
    inner = [layer["name"] for layer in deep["layers"] if layer["name"].startswith("layer1.0.")]
    assert inner[:3] == ["layer1.0.conv1", "layer1.0.bn1", "layer1.0.act1"]
    assert deep["total_params"] == shallow["total_params"] and deep["macs"] == shallow["macs"]


def test_family_defaults_and_options() -> None:
    cifar = summary_json("--arch", "resnet20")
    assert (cifar["input_size"], cifar["num_classes"]) == (32, 10)
    assert cifar["layers"][0]["output_shape"] == [32, 32, 3]
    deeper = summary_json("--arch", "cifar_resnet", "--arch-option", "depth=74", "--arch-option", "shortcut=B")
    assert deeper["total_params"] == sum(p.numel() for p in zoo.cifar_resnet(10, depth=74, shortcut="B").parameters())
    gray = summary_json("--arch", "resnet18", "--in-channels", "1", "--input-size", "64", "--num-classes", "5")
    assert gray["layers"][0]["output_shape"] == [64, 64, 1]
    assert gray["layers"][1]["output_shape"] == [32, 32, 64]
    assert gray["total_params"] == 11_689_512 - 2 * 49 * 64 - 995 * 513


def test_plugin_architecture_is_summarised() -> None:
    data = summary_json("--arch", "se_mxresnext29_16x2d", "--depth", "3")
    from resnetcli.registry import get

    model = get("architectures", "se_mxresnext29_16x2d")(10)
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    assert "SqueezeExcite" in {layer["type"] for layer in data["layers"]}
    assert "Mish" in {layer["type"] for layer in data["layers"]}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--arch", "resnet5"], "did you mean resnet56, resnet50"),
        (["--arch", "not-a-net"], "unknown architecture 'not-a-net'"),
        (["--arch", "resnet18", "--arch-option", "colour=red"], "colour"),
        (["--arch", "cifar_resnet", "--arch-option", "depth=21"], "6n+2"),
        (["--arch", "resnet18", "--arch-option", "depth"], "KEY=VALUE"),
        (["--arch", "resnet20", "--depth", "0"], "--depth"),
    ],
)
def test_bad_input_is_one_line(args: list[str], needle: str) -> None:
    result = run(*args)
    assert result.exit_code != 0
    assert needle in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_summarize_model_counts_a_known_network() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    summary = summarize_model(model, input_size=4, in_channels=1)
    assert [row.output_shape for row in summary.layers] == [[4, 4, 1], [4, 4, 2], [4, 4, 2], [32], [3]]
    assert summary.macs == 2 * 16 * 9 + 3 * 32
    assert summary.activation_bytes == (32 + 32 + 32 + 3) * 4
    assert summary.total_params == 2 * 9 + 2 + 32 * 3 + 3
    model[0].weight.requires_grad_(False)
    assert summarize_model(model, input_size=4, in_channels=1).non_trainable_params == 18


class _NeedsRealNumbers(nn.Module):
    """A 'plugin' network whose forward reads a value, which the meta device cannot give."""

    default_input_size = 8

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 + float(x.abs().max().item())
        return self.fc(self.conv(x).mean((2, 3)) * scale)


def test_falls_back_to_a_real_tensor_when_meta_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md
    import sys
    import types

    from resnetcli.registry import Entry, registry

    module = types.ModuleType("needs_real_numbers")
    module.build = _NeedsRealNumbers  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "needs_real_numbers", module)
    ep = md.EntryPoint(name="plugin-net", value="needs_real_numbers:build", group="resnetcli.architectures")
    entry = Entry(kind="architectures", name="plugin-net", value=ep.value, distribution="someplug", _ep=ep)
    monkeypatch.setitem(registry("architectures").entries, "plugin-net", entry)
    summary = summarize_arch("plugin-net", num_classes=3, in_channels=2)
    assert summary.input_size == 8
    assert [row.output_shape for row in summary.layers] == [[8, 8, 2], [6, 6, 4], [3]]
    assert summary.total_params == 2 * 4 * 9 + 4 + 4 * 3 + 3


@pytest.fixture
def devices(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The device of each layer pass summarize_arch makes, in order (summarize_model spied on)."""
    import resnetcli.summary

    seen: list[str] = []

    def spy(model: nn.Module, **kwargs: Any) -> Any:
        seen.append(next(model.parameters()).device.type)
        return summarize_model(model, **kwargs)

    monkeypatch.setattr(resnetcli.summary, "summarize_model", spy)
    return seen


@pytest.mark.parametrize("arch, size", [("resnet50", 224), ("resnet20", 32), ("preact_resnet50", 64)])
def test_the_real_pass_on_zeros_describes_the_network_as_the_meta_pass_does(
        arch: str, size: int, devices: list[str]) -> None:
    """Small inputs are summarised by a pass over zero weights on the CPU, large ones on the meta device: both
    must give the same table."""
    real = summarize_arch(arch, input_size=size, depth=3)
    assert devices == ["cpu"]
    with torch.device("meta"):
        model = zoo.__dict__[arch](real.num_classes)
    meta = summarize_model(model, input_size=size, depth=3, arch=arch, num_classes=real.num_classes)
    assert next(model.parameters()).is_meta
    assert real == meta


def test_large_inputs_are_summarised_on_the_meta_device(devices: list[str]) -> None:
    assert summarize_arch("resnet50", input_size=512).layers[-1].output_shape == [1000]
    assert devices == ["meta"]


def test_a_network_that_zero_weights_upset_is_summarised_on_the_meta_device(
        devices: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import resnetcli.summary

    monkeypatch.setattr(resnetcli.summary, "_zeros_on_cpu", lambda model: model.to_empty(device="cpu").double())
    summary = summarize_arch("resnet20")  # a float64 network on a float32 image fails; the meta pass does not
    assert devices == ["cpu", "meta"]
    assert summary.total_params == 269_722 and summary.layers[-1].output_shape == [10]


def test_summarize_does_not_import_torch_dynamo() -> None:
    """torch's meta-device batch norm imports torch._dynamo, 1.3 s of the command's start: a default summary
    needs neither."""
    import subprocess
    import sys

    code = ("import sys; from resnetcli.summary import summarize_arch; summarize_arch('resnet20'); "
            "print('torch._dynamo' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_names_a_plugin_gives_are_shown_as_given() -> None:
    """The architecture's name and its layers' names and types come from plugins: markup in them is shown."""
    import dataclasses
    import io

    from resnetcli.console import new_console
    from resnetcli.summary import render_table, summarize_arch

    summary = summarize_arch("resnet20")
    layers = [dataclasses.replace(row, name="[bold]a:smile:", type="Block[/]\\") if row.depth == 1 else row
              for row in summary.layers]
    odd = dataclasses.replace(summary, arch="net[/]", layers=layers)
    buffer = io.StringIO()
    new_console(file=buffer, width=300, color_system=None).print(render_table(odd))
    shown = buffer.getvalue()
    assert "net[/] (10 classes)" in shown
    assert "[bold]a:smile:" in shown and "Block[/]\\" in shown
