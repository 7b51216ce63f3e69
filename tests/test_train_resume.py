"""Exact resume, interrupt and NaN paths of `resnetcli train` on a tiny real image folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers_train import interrupt_in_epoch, run_engine, write_images
from typer.testing import CliRunner

import resnetcli.engine.loop as loop
import resnetcli.engine.trainer as trainer
from resnetcli.cli import app
from resnetcli.engine.checkpoint import load_checkpoint
from resnetcli.errors import CheckpointError, TrainingError

#: exercises the per-epoch RNG paths: shuffling, random augmentation, mixup, momentum, a moving schedule
RESUME_FLAGS = {"mixup": 0.4, "augment": "cifar", "scheduler": "cosine", "optimizer": "sgd-nesterov",
                "label_smoothing": 0.1, "max_steps": 3}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("resume") / "images", classes=3, per_class=8, size=16)


@pytest.mark.parametrize("in_memory", [True, False])
def test_resume_after_interrupt_is_exact(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        in_memory: bool) -> None:
    flags = {**RESUME_FLAGS, "in_memory": in_memory}  # both data paths: batch-level and per-sample augmentation
    straight = run_engine(images, tmp_path / "straight", checkpoint_every=1, **flags)
    assert straight.epochs_run == 2
    names = sorted(p.name for p in (tmp_path / "straight" / "checkpoints").glob("*.pt"))
    assert names == ["best.pt", "epoch_001.pt", "epoch_002.pt", "last.pt"]
    assert load_checkpoint(tmp_path / "straight" / "checkpoints" / "epoch_001.pt")["epoch"] == 1

    interrupt_in_epoch(monkeypatch, stop_epoch=2)
    with pytest.raises(KeyboardInterrupt):
        run_engine(images, tmp_path / "split", **flags)
    kept = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert kept["epoch"] == 1  # the partial epoch 2 was not saved over the last complete one
    monkeypatch.undo()

    resumed = run_engine(images, tmp_path / "split", resume="auto", **flags)
    assert resumed.epochs_run == 1
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for key, st in a["optimizer"]["state"].items():
        assert torch.equal(st["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"])
    rows = (tmp_path / "split" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2"]
    assert rows == (tmp_path / "straight" / "metrics.csv").read_text().splitlines()[:1] + rows[1:]


def test_interrupt_in_first_epoch_exits_130_and_leaves_resumable_checkpoint(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_in_epoch(monkeypatch, stop_epoch=1)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", "--data", str(images), "--arch", "resnet20", "--epochs", "1", "--batch-size", "4",
        "--workers", "0", "--device", "cpu", "--output", str(out), "--max-steps", "2",
    ])
    assert result.exit_code == 130, result.output
    assert "resumes exactly" in result.output and "last.pt" in result.output
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["epoch"] == 0 and state["optimizer"] is not None


def test_nan_loss_stops_with_training_error_and_keeps_last_good_checkpoint(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ce = loop.F.cross_entropy
    epochs_seen: list[int] = []
    real_epoch = trainer.train_epoch

    def spy(stepper, batches, *, epoch, **kwargs):  # type: ignore[no-untyped-def]
        epochs_seen.append(epoch)
        return real_epoch(stepper, batches, epoch=epoch, **kwargs)

    def poisoned(logits, target, **kwargs):  # type: ignore[no-untyped-def]
        loss = real_ce(logits, target, **kwargs)
        return loss * float("nan") if epochs_seen[-1] == 2 else loss

    monkeypatch.setattr(trainer, "train_epoch", spy)
    monkeypatch.setattr(loop.F, "cross_entropy", poisoned)
    with pytest.raises(TrainingError, match=r"loss became nan in epoch 2.*epoch 1\) is the last good"):
        run_engine(images, tmp_path / "run", log_every=1)
    monkeypatch.undo()
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_resume_refuses_other_architecture_listing_differences(images: Path, tmp_path: Path) -> None:
    run_engine(images, tmp_path / "run", epochs=1, max_steps=1)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    with pytest.raises(CheckpointError, match=r"architecture resnet20 -> plain20"):
        run_engine(images, tmp_path / "run", resume=str(last), arch="plain20")
    other = write_images(tmp_path / "other", classes=2, per_class=8, size=16)
    with pytest.raises(CheckpointError, match=r"classes differ \(3 -> 2; missing now: c2\)"):
        run_engine(other, tmp_path / "run", resume=str(last))


def _epoch_batches(split, transform, epoch: int, workers: int) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    from resnetcli.engine.data import AugmentedSplit, EpochSampler, make_loader

    sampler = EpochSampler(len(split), rank=0, world=1, seed=5)
    loader = make_loader(AugmentedSplit(split, transform, seed=5), batch_size=4, sampler=sampler,
                         workers=workers, pin_memory=False, drop_last=True)
    sampler.set_epoch(epoch)
    return [x for x, _ in loader]


def test_order_and_augmentation_depend_only_on_seed_and_epoch(images: Path) -> None:
    """What exact resume rests on: a fresh loader replays any epoch, with or without worker processes."""
    from resnetcli.augment import build_pipeline
    from resnetcli.data import open_source

    source = open_source(str(images))
    split = source.split("train")
    tf = build_pipeline("cifar", train=True, image_size=16, mean=source.mean, std=source.std)
    first = _epoch_batches(split, tf, epoch=2, workers=2)
    again = _epoch_batches(split, tf, epoch=2, workers=2)
    other = _epoch_batches(split, tf, epoch=3, workers=2)
    alone = _epoch_batches(split, tf, epoch=2, workers=0)
    assert len(first) == len(split) // 4
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(first, alone, strict=True))  # whatever the worker count


def test_bf16_autocast_and_channels_last_train_on_cpu(images: Path, tmp_path: Path) -> None:
    result = run_engine(images, tmp_path / "run", amp=True, amp_dtype="bf16", channels_last=True, epochs=1,
                        max_steps=1, image_size=16)
    assert result.epochs_run == 1 and torch.isfinite(torch.tensor(result.last["train_loss"]))
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["config"]["amp"] is True and state["config"]["channels_last"] is True


def test_default_run_name_and_resume_auto_picks_the_newest_run(images: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = run_engine(images, None, runs_dir=str(runs), epochs=1, max_steps=1, image_size=16)
    import re

    assert first.run_dir.parent == runs and re.fullmatch(r"resnet20-\d{8}-\d{6}", first.run_dir.name)
    again = run_engine(images, None, runs_dir=str(runs), resume="auto", epochs=2, max_steps=1, image_size=16)
    assert again.run_dir == first.run_dir and again.epochs_run == 1
    assert load_checkpoint(first.run_dir / "checkpoints" / "last.pt")["epoch"] == 2


def _same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a / "checkpoints" / "last.pt"), load_checkpoint(b / "checkpoints" / "last.pt")
    assert sa["epoch"] == sb["epoch"]
    return all(torch.equal(t, sb["model"][k]) for k, t in sa["model"].items())


def test_exact_resume_does_not_depend_on_the_worker_count(images: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The command the Ctrl-C message suggests is enough, with another --workers: augmentation is seeded per
    batch from (seed, epoch, first index), never from a loader worker's id, and the dropout's draws from torch's
    global generator are not disturbed by the loaders."""
    flags = {**RESUME_FLAGS, "max_steps": None, "arch_options": {"drop_rate": 0.3}}
    run_engine(images, tmp_path / "straight", workers=0, **flags)
    interrupt_in_epoch(monkeypatch, stop_epoch=2)
    with pytest.raises(KeyboardInterrupt):
        run_engine(images, tmp_path / "split", workers=0, **flags)
    monkeypatch.undo()
    resumed = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "split"), "--workers", "2",
                                       "--device", "cpu"])
    assert resumed.exit_code == 0, resumed.output
    assert _same_weights(tmp_path / "straight", tmp_path / "split")


