"""`resnetcli lr-find`: the learning-rate range test on a tiny image folder."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pytest
from helpers_train import write_images
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine.config import resolve_light
from resnetcli.engine.lr_find import DIVERGE, lr_find, steepest, sweep_lr, write_outputs

TINY = {"arch": "resnet20", "batch_size": 4, "workers": 0, "device": "cpu", "seed": 1}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("lrfind") / "data", per_class=4)


def test_the_sweep_is_exponential_from_min_to_max() -> None:
    lrs = [sweep_lr(i, 5, 1e-4, 1.0) for i in range(5)]
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_the_suggestion_is_where_the_smoothed_loss_falls_fastest_against_log_lr() -> None:
    lrs = [10.0 ** (k / 4) for k in range(-24, 1)]  # 1e-6 .. 1, 25 points
    losses = [2.0 - (0.6 if lr > 1e-3 else 0.0) - 0.01 * math.log10(lr) for lr in lrs]  # one cliff after 1e-3
    assert steepest(lrs, losses) == pytest.approx(1e-3)
    assert steepest([1e-3], [1.0]) is None


def test_a_gentle_sweep_takes_every_step_and_suggests_a_rate_inside_it(data: Path, tmp_path: Path) -> None:
    config = resolve_light(None, {**TINY, "data": str(data)})
    result = lr_find(config, steps=8, min_lr=1e-5, max_lr=1e-3)
    assert result.stopped is None
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) == 8
    assert result.lrs[0] == pytest.approx(1e-5) and result.lrs[-1] == pytest.approx(1e-3)
    assert result.suggestion is not None and 1e-5 <= result.suggestion <= 1e-3
    paths = write_outputs(result, tmp_path / "kept")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [float(r["lr"]) for r in rows] == pytest.approx(result.lrs)
    assert paths["plot"].stat().st_size > 0


def test_the_sweep_stops_when_the_loss_diverges(data: Path) -> None:
    config = resolve_light(None, {**TINY, "data": str(data), "optimizer": "adam"})
    result = lr_find(config, steps=30, min_lr=0.1, max_lr=1000.0)
    assert result.stopped is not None and len(result.lrs) < 30
    if "diverged" in result.stopped:
        assert result.smoothed[-1] > DIVERGE * min(result.smoothed)
    assert result.suggestion is None or 0.1 <= result.suggestion <= 1000.0


def test_lr_find_leaves_nothing_behind_unless_asked(data: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, ["lr-find", "-d", str(data), "-a", "resnet20", "-b", "4", "-j", "0",
                                      "--device", "cpu", "--steps", "6", "--min-lr", "1e-4", "--max-lr", "1e-2"])
    assert result.exit_code == 0, result.output
    assert "over 6 of 6 steps" in result.stdout and "suggested lr: " in result.stdout
    assert "wrote" not in result.stdout
    assert os.listdir(work) == []  # no runs/, no plot


def test_a_bad_range_is_one_error_line(data: Path) -> None:
    from helpers_cli import one_error_line

    result = CliRunner().invoke(app, ["lr-find", "-d", str(data), "-a", "resnet20", "--min-lr", "1", "--max-lr",
                                      "0.1"])
    assert "--min-lr (1.0) must be positive and below --max-lr (0.1)" in one_error_line(result, 2)


def test_lr_find_takes_trains_data_model_optimizer_augmentation_and_speed_flags() -> None:
    import typer

    from resnetcli.commands.lr_find import _PANELS, lr_find_command
    from resnetcli.commands.train import train_command

    both = typer.Typer()
    both.command("train")(train_command)
    both.command("lr-find")(lr_find_command)
    group = typer.main.get_command(both)
    ctx = typer.Context(group)
    train, lr_find_cmd = group.get_command(ctx, "train"), group.get_command(ctx, "lr-find")
    shared = {opt for p in train.params if getattr(p, "rich_help_panel", None) in _PANELS for opt in p.opts}
    taken = {opt for p in lr_find_cmd.params for opt in p.opts}
    assert shared - taken == {"--val-split", "--scheduler", "--sched-option", "--epochs", "-e", "--lr",
                              "--warmup-epochs", "--compile"}
    assert {"--cutmix", "--opt-option", "--augment", "--batch-size", "--config", "--seed"} <= taken


def test_the_written_paths_are_printed_inert(data: Path, tmp_path: Path) -> None:
    kept = tmp_path / "k\x1b[31m[red]x"
    result = CliRunner().invoke(app, ["lr-find", "-d", str(data), "-a", "resnet20", "-b", "4", "-j", "0",
                                      "--device", "cpu", "--steps", "2", "-o", str(kept)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert f"wrote {tmp_path}/k\\x1b[31m[red]x/lr_find.csv" in result.stdout, result.stdout


def test_train_settings_the_sweep_does_not_apply_are_refused_from_a_config_file(data: Path, tmp_path: Path) -> None:
    from helpers_cli import one_error_line

    config = tmp_path / "finetune.yaml"
    config.write_text("freeze: [stem]\naccumulate: 2\n")
    result = CliRunner().invoke(app, ["lr-find", "-d", str(data), "-a", "resnet20", "-b", "4", "-j", "0",
                                      "--device", "cpu", "--config", str(config)])
    assert "lr-find does not apply freeze, accumulate (set in the --config file)" in one_error_line(result, 2)
