"""README examples whose flags no other test runs: preprocess --test-input, train --name/--aug-option/
--channels-last, report --open. Tiny data, one step."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers_train import write_images
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.options import load_yaml

runner = CliRunner()


def test_preprocess_test_input_becomes_the_test_split_and_no_training_image_leaks_into_it(tmp_path: Path) -> None:
    train, test = write_images(tmp_path / "a", per_class=6), write_images(tmp_path / "b", per_class=2, seed=1)
    out = tmp_path / "out"
    result = runner.invoke(app, ["preprocess", "-i", str(train), "--test-input", str(test), "-o", str(out),
                                 "--size", "16", "--workers", "1"])
    assert result.exit_code == 0, result.output
    with (out / "test.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["class_id"]) for r in rows) == [0, 0, 1, 1, 2, 2]  # exactly the --test-input tree
    counts = load_yaml((out / "report.json").read_text())["written_per_split"]
    assert counts == {"train": 14, "val": 4, "test": 6}  # --input's 18 images all in train + val


def test_train_name_aug_option_and_channels_last_then_report_open(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_images(tmp_path / "data", per_class=4)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "-d", str(data), "-a", "resnet20", "-e", "1", "-b", "4", "-j", "0",
                                 "--device", "cpu", "--max-steps", "1", "--image-size", "16", "--augment", "cifar",
                                 "--aug-option", "padding=2", "--channels-last", "--name", "plain"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "plain"  # --name: runs/<name>
    config = load_yaml((run / "config.yaml").read_text())
    assert config["aug_options"] == {"padding": 2} and config["channels_last"] is True
    assert (run / "checkpoints" / "last.pt").is_file()

    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    result = runner.invoke(app, ["report", "--open"])  # the latest run under runs/
    assert result.exit_code == 0, result.output
    assert opened == [(run / "report.html").resolve().as_uri()] and (run / "report.html").is_file()
