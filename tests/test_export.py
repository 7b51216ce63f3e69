"""`resnetcli export`: every format runs back equal to PyTorch on the test images; `predict --model` agrees."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from helpers_evaluate import TrainedRun, train_once
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.export import parse_formats
from resnetcli.inference.data import EvalDataset, open_data
from resnetcli.inference.restore import eval_pipeline, restore
from resnetcli.models import zoo
from resnetcli.pretrained import load_pretrained

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True)
class Export:
    trained: TrainedRun
    run: Path  # a copy of the trained run, tested with `resnetcli test` so the card has test metrics
    out: Path
    output: str


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Export:
    trained = train_once(tmp_path_factory)
    run = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(trained.run, run)
    result = runner.invoke(app, ["test", str(run), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    out = run / "deploy"
    result = runner.invoke(app, ["export", str(run), "--format", "all", "--output", str(out)])
    assert result.exit_code == 0, result.output
    return Export(trained, run, out, result.output)


def _test_images(trained: TrainedRun) -> tuple[torch.Tensor, torch.nn.Module, list[str]]:
    restored = restore(trained.last)
    source = open_data(restored, None)
    dataset = EvalDataset(source.split("test"), eval_pipeline(restored), restored.channels,
                          list(range(len(source.classes))))
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    return images, restored.model, restored.classes


def test_export_prints_each_check_and_writes_cards(exported: Export) -> None:
    lines = [line for line in exported.output.splitlines() if "max abs diff" in line]
    assert [line.split(":")[0] for line in lines] == ["onnx", "torchscript", "pt2", "safetensors"]
    assert "onnxruntime vs PyTorch on 8 test images" in lines[0]
    restored = restore(exported.run / "checkpoints" / "last.pt")
    for name in ("model.onnx", "model.torchscript.pt", "model.pt2", "model.safetensors"):
        card = json.loads((exported.out / f"{name}.json").read_text())
        assert card["file"]["name"] == name
        assert card["classes"] == restored.classes
        assert card["architecture"]["name"] == "cifar_resnet"
        assert card["architecture"]["options"] == {"depth": 8, "width": 4}
        assert card["input"]["channels"] == 3 and card["input"]["height"] == 16
        assert card["preprocessing"]["mean"] == list(restored.mean)
        assert card["verification"]["max_abs_diff"] <= 1e-4
        assert card["metrics"]["best_val_top1"] == pytest.approx(restored.state["best_metric"])
        test = json.loads((exported.run / "eval_test" / "metrics.json").read_text())
        assert card["metrics"]["test"]["top1"] == test["top1"]
    assert not list(exported.out.glob(".*"))  # no temporary files left behind


def test_onnx_runs_any_batch_size_equal_to_pytorch(exported: Export) -> None:
    images, model, _ = _test_images(exported.trained)
    session = ort.InferenceSession(str(exported.out / "model.onnx"), providers=["CPUExecutionProvider"])
    (entry,) = session.get_inputs()
    assert isinstance(entry.shape[0], str)  # a named, dynamic batch dimension
    for batch in (images[:1], images[:5], images):
        got = session.run(None, {entry.name: batch.numpy()})[0]
        with torch.inference_mode():
            expected = model(batch).numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_and_torch_export_equal_pytorch(exported: Export) -> None:
    images, model, _ = _test_images(exported.trained)
    with torch.inference_mode():
        expected = model(images[:3])
        scripted = torch.jit.load(str(exported.out / "model.torchscript.pt"))
        torch.testing.assert_close(scripted(images[:3]), expected, rtol=0, atol=1e-4)
        program = torch.export.load(str(exported.out / "model.pt2")).module()
        torch.testing.assert_close(program(images[:3]), expected, rtol=0, atol=1e-4)


def test_safetensors_carries_its_card_into_load_pretrained(exported: Export) -> None:
    restored = restore(exported.trained.last)
    fresh = zoo.cifar_resnet(num_classes=3, depth=8, width=4)
    report = load_pretrained(fresh, exported.out / "model.safetensors", arch="cifar_resnet",
                             classes=restored.classes)
    assert report.head == []  # same classes: the classifier is kept too
    assert report.classes == restored.classes
    assert report.normalization == {"mean": list(restored.mean), "std": list(restored.std)}
    for key, value in restored.model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def _predictions(args: list[str]) -> list[dict]:
    result = runner.invoke(app, ["predict", *args, "--format", "json", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["predictions"]


def test_predict_with_the_onnx_model_gives_the_checkpoint_top_k(exported: Export, tmp_path: Path) -> None:
    images = str(exported.trained.data / "test")
    by_checkpoint = _predictions([images, "--checkpoint", str(exported.trained.last)])
    by_onnx = _predictions([images, "--model", str(exported.out / "model.onnx")])
    assert [p["image"] for p in by_onnx] == [p["image"] for p in by_checkpoint]
    assert len(by_onnx) == 12
    for a, b in zip(by_onnx, by_checkpoint):
        assert [t["class"] for t in a["top"]][:1] == [t["class"] for t in b["top"]][:1]
        np.testing.assert_allclose([t["probability"] for t in a["top"]], [t["probability"] for t in b["top"]],
                                   atol=1e-4)
    # the file alone (card read from its own metadata) predicts the same
    alone = tmp_path / "alone.onnx"
    shutil.copy(exported.out / "model.onnx", alone)
    assert _predictions([images, "--model", str(alone)]) == by_onnx


def test_predict_with_the_onnx_model_and_flip_tta_matches_the_checkpoint(exported: Export) -> None:
    images = str(exported.trained.data / "test")
    by_checkpoint = _predictions([images, "--checkpoint", str(exported.trained.last), "--tta-flip"])
    by_onnx = _predictions([images, "--model", str(exported.out / "model.onnx"), "--tta-flip"])
    plain = _predictions([images, "--model", str(exported.out / "model.onnx")])
    assert by_onnx != plain  # the mirror image changes the probabilities: TTA really ran
    for a, b in zip(by_onnx, by_checkpoint):
        assert a["image"] == b["image"] and a["top"][0]["class"] == b["top"][0]["class"]
        np.testing.assert_allclose([t["probability"] for t in a["top"]], [t["probability"] for t in b["top"]],
                                   atol=1e-4)


def test_predict_model_refusals_are_one_line(exported: Export, tmp_path: Path) -> None:
    images = str(exported.trained.data / "test")
    for args, words in (
        (["--model", str(tmp_path / "none.onnx")], "does not exist"),
        (["--model", str(exported.out / "model.pt2")], "runs exported .onnx files"),
        (["--model", str(exported.out / "model.onnx"), "--checkpoint", str(exported.trained.last)], "not both"),
    ):
        result = runner.invoke(app, ["predict", images, *args])
        assert result.exit_code in (2, 4), result.output
        assert words in result.output and len(result.output.strip().splitlines()) == 1, result.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    result = runner.invoke(app, ["predict", images, "--model", str(junk)])
    assert result.exit_code == 4 and "onnxruntime can load" in result.output


def _tampered(trained: TrainedRun, tmp_path: Path, change: dict) -> Path:
    """A copy of the checkpoint with fields changed, saved without the checks save_checkpoint makes."""
    state = torch.load(trained.last, weights_only=True)
    state.update(change)
    path = tmp_path / "tampered.pt"
    torch.save(state, path)
    return path


def test_export_refuses_non_finite_weights_and_unknown_architectures(exported: Export, tmp_path: Path) -> None:
    state = torch.load(exported.trained.last, weights_only=True)
    weights = dict(state["model"])
    weights["fc.bias"] = torch.full_like(weights["fc.bias"], float("nan"))
    for change, code, words in (
        ({"model": weights}, 4, "NaN"),
        ({"arch": {**state["arch"], "name": "not_installed_net"}}, 4, "not_installed_net"),
    ):
        path = _tampered(exported.trained, tmp_path, change)
        result = runner.invoke(app, ["export", str(path), "--output", str(tmp_path / "out")])
        assert result.exit_code == code, result.output
        assert words in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert not (tmp_path / "out").exists()


def test_a_file_that_disagrees_with_pytorch_is_not_kept(
    exported: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnetcli.export import formats

    real = formats.WRITERS["torchscript"]

    def off_by_a_little(*args: object) -> object:
        forward = real(*args)
        return lambda images: forward(images) + 1e-3

    monkeypatch.setitem(formats.WRITERS, "torchscript", off_by_a_little)
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", str(exported.trained.last), "-f", "torchscript", "-o", str(out)])
    assert result.exit_code == 4, result.output
    assert "disagrees with PyTorch by 1.00e-03 (more than 1e-04)" in result.output
    assert not out.exists() or not any(out.iterdir())  # neither the file, its card, nor a temporary file
    result = runner.invoke(app, ["export", str(exported.trained.last), "-f", "torchscript", "-o", str(out),
                                 "--tolerance", "0.01"])
    assert result.exit_code == 0 and (out / "model.torchscript.pt").is_file(), result.output


def test_a_card_that_cannot_be_written_keeps_the_previous_file_and_card(
    exported: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnetcli.export.card import card_path

    out = tmp_path / "out"
    shutil.copytree(exported.out, out)
    model = out / "model.torchscript.pt"
    before = {path: path.read_bytes() for path in (model, card_path(model))}

    def full_disk(path: object, data: object) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("resnetcli.io.write_json", full_disk)
    result = runner.invoke(app, ["export", str(exported.trained.last), "-f", "torchscript", "-o", str(out)])
    assert result.exit_code == 3, result.output
    assert {path: path.read_bytes() for path in before} == before  # the pair still belongs together
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_bad_formats_are_refused() -> None:
    assert parse_formats("all") == ["onnx", "torchscript", "pt2", "safetensors"]
    assert parse_formats("safetensors,onnx") == ["onnx", "safetensors"]
    result = runner.invoke(app, ["export", "--format", "tflite"])
    assert result.exit_code == 2 and "choose from onnx, torchscript, pt2, safetensors or all" in result.output


@pytest.mark.parametrize("tolerance", ["0", "-1", "nan", "inf"])
def test_a_tolerance_that_is_not_a_positive_finite_number_is_refused(tolerance: str) -> None:
    result = runner.invoke(app, ["export", "--tolerance", tolerance])
    assert result.exit_code == 2, result.output
    assert "--tolerance must be a positive finite number" in result.output


def test_the_check_runs_on_the_test_split_else_on_generated_images(tmp_path_factory: pytest.TempPathFactory,
                                                                  tmp_path: Path) -> None:
    from resnetcli.export import CHECK_IMAGES, check_batch

    trained = train_once(tmp_path_factory)
    restored = restore(trained.last)
    images, described = check_batch(restored, eval_pipeline(restored))
    assert described == f"8 test images of {trained.data}" and images.shape == (8, 3, 16, 16)
    restored.data_spec = str(tmp_path / "moved-away")  # the data is not on this machine
    images, described = check_batch(restored, eval_pipeline(restored))
    assert described.startswith(f"{CHECK_IMAGES} generated images") and images.shape == (CHECK_IMAGES, 3, 16, 16)


@pytest.mark.parametrize(("change", "words"), [
    ({"preprocessing": {"std": [0.2, 0.0, 0.2]}}, "invalid normalization: field 'std.1'"),
    ({"preprocessing": {"mean": [0.5, float("nan"), 0.5]}}, "invalid normalization"),
    ({"preprocessing": {"resize": 8}}, "crop 16 is not between 1 and resize 8"),
    ({"classes": "abc"}, "not a list of class names"),
    ({"classes": ["a", "b"]}, "gives 3 class scores but its model card names 2 classes"),
])
def test_a_crafted_model_card_is_one_line(exported: Export, tmp_path: Path, change: dict, words: str) -> None:
    """predict --model divides by the card's std, crops its crop out of its resize and indexes its classes by the
    file's outputs: each was a traceback (or NaN probabilities) when the card said otherwise."""
    model = tmp_path / "model.onnx"
    shutil.copy(exported.out / "model.onnx", model)
    card = json.loads((exported.out / "model.onnx.json").read_text())
    for key, value in change.items():
        card[key] = {**card[key], **value} if isinstance(value, dict) else value
    (tmp_path / "model.onnx.json").write_text(json.dumps(card))
    result = runner.invoke(app, ["predict", str(exported.trained.data / "test"), "--model", str(model)])
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1, result.output
