"""Starting from pretrained weights: torchvision-format and safetensors files written here, never downloaded."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from helpers_train import torchvision_resnet18
from safetensors.torch import save_file

from resnetcli.engine.checkpoint import save_checkpoint
from resnetcli.errors import CheckpointError, UsageError
from resnetcli.models import zoo
from resnetcli.pretrained import check_source, classifier_name, load_pretrained

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    return torchvision_resnet18(tmp_path_factory.mktemp("weights") / "resnet18-imagenet.pth")


def _assert_backbone_equal(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    backbone = [k for k in own if not k.startswith("fc.")]
    assert len(backbone) > 100
    for key in backbone:
        assert torch.equal(own[key], state[key]), key


def test_resnet18_starts_from_a_torchvision_file_with_a_new_head(torchvision_file) -> None:
    path, state = torchvision_file
    torch.manual_seed(0)
    model = zoo.resnet18(num_classes=7)
    fresh_head = model.fc.weight.detach().clone()
    report = load_pretrained(model, path, arch="resnet18")
    _assert_backbone_equal(model, state)
    assert model.fc.weight.shape == (7, 512) and model.fc.bias.shape == (7,)
    assert torch.equal(model.fc.weight, fresh_head)  # the classifier keeps its fresh initialisation
    assert report.head == ["fc.weight", "fc.bias"]
    assert report.skipped == [] and report.missing == []
    assert len(report.loaded) == len(model.state_dict()) - 2
    assert report.normalization is None  # a bare state dict says nothing about its inputs
    assert "tensors loaded, new classifier (fc.weight, fc.bias)" in report.summary()


def test_safetensors_file_loads_tensor_by_tensor(torchvision_file, tmp_path: Path) -> None:
    _, state = torchvision_file
    path = tmp_path / "weights.safetensors"
    card = {"classes": ["a", "b"], "preprocessing": {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"resnetcli": json.dumps(card)})
    model = zoo.resnet18(num_classes=3)
    report = load_pretrained(model, path, arch="resnet18", classes=["a", "b", "c"])
    _assert_backbone_equal(model, state)
    assert report.normalization == {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}
    assert report.classes == ["a", "b"]


def test_mismatched_file_is_one_error_listing_the_tensors(torchvision_file) -> None:
    path, _ = torchvision_file
    model = zoo.resnet34(num_classes=5)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(model, path, arch="resnet34")
    message = str(info.value)
    assert "\n" not in message
    assert "missing (layer1.2.conv1.weight" in message  # resnet34 has a third block in layer1
    assert "--no-pretrained-strict" in message


def test_wrong_shapes_are_named_and_non_strict_loads_the_rest(torchvision_file, tmp_path: Path) -> None:
    _, state = torchvision_file
    damaged = dict(state)
    damaged["layer4.1.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    damaged["extra.weight"] = torch.zeros(3)
    path = tmp_path / "damaged.pth"
    torch.save(damaged, path)
    with pytest.raises(CheckpointError, match=r"1 wrong shape \(layer4\.1\.conv2\.weight \(512, 512, 1, 1\) vs "
                                              r"\(512, 512, 3, 3\)\); 1 unexpected \(extra\.weight\)"):
        load_pretrained(zoo.resnet18(num_classes=4), path, arch="resnet18")

    torch.manual_seed(0)
    model = zoo.resnet18(num_classes=4)
    init = model.layer4[1].conv2.weight.detach().clone()
    report = load_pretrained(model, path, arch="resnet18", strict=False)
    assert report.skipped == ["layer4.1.conv2.weight (shape (512, 512, 1, 1) vs (512, 512, 3, 3))",
                              "extra.weight (not in this network)"]
    assert torch.equal(model.layer4[1].conv2.weight, init)
    assert torch.equal(model.layer4[1].conv1.weight, state["layer4.1.conv1.weight"])
    assert "2 skipped" in report.summary()


def test_a_run_checkpoint_transfers_and_keeps_the_head_only_for_the_same_classes(tmp_path: Path) -> None:
    torch.manual_seed(3)
    trained = zoo.resnet20(num_classes=3)
    path = save_checkpoint({
        "epoch": 1, "model": trained.state_dict(), "classes": ["x", "y", "z"],
        "arch": {"name": "resnet20", "num_classes": 3, "in_channels": 3, "options": {}},
        "normalization": {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]},
    }, tmp_path / "last.pt")
    same = zoo.resnet20(num_classes=3)
    report = load_pretrained(same, path, arch="resnet20", classes=["x", "y", "z"])
    assert report.head == [] and torch.equal(same.fc.weight, trained.fc.weight)
    assert report.normalization == {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}

    other = zoo.resnet20(num_classes=3)
    report = load_pretrained(other, path, arch="resnet20", classes=["cat", "dog", "eel"])
    assert report.head == ["fc.weight", "fc.bias"]
    assert not torch.equal(other.fc.weight, trained.fc.weight)
    assert torch.equal(other.layer3[2].conv2.weight, trained.layer3[2].conv2.weight)


def test_torchvision_name_offline_says_where_to_put_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(zoo.resnet50(num_classes=2), "IMAGENET1K_V2", arch="resnet50")
    message = str(info.value)
    assert "ResNet50_Weights.IMAGENET1K_V2" in message and "no network" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth") in message


def test_torchvision_name_carries_imagenet_normalization(monkeypatch: pytest.MonkeyPatch, torchvision_file) -> None:
    _, state = torchvision_file
    urls: list[str] = []

    def cached(url: str, **kwargs: object) -> dict[str, torch.Tensor]:
        assert kwargs["weights_only"] is True
        urls.append(url)
        return state

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", cached)
    model = zoo.resnet18(num_classes=10)
    report = load_pretrained(model, "DEFAULT", arch="resnet18")
    assert urls == [torchvision.models.ResNet18_Weights.DEFAULT.url]
    _assert_backbone_equal(model, state)
    assert report.normalization is not None
    assert report.normalization["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert report.normalization["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert report.classes is not None and len(report.classes) == 1000
    assert report.source == "torchvision ResNet18_Weights.IMAGENET1K_V1"


@pytest.mark.parametrize(("source", "arch", "error", "words"), [
    ("IMAGENET1K_V1", "resnet20", UsageError, "torchvision weights names are for resnet18"),
    ("IMAGENET1K_V9", "resnet18", UsageError, "IMAGENET1K_V1"),
    ("missing/weights.pth", "resnet18", CheckpointError, "does not exist"),
])
def test_bad_sources_are_one_line(source: str, arch: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        load_pretrained(zoo.resnet18(num_classes=2), source, arch=arch)


def test_a_pickled_module_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "whole-model.pth"
    torch.save(torchvision.models.resnet18(weights=None), path)
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        load_pretrained(zoo.resnet18(num_classes=2), path, arch="resnet18")


def test_classifier_is_the_last_linear_layer() -> None:
    assert classifier_name(zoo.resnet20(num_classes=2)) == "fc"
    assert classifier_name(zoo.resnet18(num_classes=2, se_ratio=4)) == "fc"


def test_rgb_weights_start_a_grayscale_network_as_if_the_image_were_repeated(torchvision_file) -> None:
    path, state = torchvision_file
    rgb, gray = zoo.resnet18(num_classes=4), zoo.resnet18(num_classes=4, in_channels=1)
    load_pretrained(rgb, path, arch="resnet18")
    report = load_pretrained(gray, path, arch="resnet18")
    assert report.adapted == ["conv1.weight (3 -> 1 channels)"]
    assert torch.allclose(gray.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    gray.fc.load_state_dict(rgb.fc.state_dict())
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gray.eval()(x), rgb.eval()(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4)


def test_grayscale_normalization_is_the_average_and_filters_follow_each_channels_std(tmp_path: Path) -> None:
    torch.manual_seed(5)
    trained = zoo.resnet20(num_classes=2)
    path = save_checkpoint({
        "epoch": 1, "model": trained.state_dict(), "classes": ["a", "b"],
        "arch": {"name": "resnet20", "num_classes": 2, "in_channels": 3, "options": {}},
        "normalization": {"mean": [0.4, 0.4, 0.4], "std": [0.1, 0.2, 0.3]},
    }, tmp_path / "rgb.pt")
    gray = zoo.resnet20(num_classes=2, in_channels=1)
    report = load_pretrained(gray, path, arch="resnet20")
    assert report.normalization == {"mean": [pytest.approx(0.4)], "std": [pytest.approx(0.2)]}
    # equal channel means: a gray image normalized once equals the RGB network on it repeated, normalized per channel
    g = torch.rand(2, 1, 16, 16)
    mean, std = torch.tensor([0.4, 0.4, 0.4]).view(1, 3, 1, 1), torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)
    gray.fc.load_state_dict(trained.fc.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(gray.eval()((g - 0.4) / 0.2), trained.eval()((g.repeat(1, 3, 1, 1) - mean) / std),
                                   rtol=1e-4, atol=1e-4)


def test_check_source_refuses_early_without_reading_or_downloading(
    monkeypatch: pytest.MonkeyPatch, torchvision_file
) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("check_source must not download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    check_source("IMAGENET1K_V2", arch="resnet50")
    check_source("ResNet18_Weights.DEFAULT", arch="resnet18")
    check_source(torchvision_file[0], arch="resnet20")  # a file: its contents are checked when loaded
    with pytest.raises(UsageError, match="torchvision weights names are for"):
        check_source("DEFAULT", arch="resnet56")
    with pytest.raises(CheckpointError, match="does not exist"):
        check_source("runs/nowhere/last.pt", arch="resnet18")


def test_a_damaged_pth_gets_the_checkpoint_readers_one_line(tmp_path: Path) -> None:
    """engine.checkpoint.read_torch_file is the one safe reader: the same words for weights and checkpoints."""
    path = tmp_path / "half.pth"
    torch.save({"fc.weight": torch.zeros(2, 512)}, path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match=r"^pretrained weights file .*half.pth is truncated or corrupt"):
        load_pretrained(zoo.resnet18(num_classes=2), path, arch="resnet18")


@pytest.mark.parametrize("card", [
    "[1, 2]",
    '{"preprocessing": {"mean": ["x", 0.5, 0.5], "std": [0.2, 0.2, 0.2]}}',
    '{"preprocessing": {"mean": 5, "std": 1}}',
    '{"preprocessing": {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0, 0.2]}}',
    '{"preprocessing": {"mean": [0.5, 0.5, 0.5], "std": [0.2]}}',
    '{"preprocessing": {"mean": [0.5, NaN, 0.5], "std": [0.2, 0.2, 0.2]}}',
])
def test_a_crafted_safetensors_card_is_one_line(card: str, tmp_path: Path) -> None:
    """The card inside a downloaded .safetensors file is checked like a checkpoint's normalization (training divides
    by its std): was an AttributeError/TypeError/ValueError traceback, or training on inf."""
    from resnetcli.pretrained import read_weights

    path = tmp_path / "crafted.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, str(path), metadata={"resnetcli": card})
    with pytest.raises(CheckpointError) as info:
        read_weights(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
