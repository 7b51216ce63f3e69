"""Exact resume, interrupt and NaN paths of `resnetcli train` on a tiny real image folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers_train import run_engine, write_images
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


def _interrupt_in_epoch(monkeypatch: pytest.MonkeyPatch, stop_epoch: int) -> None:
    """Make epoch `stop_epoch` run one real batch (so the model changes) and then get Ctrl-C."""
    real = trainer.train_epoch

    def interrupted(stepper, batches, *, epoch, **kwargs):  # type: ignore[no-untyped-def]
        if epoch == stop_epoch:
            real(stepper, batches, epoch=epoch, **{**kwargs, "max_steps": 1})
            raise KeyboardInterrupt
        return real(stepper, batches, epoch=epoch, **kwargs)

    monkeypatch.setattr(trainer, "train_epoch", interrupted)


def test_resume_after_interrupt_is_exact(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    straight = run_engine(images, tmp_path / "straight", checkpoint_every=1, **RESUME_FLAGS)
    assert straight.epochs_run == 2
    names = sorted(p.name for p in (tmp_path / "straight" / "checkpoints").glob("*.pt"))
    assert names == ["best.pt", "epoch_001.pt", "epoch_002.pt", "last.pt"]
    assert load_checkpoint(tmp_path / "straight" / "checkpoints" / "epoch_001.pt")["epoch"] == 1

    _interrupt_in_epoch(monkeypatch, stop_epoch=2)
    with pytest.raises(KeyboardInterrupt):
        run_engine(images, tmp_path / "split", **RESUME_FLAGS)
    kept = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert kept["epoch"] == 1  # the partial epoch 2 was not saved over the last complete one
    monkeypatch.undo()

    resumed = run_engine(images, tmp_path / "split", resume="auto", **RESUME_FLAGS)
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
    _interrupt_in_epoch(monkeypatch, stop_epoch=1)
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
    """What exact resume rests on, with loader worker processes too: a fresh loader replays any epoch."""
    from resnetcli.augment import build_pipeline
    from resnetcli.data import open_source

    source = open_source(str(images))
    split = source.split("train")
    tf = build_pipeline("cifar", train=True, image_size=16, mean=source.mean, std=source.std)
    first = _epoch_batches(split, tf, epoch=2, workers=2)
    again = _epoch_batches(split, tf, epoch=2, workers=2)
    other = _epoch_batches(split, tf, epoch=3, workers=2)
    assert len(first) == len(split) // 4
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


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
