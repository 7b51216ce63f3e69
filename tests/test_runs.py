"""resnetcli/runs.py: the run-folder layout and the one "latest run" rule every command uses."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers_cli import one_error_line
from helpers_evaluate import TrainedRun, train_once
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine.config import TrainConfig
from resnetcli.engine.resume import find_resume
from resnetcli.errors import CheckpointError, UsageError
from resnetcli.runs import RunLayout, find_checkpoint, latest_run, run_dir_of

runner = CliRunner()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_once(tmp_path_factory)


def _fake_run(runs: Path, name: str, mtime: int, *names: str) -> Path:
    for n in names or ("last.pt",):
        path = RunLayout(runs / name).checkpoints / n
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        os.utime(path, (mtime, mtime))
    return runs / name


def test_layout_names_every_file_of_a_run(tmp_path: Path) -> None:
    run = RunLayout(tmp_path / "r")
    assert [p.relative_to(tmp_path / "r").as_posix() for p in (
        run.config, run.metrics_csv, run.metrics_jsonl, run.log, run.plot, run.tensorboard, run.last, run.best,
        run.epoch(7), run.eval_dir("test"))] == [
        "config.yaml", "metrics.csv", "metrics.jsonl", "train.log", "plot.png", "tensorboard",
        "checkpoints/last.pt", "checkpoints/best.pt", "checkpoints/epoch_007.pt", "eval_test"]
    assert run_dir_of(run.best) == run.run_dir
    assert run_dir_of(tmp_path / "loose.pt") == tmp_path


def test_latest_run_is_the_newest_last_pt_one_or_two_levels_down(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert latest_run(runs) is None  # no folder yet
    older = _fake_run(runs, "resnet20-1", 1_000_000)
    nested = _fake_run(runs, "demo/run", 1_000_001)  # what `make demo` writes
    assert latest_run(runs) == nested
    os.utime(RunLayout(older).last, (2_000_000, 2_000_000))
    assert latest_run(runs) == older
    # a run with only a newer best.pt (or a checkpoint three levels down) is not "the latest run"
    _fake_run(runs, "no-last", 3_000_000, "best.pt")
    _fake_run(runs, "a/b/c", 3_000_000)
    assert latest_run(runs) == older


def test_train_resume_auto_test_and_predict_agree_on_the_latest_run(
    trained: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(trained.run, runs / "old")
    shutil.copytree(trained.run, runs / "demo" / "run")  # nested, as after `make demo`, and newer
    os.utime(RunLayout(runs / "old").last, (1_000_000, 1_000_000))
    monkeypatch.chdir(tmp_path)
    expected = RunLayout(Path("runs") / "demo" / "run").last
    assert find_resume(TrainConfig(resume="auto", runs_dir="runs")) == expected
    assert find_checkpoint(None, "last", "runs") == expected
    result = runner.invoke(app, ["test", "--workers", "0", "--data", str(trained.data)])
    assert result.exit_code == 0, result.output
    assert json.loads((runs / "demo" / "run" / "eval_test" / "metrics.json").read_text())["checkpoint"] == str(expected)
    image = trained.data / "test" / "red" / "0.png"
    result = runner.invoke(app, ["predict", str(image), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoint"] == str(expected)


def test_find_checkpoint_refusals(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "runs", "r", 1_000_000)
    assert find_checkpoint(run) == RunLayout(run).last
    assert find_checkpoint(RunLayout(run).last, "best") == RunLayout(run).last  # a file is taken as given
    with pytest.raises(CheckpointError, match=r"best.pt does not exist; it has: last.pt \(best.pt appears"):
        find_checkpoint(run, "best")
    with pytest.raises(UsageError, match="--which must be 'last' or 'best'"):
        find_checkpoint(run, "first")
    with pytest.raises(CheckpointError, match="no trained run found under"):
        find_checkpoint(None, "last", tmp_path / "empty")
    line = one_error_line(runner.invoke(app, ["test", str(tmp_path / "runs" / "nope")]), 4)
    assert "run folder" in line and "does not exist" in line
    for argv in (["test", "--checkpoint"], ["predict", str(tmp_path), "--checkpoint"], ["train", "--resume"]):
        line = one_error_line(runner.invoke(app, [*argv, str(tmp_path / "nope")]), 4)  # named by its option
        assert f"{argv[-1]} (a checkpoint file or run folder) {tmp_path / 'nope'} does not exist" in line, line
    for name in ("gone.pt", "weights.pth"):  # a missing file named like a checkpoint is called one
        with pytest.raises(CheckpointError, match=rf"^checkpoint {tmp_path / name} does not exist"):
            find_checkpoint(tmp_path / name)