@pytest.mark.parametrize("changed, named", [
    ({"lr": 0.05}, "lr 0.1 -> 0.05"),
    ({"sched_options": {"eta_min": 0.01}}, "sched_options {} -> {'eta_min': 0.01}"),
    ({"batch_size": 2, "optimizer": "adam"}, "optimizer 'sgd' -> 'adam'; batch_size 4 -> 2"),
])
def test_resume_refuses_a_changed_optimization_setting_naming_it(images: Path, tmp_path: Path,
                                                                  changed: dict, named: str) -> None:
    run_engine(images, tmp_path / "run", epochs=1, max_steps=1, scheduler="cosine")
    before = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(CheckpointError, match="cannot resume from .*last.pt: it was trained with a different") as e:
        run_engine(images, tmp_path / "run", resume="auto", epochs=2, max_steps=1, scheduler="cosine", **changed)
    assert named in str(e.value)
    assert (tmp_path / "run" / "config.yaml").read_text() == before  # nothing recorded that was not applied
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["epoch"] == 1


@pytest.mark.parametrize("sched", [{"interval": "epoch"}, {"interval": "step"}])
def test_resume_with_more_epochs_trains_on_as_if_started_with_that_total(images: Path, tmp_path: Path,
                                                                        sched: dict) -> None:
    """The schedule is rebuilt for the new total: from the resumed epoch on, the learning rates are those of a
    run begun with it; with a per-epoch schedule (epoch 1 ran at the same rate) the weights are too."""
    flags = {**RESUME_FLAGS, "sched_options": sched}
    run_engine(images, tmp_path / "straight", **{**flags, "epochs": 3})
    run_engine(images, tmp_path / "extended", **{**flags, "epochs": 1})
    more = run_engine(images, tmp_path / "extended", resume="auto", **{**flags, "epochs": 3})
    assert more.epochs_run == 2

    def rates(run: Path) -> list[list[str]]:  # lr and lr_end of epochs 2 and 3
        return [line.split(",")[6:8] for line in (run / "metrics.csv").read_text().splitlines()[2:]]

    assert rates(tmp_path / "extended") == rates(tmp_path / "straight")
    if sched["interval"] == "step":  # annealed to 0 by the end of the new total
        assert rates(tmp_path / "extended")[-1][1] == "0.0"
    else:
        assert _same_weights(tmp_path / "straight", tmp_path / "extended")
    assert load_checkpoint(tmp_path / "extended" / "checkpoints" / "last.pt")["config"]["epochs"] == 3


def test_output_over_an_existing_run_is_refused_unless_overwrite(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ["train", "--data", str(images), "--arch", "resnet20", "--batch-size", "4", "--workers", "0",
            "--device", "cpu", "--max-steps", "1", "--image-size", "16", "--output", str(out)]
    first = CliRunner().invoke(app, base + ["--epochs", "2", "--checkpoint-every", "1"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, base + ["--epochs", "1"])
    assert again.exit_code == 2
    lines = again.output.strip().splitlines()
    assert len(lines) == 1 and "already holds a run" in lines[0] and f"--resume {out}" in lines[0], lines
    assert "--overwrite" in lines[0]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 2  # untouched
    over = CliRunner().invoke(app, base + ["--epochs", "1", "--overwrite"])
    assert over.exit_code == 0, over.output
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 1
    assert not (out / "checkpoints" / "epoch_002.pt").exists()  # nothing of the old run is left to mislead
    assert [r.split(",")[0] for r in (out / "metrics.csv").read_text().splitlines()] == ["epoch", "1"]
