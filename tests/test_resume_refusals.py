"""`train --resume` with a checkpoint that cannot continue this run: one error line, exit 4, never a traceback
(and never a crash an epoch later)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers_cli import one_error_line
from helpers_train import run_engine, write_images
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine.checkpoint import load_checkpoint, save_checkpoint
from resnetcli.runs import RunLayout

runner = CliRunner()
QUIET = ["--workers", "0", "--device", "cpu", "--log-level", "WARNING"]


@pytest.fixture(scope="module")
def cosine_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume_refusals")
    data = write_images(root / "data", classes=2, per_class=4, size=8)
    run = root / "run"
    run_engine(data, run, arch="cifar_resnet", arch_options={"depth": 8, "width": 2}, image_size=8,
               scheduler="cosine", epochs=2, amp=False)
    return run


def _resume(checkpoint: Path, output: Path, *extra: str) -> str:
    result = runner.invoke(app, ["train", "--resume", str(checkpoint), "--output", str(output), *QUIET, *extra])
    return one_error_line(result, 4)


def _crafted(run: Path, tmp_path: Path, change: dict) -> Path:
    state = load_checkpoint(RunLayout(run).last)
    state.update(change(state) if callable(change) else change)
    return save_checkpoint(state, tmp_path / "crafted.pt")


def test_another_scheduler_on_resume_is_refused(cosine_run: Path, tmp_path: Path) -> None:
    line = _resume(RunLayout(cosine_run).last, tmp_path / "out", "--scheduler", "step")
    assert "scheduler 'cosine' -> 'step'" in line


def test_a_checkpoint_holding_another_schedulers_state_is_refused(cosine_run: Path, tmp_path: Path) -> None:
    def step_lr_state(state: dict) -> dict:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        foreign = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1).state_dict()
        return {"scheduler": {**state["scheduler"], "scheduler": foreign}}

    line = _resume(_crafted(cosine_run, tmp_path, step_lr_state), tmp_path / "out")
    assert "scheduler state is not a" in line and "CosineAnnealing" in line


def test_weights_of_the_wrong_shape_are_refused(cosine_run: Path, tmp_path: Path) -> None:
    def widened(state: dict) -> dict:
        model = dict(state["model"])
        key = next(k for k, v in model.items() if v.ndim == 4)  # the first convolution
        model[key] = torch.zeros(model[key].shape[0] + 1, *model[key].shape[1:])
        return {"model": model}

    line = _resume(_crafted(cosine_run, tmp_path, widened), tmp_path / "out")
    assert "wrong shape" in line


def test_another_data_path_on_resume_is_refused(cosine_run: Path, tmp_path: Path) -> None:
    """The in-memory path augments with its own generator (engine/memory.py): switching paths mid-run would
    not continue the run exactly."""
    assert load_checkpoint(RunLayout(cosine_run).last)["config"]["in_memory"] is True  # auto decided, recorded
    line = _resume(RunLayout(cosine_run).last, tmp_path / "out", "--no-in-memory")
    assert "in_memory True -> False" in line


def test_a_run_on_the_in_memory_path_that_no_longer_fits_says_what_can_be_done(
        cosine_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path is the run's own (a resume may not change it): the line must not tell the user to drop a flag
    they never typed and that resume would then refuse."""
    import resnetcli.engine.memory

    monkeypatch.setattr(resnetcli.engine.memory, "available_memory", lambda: 1024)  # a machine with 1 kB free
    result = runner.invoke(app, ["train", "--resume", str(RunLayout(cosine_run).last), "--output",
                                 str(tmp_path / "out"), "--epochs", "3", *QUIET])
    line = one_error_line(result, 2)
    assert "this run trained on the in-memory path, which it cannot use here" in line
    assert "--pretrained" in line and "drop --in-memory" not in line
    # `--resume auto` that finds no run starts one: then --in-memory is the user's own flag, and dropping it helps
    monkeypatch.chdir(tmp_path)
    data = RunLayout(cosine_run).run_dir.parent / "data"
    result = runner.invoke(app, ["train", "--data", str(data), "--arch", "cifar_resnet", "--image-size", "8",
                                 "--batch-size", "2", "--resume", "auto", "--in-memory", "--output",
                                 str(tmp_path / "new"), *QUIET])
    assert "drop --in-memory" in one_error_line(result, 2)


def test_a_resume_with_epochs_below_those_done_trains_nothing_whatever_the_scheduler(tmp_path: Path) -> None:
    """OneCycle refuses to be stepped past its total: the schedule must not be replayed for a smaller --epochs."""
    data = write_images(tmp_path / "data", classes=2, per_class=4, size=8)
    run_engine(data, tmp_path / "run", arch="cifar_resnet", arch_options={"depth": 8, "width": 2}, image_size=8,
               scheduler="onecycle", epochs=2, amp=False)
    config = RunLayout(tmp_path / "run").config.read_text()
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--epochs", "1", *QUIET])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(RunLayout(tmp_path / "run").last)["epoch"] == 2
    # nothing trained, nothing rewritten: config.yaml still plans the 2 epochs done (`runs` said 2/1)
    assert RunLayout(tmp_path / "run").config.read_text() == config
    # resumed into another folder, nothing to train either: that folder still says what it is
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--epochs", "1", "--output",
                                 str(tmp_path / "elsewhere"), *QUIET])
    assert result.exit_code == 0, result.output
    assert RunLayout(tmp_path / "elsewhere").config.is_file()


def test_a_resume_without_the_max_steps_it_was_trained_with_rebuilds_its_schedule(tmp_path: Path) -> None:
    """--max-steps is per invocation: the resumed epochs are whole, and the schedule is the one of a run begun
    with whole epochs (the checkpoint's OneCycle, built for 1 step per epoch, failed mid-epoch)."""
    data = write_images(tmp_path / "data", classes=2, per_class=8, size=8)  # 3 batches per epoch
    flags = {"arch": "cifar_resnet", "arch_options": {"depth": 8, "width": 2}, "image_size": 8,
             "scheduler": "onecycle", "epochs": 2, "amp": False, "checkpoint_every": 1}
    run_engine(data, tmp_path / "short", max_steps=1, **flags)
    run_engine(data, tmp_path / "whole", max_steps=None, **flags)
    epoch_1 = RunLayout(tmp_path / "short").epoch(1)
    result = runner.invoke(app, ["train", "--resume", str(epoch_1), "--output", str(tmp_path / "resumed"), *QUIET])
    assert result.exit_code == 0, result.output
    resumed, whole = (load_checkpoint(RunLayout(tmp_path / name).last) for name in ("resumed", "whole"))
    assert resumed["metrics"]["lr"] == pytest.approx(whole["metrics"]["lr"])  # epoch 2 starts where it would
    assert resumed["global_step"] == 1 + whole["global_step"] // 2
