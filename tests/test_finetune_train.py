"""`train --pretrained/--freeze/--freeze-until/--unfreeze-at/--backbone-lr-mult` end to end on tiny images.

The weights files are written here (torchvision's resnet18 state dict, randomly initialised, and a resnet20 one
where a test writes many checkpoints): no network.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers_train import interrupt_in_epoch, run_engine, torchvision_resnet18, write_images
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine.checkpoint import load_checkpoint
from resnetcli.errors import CheckpointError

FLAGS = {"arch": "resnet18", "image_size": 32, "optimizer": "sgd", "batch_size": 4, "max_steps": 2,
         "augment": "cifar"}
#: the stem and the first two stages of a torchvision ResNet state dict
EARLY = ("conv1.", "bn1.", "layer1.", "layer2.")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("finetune") / "images", classes=3, per_class=8, size=32)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    return torchvision_resnet18(tmp_path_factory.mktemp("weights") / "resnet18.pth")


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A resnet20 state dict in a file: the same stage names as resnet18's (conv1, bn1, layer1..), a 47th of its
    bytes, for the test that writes a dozen checkpoints."""
    from resnetcli.registry import registry

    state = registry("architectures").get("resnet20")(10, 3).state_dict()
    path = tmp_path_factory.mktemp("small") / "resnet20.pth"
    torch.save(state, path)
    return path, state


def _model(run: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / name)["model"]


def test_resnet18_starts_from_the_file_with_a_new_head(images: Path, weights: tuple[Path, dict],
                                                      tmp_path: Path) -> None:
    path, state = weights
    # everything but the classifier frozen: the backbone after training is the file's, so it started as the file's
    run_engine(images, tmp_path / "run", pretrained=str(path), freeze_until="layer4", epochs=2, **FLAGS)
    model = _model(tmp_path / "run")
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(model[key], value), key  # BN running statistics too: frozen BN stays in eval
    assert model["fc.weight"].shape == (3, 512)  # a new head for the data's 3 classes, not the file's 1000


def test_frozen_stages_do_not_move_while_the_rest_trains(images: Path, small_weights: tuple[Path, dict],
                                                        tmp_path: Path) -> None:
    path, state = small_weights
    run_engine(images, tmp_path / "run", pretrained=str(path), freeze="stem,layer1", freeze_until="layer2",
               epochs=1, **{**FLAGS, "arch": "resnet20"})
    model = _model(tmp_path / "run")
    for key, value in state.items():
        if key.startswith(EARLY):
            assert torch.equal(model[key], value), key
    assert not torch.equal(model["layer3.0.conv1.weight"], state["layer3.0.conv1.weight"])
    assert not torch.equal(model["layer3.2.bn2.running_mean"], state["layer3.2.bn2.running_mean"])


def test_torchvision_name_brings_imagenet_normalization(images: Path, weights: tuple[Path, dict], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _, state = weights
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda url, **kwargs: state)
    run_engine(images, tmp_path / "run", pretrained="IMAGENET1K_V1", epochs=1, log_level="INFO", **FLAGS)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert ckpt["normalization"]["std"] == pytest.approx([0.229, 0.224, 0.225])
    log = (tmp_path / "run" / "train.log").read_text()
    assert "normalizing with the pretrained weights' mean/std instead of the data's" in log


def test_resume_is_exact_with_freezing_unfreeze_at_and_backbone_lr(images: Path, small_weights: tuple[Path, dict],
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path, state = small_weights
    flags = {**FLAGS, "arch": "resnet20", "pretrained": str(path), "freeze_until": "layer2", "unfreeze_at": 3,
             "backbone_lr_mult": 0.1, "optimizer": "sgd-nesterov", "scheduler": "cosine", "epochs": 3}
    run_engine(images, tmp_path / "straight", checkpoint_every=1, **flags)
    epoch2 = _model(tmp_path / "straight", "epoch_002.pt")
    for key, value in state.items():  # frozen through epochs 1 and 2...
        if key.startswith(EARLY):
            assert torch.equal(epoch2[key], value), key
    assert not torch.equal(_model(tmp_path / "straight")["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])

    interrupt_in_epoch(monkeypatch, stop_epoch=2)  # ...and the resumed run must freeze them again for epoch 2
    with pytest.raises(KeyboardInterrupt):
        run_engine(images, tmp_path / "split", **flags)
    monkeypatch.undo()
    run_engine(images, tmp_path / "split", resume="auto", **flags)

    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert [g["lr"] for g in a["optimizer"]["param_groups"]] == [g["lr"] for g in b["optimizer"]["param_groups"]]
    for key, st in a["optimizer"]["state"].items():
        assert torch.equal(st["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"])

    with pytest.raises(CheckpointError, match="unfreeze_at 3 -> 2"):
        run_engine(images, tmp_path / "split", resume="auto", **{**flags, "unfreeze_at": 2, "epochs": 4})
    # the weights come from the checkpoint: other --pretrained weights would silently mean nothing
    with pytest.raises(CheckpointError, match="pretrained .* -> 'IMAGENET1K_V1'"):
        run_engine(images, tmp_path / "split", resume="auto", **{**flags, "pretrained": "IMAGENET1K_V1", "epochs": 4})


def test_a_mismatched_file_is_one_line_before_training(images: Path, weights: tuple[Path, dict],
                                                       tmp_path: Path) -> None:
    path, _ = weights
    result = CliRunner().invoke(app, ["train", "--data", str(images), "--arch", "resnet34", "--pretrained", str(path),
                                      "--epochs", "1", "--device", "cpu", "--output", str(tmp_path / "run")])
    assert result.exit_code == 4 and "missing (layer1.2.conv1.weight" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--pretrained", "no/such.pth"], "pretrained weights file no/such.pth does not exist"),
    (["--unfreeze-at", "2"], "--unfreeze-at needs stages to unfreeze"),
    (["--freeze", "stem,layer9x"], "--freeze/--freeze-until layer9x"),
    (["--backbone-lr-mult", "0"], "--backbone-lr-mult must be greater than 0"),
])
def test_bad_fine_tuning_flags_are_one_line(images: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(images), "--arch", "resnet18", "--epochs", "1",
                                      "--device", "cpu", "--output", str(tmp_path / "run"), *args])
    assert result.exit_code in (2, 4), result.output
    assert message in " ".join(result.output.split())
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoints").exists()


# Freezing and unfreezing under torchrun (DDP rebuilt when --unfreeze-at changes what trains): in
# tests/test_reliability_dist.py's uneven-batch run, which checks both with one launch.
