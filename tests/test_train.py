"""`resnetcli train`: the acceptance run, config precedence, bad input, mixup and label smoothing."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers_train import run_engine, write_images
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine.bookkeeping import COLUMNS
from resnetcli.engine.checkpoint import load_checkpoint
from resnetcli.engine.loop import mixup_batch, mixup_loss

runner = CliRunner()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("train") / "images", classes=3, per_class=8, size=32)


@pytest.fixture(scope="module")
def processed(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("processed") / "data"
    result = runner.invoke(app, ["preprocess", "-i", str(images), "-o", str(out), "--size", "32", "--workers", "1"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_resnet26_sgd_nesterov_end_to_end_leaves_the_run_folder(processed: Path, tmp_path: Path) -> None:
    """The console script in a fresh interpreter, to its very end (a hang or a traceback at interpreter exit
    would show here, which a fork-server child, leaving through os._exit, would hide)."""
    run = tmp_path / "runs" / "r26"
    cmd = [str(Path(sys.executable).parent / "resnetcli"), "train", "--data", str(processed), "--arch", "resnet26",
           "--optimizer", "sgd-nesterov", "--epochs", "1",
           # tiny data (19 training images of 32 px): a batch that fits, 32 px (a processed folder has no
           # single native size, so resnet26 would otherwise upscale to its 224), no worker processes
           "--batch-size", "8", "--image-size", "32", "--workers", "0", "--output", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "COLUMNS": "250"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best val acc" in proc.stdout and str(run) in proc.stdout  # the rich summary
    assert "epoch=1" in proc.stderr and "val acc=" in proc.stderr and "lr=0]" in proc.stderr  # tqdm postfix
    assert "lr 0.1→0," in proc.stderr  # per-batch cosine: the epoch line gives the rate it ended at

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["arch"] == "resnet26" and config["optimizer"] == "sgd-nesterov" and config["image_size"] == 32
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert tuple(rows[0]) == COLUMNS and [r["epoch"] for r in rows] == ["1"]
    assert 0 <= float(rows[0]["val_acc"]) <= 100 and float(rows[0]["val_top5"]) == 100.0  # 3 classes
    assert rows[0]["val_k"] == "3"  # val_top5 keeps its name; val_k says it is top-3
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1
    log = (run / "train.log").read_text()
    assert "training resnet26" in log and "epoch 1/1" in log
    assert (run / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))

    for name in ("last.pt", "best.pt"):
        state = load_checkpoint(run / "checkpoints" / name)  # weights_only=True
        assert state["epoch"] == 1 and state["best_epoch"] == 1
        assert state["classes"] == ["c0", "c1", "c2"]
        assert state["arch"] == {"name": "resnet26", "num_classes": 3, "in_channels": 3, "options": {}}
        assert len(state["normalization"]["mean"]) == 3 and state["data"]["image_size"] == 32
        assert state["config"]["optimizer"] == "sgd-nesterov" and state["optimizer"]["param_groups"][0]["nesterov"]
        assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
        from resnetcli.registry import get

        model = get("architectures", "resnet26")(num_classes=3)
        model.load_state_dict(state["model"])


def test_yaml_config_then_flags_override(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 0.05\nepochs: 3\nbatch_size: 8\nsched_options: {T_max: 5}\nmixup: 0.2\n")
    result = runner.invoke(app, ["train", "--config", str(cfg), "--lr", "0.02", "--sched-option", "eta_min=1e-5",
                                 "--print-config"])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.stdout)
    assert resolved["lr"] == 0.02 and resolved["epochs"] == 3 and resolved["batch_size"] == 8
    assert resolved["sched_options"] == {"T_max": 5, "eta_min": 1e-5} and resolved["mixup"] == 0.2
    assert resolved["optimizer"] == "sgd"  # untouched default

    recipe = runner.invoke(app, ["train", "--config", "seed002-resnet26-sgd", "--print-config"])
    resolved = yaml.safe_load(recipe.stdout)
    assert resolved["optimizer"] == "sgd-nesterov" and resolved["lr"] == 0.01
    assert resolved["sched_options"] == {"monitor": "val_acc", "factor": 0.5, "patience": 3}


@pytest.mark.parametrize("text, match", [
    ("lrr: 0.1\n", "unknown config key 'lrr' in .*c.yaml \\(did you mean 'lr'\\?\\)"),
    ("epochs: three\n", "config key 'epochs' in .*c.yaml must be int"),
    ("- lr\n", "must be a mapping"),
])
def test_bad_yaml_is_one_usage_line(tmp_path: Path, text: str, match: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    result = runner.invoke(app, ["train", "--config", str(cfg), "--print-config"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    import re

    assert re.search(match, " ".join(result.output.split()))


def test_every_shipped_recipe_resolves() -> None:
    from resnetcli.engine.config import find_config, load_yaml, recipe_names
    from resnetcli.registry import registry

    names = recipe_names()
    assert {"seed002-resnet26-sgd", "seed002-resnet20-adam", "seed000-resnet20", "seed000-se-mxresnet20",
            "cifar-paper", "seed003-cifar100"} <= set(names)
    for name in names:
        values = load_yaml(find_config(name))
        assert values["arch"] in registry("architectures") and values["scheduler"] in registry("schedulers")


@pytest.mark.parametrize("flags, match", [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--lr", "0"], "--lr must be greater than 0"),
    (["--mixup", "0.2", "--batch-size", "1"], "--mixup .* needs --batch-size of at least 2"),
    (["--batch-size", "64"], r"--batch-size 64 is larger than the \d+ training images.*--no-drop-last"),
    (["--optimizer", "adamm"], "unknown optimizer 'adamm'; did you mean adam.* Known: adam, adamw, rmsprop"),
    (["--scheduler", "cosin"], "unknown scheduler 'cosin'; did you mean cosine"),
    (["--arch", "resnet21"], "unknown architecture 'resnet21'"),
    (["--optimizer", "adam", "--momentum", "0.9"], "optimizer 'adam' has no momentum"),
    (["--amp", "--amp-dtype", "fp16"], "fp16 needs a GPU"),
])
def test_impossible_settings_are_refused_before_any_work(images: Path, tmp_path: Path, flags: list[str],
                                                         match: str) -> None:
    out = tmp_path / "run"
    base = ["train", "--data", str(images), "--arch", "resnet20", "--batch-size", "4", "--workers", "0",
            "--device", "cpu", "--output", str(out)]
    result = runner.invoke(app, base + flags)
    assert result.exit_code == 2, result.output
    import re

    assert re.search(match, " ".join(result.output.split())), result.output
    assert "Traceback" not in result.output and not (out / "checkpoints").exists()


def test_label_smoothing_and_mixup_change_the_loss_as_they_should() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    eps = 0.1
    logp = logits.log_softmax(1)
    expected = ((1 - eps) * -logp.gather(1, target[:, None]).squeeze(1) - eps * logp.mean(1)).mean()
    assert torch.allclose(mixup_loss(logits, target, target, 1.0, eps), expected)
    assert torch.allclose(mixup_loss(logits, target, target, 1.0, 0.0), F.cross_entropy(logits, target))

    images = torch.arange(6 * 3 * 2 * 2, dtype=torch.float32).reshape(6, 3, 2, 2)
    rng = np.random.default_rng(0)
    mixed, ta, tb, lam = mixup_batch(images.clone(), target, 0.4, rng, torch.Generator().manual_seed(0))
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    assert lam == pytest.approx(float(np.random.default_rng(0).beta(0.4, 0.4)))
    assert torch.allclose(mixed, lam * images + (1 - lam) * images[perm])
    assert torch.equal(tb, target[perm])
    loss = mixup_loss(logits, ta, tb, lam, 0.0)
    assert torch.allclose(loss, lam * F.cross_entropy(logits, ta) + (1 - lam) * F.cross_entropy(logits, tb))


def test_mixup_and_smoothing_runs_record_different_losses(images: Path, tmp_path: Path) -> None:
    base = run_engine(images, tmp_path / "base", epochs=1, max_steps=2, image_size=16)
    smooth = run_engine(images, tmp_path / "smooth", epochs=1, max_steps=2, image_size=16, label_smoothing=0.3)
    mixed = run_engine(images, tmp_path / "mixup", epochs=1, max_steps=2, image_size=16, mixup=1.0)
    assert smooth.last["train_loss"] != base.last["train_loss"]
    assert mixed.last["train_loss"] != base.last["train_loss"]
    # same seed, same data, same first weights: only the loss differed
    assert base.last["train_acc"] >= 0 and mixed.last["epoch"] == smooth.last["epoch"] == 1


def test_epoch_line_metrics_and_tensorboard_give_the_lr_at_the_end_and_the_speed(tmp_path: Path) -> None:
    """A one-epoch cosine run anneals to 0 during the epoch: the line says so (issue 16), with images/s; the
    first line names every split's size and where it came from; 4 classes are scored top-4, not top-5."""
    root = tmp_path / "data"
    write_images(root / "train", classes=4, per_class=6, size=16)
    write_images(root / "test", classes=4, per_class=2, size=16, seed=1)
    run = tmp_path / "run"
    run_engine(root, run, epochs=1, max_steps=None, scheduler="cosine", tensorboard=True, log_level="INFO",
               data_options={"val_split": 0.25})
    log = (run / "train.log").read_text()
    assert "(18 train (train/), 6 val (held out of train: val_split=0.25" in log and "8 test (test/; unused);" in log
    line = next(x for x in log.splitlines() if "epoch 1/1:" in x)
    assert "lr 0.1→0," in line and "top-4 " in line and "top-5" not in line
    speed = float(line.split(" img/s")[0].rsplit(" ", 1)[1])
    assert speed > 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert float(rows[0]["lr"]) == 0.1 and float(rows[0]["lr_end"]) == 0.0
    assert float(rows[0]["images_per_s"]) > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"lr", "lr_end", "images_per_s"} <= set(events.Tags()["scalars"])
    assert events.Tags()["graph"] is False  # no graph tracing before the first step
    assert events.Scalars("lr_end")[0].value == 0.0


