"""resnetcli/inference: one forward path and one metric implementation for train, test and predict."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_evaluate import TrainedRun, train_once, write_tree
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.inference.metrics import Tally, compute_metrics, topk_for

runner = CliRunner()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_once(tmp_path_factory)


def test_tally_and_compute_metrics_agree_in_percent() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=gen)
    targets = torch.randint(0, 7, (50,), generator=gen)
    tally = Tally()
    for part in range(0, 50, 16):  # batch by batch, as validation does
        tally.update(logits[part:part + 16], targets[part:part + 16])
    summed = tally.result()
    probs = torch.softmax(logits, 1).numpy()
    loss = float(torch.nn.functional.cross_entropy(logits, targets))
    full = compute_metrics(probs, targets.numpy(), [str(i) for i in range(7)], loss)
    assert summed["k"] == full["k"] == 5 and summed["samples"] == 50
    assert summed["top1"] == pytest.approx(full["top1"]) and summed["topk"] == pytest.approx(full["topk"])
    assert summed["loss"] == pytest.approx(loss)
    assert full["top1"] == pytest.approx(100.0 * float((logits.argmax(1) == targets).float().mean()))
    assert [topk_for(n) for n in (1, 4, 5, 1000)] == [1, 4, 5, 5]


def test_four_classes_are_reported_as_top_4_by_train_and_test(tmp_path: Path) -> None:
    data = write_tree(tmp_path / "images", classes=("a", "b", "c", "d"))
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train", "--data", str(data), "--arch", "cifar_resnet", "--arch-option", "depth=8", "--arch-option",
        "width=4", "--image-size", "16", "--epochs", "1", "--batch-size", "8", "--workers", "0", "--device", "cpu",
        "--output", str(run)])
    assert result.exit_code == 0, result.output
    epoch_lines = [line for line in (run / "train.log").read_text().splitlines() if "val acc" in line]
    assert epoch_lines and all("top-4" in line and "top-5" not in line for line in epoch_lines), epoch_lines
    result = runner.invoke(app, ["test", str(run), "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "top-4" in result.output and "top-5" not in result.output
    metrics = json.loads((run / "eval_test" / "metrics.json").read_text())
    assert metrics["k"] == 4 and metrics["topk"] == 100.0  # every class is among the top 4 of 4


def test_predict_and_test_give_the_same_probabilities(trained: TrainedRun, tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(trained.run), "--output", str(tmp_path / "eval"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "eval" / "predictions.csv", newline="") as fh:
        tested = {row["ident"]: row for row in csv.DictReader(fh)}
    result = runner.invoke(app, ["predict", str(trained.data / "test"), "--checkpoint", str(trained.last),
                                 "--format", "csv", "--batch-size", "5"])
    assert result.exit_code == 0, result.output
    predicted = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(predicted) == len(tested) > 0
    for row in predicted:
        ident = Path(row["image"]).relative_to(trained.data).as_posix()
        for rank in (1, 2, 3):
            assert row[f"top{rank}_class"] == tested[ident][f"top{rank}_class"], ident
            assert row[f"top{rank}_prob"] == tested[ident][f"top{rank}_prob"], ident  # same 6 decimals
    assert len({row["top1_prob"] for row in predicted}) > 1  # not a constant model: the check means something
    assert np.isfinite([float(r["top1_prob"]) for r in predicted]).all()
