"""Holding images out for validation (data.holdout, Source.held_out and give_back): said, counted, never wasted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image_folder

from resnetcli.data import ArraySplit, Source, hold_out, open_source
from resnetcli.engine.data import open_training_data


@pytest.fixture
def train_test(tmp_path: Path) -> Path:
    """A raw folder already split on disk as train/ (2 x 10 images) and test/ (2 x 3), with no val/."""
    make_image_folder(tmp_path / "data" / "train", ["a", "b"], 10, 12)
    make_image_folder(tmp_path / "data" / "test", ["a", "b"], 3, 12, seed=1)
    return tmp_path / "data"


def test_a_held_out_split_says_how_many_and_why(train_test: Path) -> None:
    source = open_source(train_test)
    assert source.counts() == {"train": 16, "val": 4, "test": 6}
    held = source.held_out["val"]
    assert (held.parent, held.count) == ("train", 4)
    assert "val_split=0.2" in held.why and "no val/ folder" in held.why and "seed 0" in held.why
    assert source.describe("val").startswith("4 val (held out of train: val_split=0.2")
    assert source.describe("test") == "6 test (test/)" and "test" not in source.held_out
    assert source.describe("train") == "16 train (train/)"


@pytest.mark.parametrize("seed", ["abc", 1.5, True, None])
def test_a_seed_that_is_not_a_whole_number_is_one_usage_line(train_test: Path, seed: object) -> None:
    from resnetcli.errors import UsageError

    with pytest.raises(UsageError, match=f"seed must be a whole number, got {seed!r}"):
        open_source(train_test, seed=seed)
    make_image_folder(train_test / "val", ["a", "b"], 2, 12, seed=2)  # nothing held out now: still refused
    with pytest.raises(UsageError, match="seed must be a whole number"):
        open_source(train_test, seed=seed)
    assert open_source(train_test, seed=np.int64(3)).counts() == open_source(train_test, seed=3).counts()


def test_val_split_none_trains_on_every_train_image(train_test: Path) -> None:
    none = open_training_data(str(train_test), {}, "none")
    assert len(none.train) == 20 and none.val is None  # was 16: 4 held out for a validation nobody ran
    assert "val" not in none.source.splits() and not none.source.held_out
    assert none.source.describe("train") == "20 train (train/)"
    on_test = open_training_data(str(train_test), {}, "test")  # validating on test: nothing to hold out either
    assert len(on_test.train) == 20 and on_test.val_name == "test"
    auto = open_training_data(str(train_test), {}, "auto")
    assert len(auto.train) == 16 and auto.val_name == "val" and auto.source.held_out["val"].count == 4
    # the images given back are exactly the ones held out: train is the whole train/ folder again
    every = {none.train.ident(i) for i in range(len(none.train))}
    assert every == {auto.train.ident(i) for i in range(16)} | {auto.val.ident(i) for i in range(4)}


def test_a_held_out_test_split_is_never_given_back(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "flat", 2, 10, 12)
    source = open_source(tmp_path / "flat", val_split=0.2, test_split=0.2)
    assert source.counts() == {"train": 12, "val": 4, "test": 4}
    back = source.give_back(None)
    assert back.counts() == {"train": 16, "test": 4}  # test stays apart: `resnetcli test` must not score trained images
    assert source.counts() == {"train": 12, "val": 4, "test": 4}  # the original is unchanged


def test_hold_out_is_stratified_seeded_and_recorded() -> None:
    labels = [c for c in range(4) for _ in range(10)]
    whole = ArraySplit(np.zeros((40, 2, 2, 1), np.uint8), labels)
    splits, held = hold_out(whole, {"val": 0.25}, seed=3, why="val_split=0.25")
    assert [len(splits[n]) for n in ("train", "val")] == [30, 10]
    assert sorted(splits["val"].labels.count(c) for c in range(4)) == [2, 2, 3, 3]  # stratified: 2.5 a class
    assert hold_out(whole, {"val": 0.25}, seed=3, why="-")[0]["val"].indices == splits["val"].indices  # seeded
    assert held[0].count == 10 and held[0].why == "val_split=0.25, seed 3"
    assert hold_out(whole, {"val": 0.0}, seed=3, why="-") == ({"train": whole}, [])
    source = Source(name="x", root=".", classes=list("abcd"), splits=splits, channels=1, held_out=held)
    assert source.give_back(None).split("train") is whole  # everything back: the original split itself


def test_array_and_processed_sources_record_what_they_hold_out(tmp_path: Path) -> None:
    from test_sources import write_cifar10_py

    write_cifar10_py(tmp_path, per_batch=10)
    cifar = open_source("cifar10", root=tmp_path, val_split=0.2)
    assert cifar.held_out["val"].count == 10 and "val_split=0.2" in cifar.held_out["val"].why
    assert not open_source("cifar10", root=tmp_path).held_out
    assert cifar.describe("train") == "40 train (data_batch_1..5)" and cifar.describe("test") == "10 test (test_batch)"


def test_test_refuses_a_split_that_training_gave_back_to_train(train_test: Path, tmp_path: Path) -> None:
    """After `train --val-split none` the held-out val images were trained on: reopening the data would hold
    them out again, so `test --split val` would score memory. The checkpoint records it; test refuses."""
    from helpers_cli import one_error_line
    from helpers_train import run_engine
    from typer.testing import CliRunner

    from resnetcli.cli import app
    from resnetcli.engine.checkpoint import load_checkpoint

    run = tmp_path / "run"
    run_engine(train_test, run, val_split="none", epochs=1, max_steps=1)
    last = run / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["data"]["trained_on"] == ["train", "val"]
    runner = CliRunner()
    line = one_error_line(runner.invoke(app, ["test", str(run), "--split", "val"]), 2)
    assert str(last) in line and "trained on the val split" in line and "--val-split none" in line
    scored = runner.invoke(app, ["test", str(run), "--output", str(tmp_path / "eval")])  # test/ was never trained on
    assert scored.exit_code == 0, scored.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert (metrics["split"], metrics["samples"]) == ("test", 6)
