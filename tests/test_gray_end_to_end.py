"""One-channel images end to end: a folder of grayscale PNGs stays gray through preprocess, train, test,
predict, export and `predict --model` (onnxruntime)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers_train import write_images
from PIL import Image
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.data import open_source
from resnetcli.engine.checkpoint import load_checkpoint

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, [*args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def gray_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_images(tmp_path_factory.mktemp("gray") / "photos", classes=3, per_class=10, size=20, channels=1)
    assert {Image.open(p).mode for p in root.rglob("*.png")} == {"L"}
    return root


def _predictions(images: Path, *model: str) -> list[dict]:
    out = _invoke("predict", str(images), *model, "--format", "json", "--top-k", "2")
    return json.loads(out)["predictions"]


def test_gray_folder_stays_one_channel_through_every_command(gray_folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    printed = _invoke("preprocess", "-i", str(gray_folder), "-o", str(data), "--size", "16", "--val-split", "0.2",
                      "--test-split", "0.2", "--workers", "1")
    assert "1 channel (gray)" in printed
    stats = json.loads((data / "rgb_val.json").read_text())
    assert stats["channels"] == 1 and len(stats["mean"]) == len(stats["std"]) == 1 and "L" in stats
    written = sorted(data.glob("train/*.jpg"))
    assert written and {Image.open(p).mode for p in written} == {"L"}
    source = open_source(str(data))
    assert source.channels == 1 and source.split("train").load(0)[0].shape[2] == 1

    run = tmp_path / "run"
    _invoke("train", "--data", str(data), "--arch", "resnet20", "--epochs", "1", "--batch-size", "4",
            "--max-steps", "2", "--device", "cpu", "--workers", "0", "--output", str(run),
            "--logger", "csv")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["arch"]["in_channels"] == 1 and ckpt["model"]["conv1.weight"].shape[1] == 1
    assert len(ckpt["normalization"]["mean"]) == 1

    assert "top-1" in _invoke("test", str(run), "--device", "cpu")
    _invoke("export", str(run), "--format", "onnx", "--output", str(tmp_path / "deploy"))
    card = json.loads(next((tmp_path / "deploy").glob("*.json")).read_text())
    assert card["input"]["channels"] == 1
    model = onnx.load(str(tmp_path / "deploy" / "model.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 1

    # predict reads the original PNGs (and would read colour files) into the network's one channel
    by_checkpoint = _predictions(gray_folder / "c1", "--checkpoint", str(run))
    by_onnx = _predictions(gray_folder / "c1", "--model", str(tmp_path / "deploy" / "model.onnx"))
    assert len(by_checkpoint) == 10
    assert [p["top"][0]["class"] for p in by_onnx] == [p["top"][0]["class"] for p in by_checkpoint]
    np.testing.assert_allclose([p["top"][0]["probability"] for p in by_onnx],
                               [p["top"][0]["probability"] for p in by_checkpoint], atol=1e-4)


@pytest.mark.parametrize(("channels", "expected"), [("auto", 3), ("1", 1), ("3", 3)])
def test_channels_option_on_a_folder_mixing_gray_and_colour(tmp_path: Path, channels: str, expected: int) -> None:
    root = write_images(tmp_path / "photos", classes=2, per_class=4, size=12, channels=1)
    colour = np.full((12, 12, 3), (200, 30, 30), dtype=np.uint8)
    Image.fromarray(colour).save(root / "c0" / "red.png")  # one colour file: auto cannot keep one channel
    data = tmp_path / "data"
    _invoke("preprocess", "-i", str(root), "-o", str(data), "--size", "12", "--workers", "1", "--channels", channels)
    report = json.loads((data / "report.json").read_text())
    assert report["channels"] == expected
    assert {Image.open(p).mode for p in data.glob("*/*.jpg")} == {"L" if expected == 1 else "RGB"}
    stats = json.loads((data / "rgb_val.json").read_text())
    assert len(stats["mean"]) == expected
    source = open_source(str(data))
    assert source.channels == expected
    assert all(source.split(s).load(i)[0].shape[2] == expected for s in source.splits()
               for i in range(len(source.split(s))))
    # the raw folder follows the same rule: through the header check (twice: the second from its cache) or without
    for check_images in (True, True, False):
        raw = open_source(str(root), channels=channels, check_images=check_images)
        assert raw.channels == len(raw.mean) == expected
        assert {raw.split(s).load(i)[0].shape[2] for s in raw.splits() for i in range(len(raw.split(s)))} == {expected}


def test_training_on_the_raw_gray_folder_builds_the_one_channel_network(gray_folder: Path, tmp_path: Path) -> None:
    # was a 3-channel network: preprocess and a raw folder judged channels by different rules
    assert open_source(str(gray_folder)).channels == 1
    run = tmp_path / "run"
    _invoke("train", "--data", str(gray_folder), "--arch", "resnet20", "--epochs", "1", "--batch-size", "4",
            "--max-steps", "1", "--image-size", "16", "--device", "cpu", "--workers", "0", "--output", str(run),
            "--logger", "csv")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["arch"]["in_channels"] == 1 and len(ckpt["normalization"]["mean"]) == 1
    colour = tmp_path / "forced"
    _invoke("train", "--data", str(gray_folder), "--data-option", "channels=3", "--arch", "resnet20", "--epochs", "1",
            "--batch-size", "4", "--max-steps", "1", "--image-size", "16", "--device", "cpu", "--workers", "0",
            "--output", str(colour), "--logger", "csv")
    assert load_checkpoint(colour / "checkpoints" / "last.pt")["arch"]["in_channels"] == 3
    result = runner.invoke(app, ["train", "--data", str(gray_folder), "--data-option", "channels=2",
                                 "--arch", "resnet20", "--epochs", "1", "--output", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "channels must be 1, 3 or auto, got '2'" in result.output


def test_channels_option_refuses_other_values(gray_folder: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["preprocess", "-i", str(gray_folder), "-o", str(tmp_path / "d"), "--channels", "2"])
    assert result.exit_code == 2 and "--channels must be 1, 3 or auto, got '2'" in result.output