def test_no_validation_split_trains_on_every_image(tmp_path: Path) -> None:
    """With --val-split none nothing is held out: the whole train/ folder is trained on."""
    root = write_images(tmp_path / "data", classes=2, per_class=10, size=16)
    run_engine(root, tmp_path / "run", epochs=1, max_steps=1, val_split="none", log_level="INFO")
    log = (tmp_path / "run" / "train.log").read_text()
    assert "(20 train (data/), no validation;" in log
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["data"]["train_size"] == 20


def test_a_resumed_run_keeps_the_metrics_rows_of_its_epochs_and_drops_the_malformed(tmp_path: Path) -> None:
    from resnetcli.engine.bookkeeping import MetricsLog
    from resnetcli.runs import RunLayout

    layout = RunLayout(tmp_path)
    rows = [{"epoch": 1}, {"epoch": None}, {"epoch": "2"}, [3], {"epoch": 2}, {"epoch": 3}]
    layout.metrics_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    assert MetricsLog(layout, keep_until=2).rows == [{"epoch": 1}, {"epoch": 2}]  # epoch 3 is about to be redone


@pytest.mark.parametrize("flags, tensorboard", [([], False), (["--logger", "csv,tensorboard"], True),
                                                (["--logger", "csv"], False)])
def test_a_logger_flag_over_a_config_that_turned_tensorboard_off(tmp_path: Path, flags: list[str],
                                                                   tensorboard: bool) -> None:
    """`tensorboard: false` (a config file's key) and --logger name the same logger: the flag, typed later, wins."""
    from resnetcli.engine.config import build
    from resnetcli.loggers import logger_names

    cfg = tmp_path / "c.yaml"
    cfg.write_text("tensorboard: false\n")
    result = runner.invoke(app, ["train", "--config", str(cfg), *flags, "--print-config"])
    assert result.exit_code == 0, result.output
    assert ("tensorboard" in logger_names(build(yaml.safe_load(result.stdout)))) is tensorboard
