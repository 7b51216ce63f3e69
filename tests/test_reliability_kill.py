"""kill -9 during training, at random moments and in the middle of checkpoint writes: `--resume auto` always
continues, and the run ends with exactly the weights, best checkpoint and metrics of an uninterrupted run.

Each `resnetcli train` call is a real child process that gets a real SIGKILL. The children are forked by
tests/helpers_forker.py, which imported torch once, so each one costs training time rather than startup.
The kill moments come from a seeded random.Random: a failure names the seed and replays the same plan
(wall-clock kills land at slightly different points from run to run; checkpoint-write kills do not).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers_forker import Forker, shared_forker
from helpers_train import write_images

from resnetcli.engine.checkpoint import load_checkpoint

SEED = 20261123
EPOCHS = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("kill")
    images = write_images(root / "images", classes=2, per_class=4, size=8)
    config = root / "quiet.yaml"
    config.write_text("tensorboard: false\nplot: false\n")
    # a 2-channel-wide depth-8 CIFAR ResNet: tiny, but with BN, momentum, a cosine schedule and random
    # augmentation, so every piece of state that resume must restore is in play
    argv = ["train", "--data", str(images), "--arch", "cifar_resnet", "--arch-option", "depth=8",
            "--arch-option", "width=2", "--epochs", str(EPOCHS), "--batch-size", "2", "--workers", "0",
            "--device", "cpu", "--image-size", "8", "--augment", "cifar", "--scheduler", "cosine",
            "--optimizer", "sgd-nesterov", "--seed", "1", "--log-level", "WARNING", "--config", str(config),
            "--resume", "auto"]
    return {"root": root, "argv": argv}


@pytest.fixture(scope="module")
def baseline(forker: Forker, setup: dict[str, Any]) -> dict[str, Any]:
    run = setup["root"] / "straight"
    result = forker.run(setup["argv"] + ["--output", str(run)], setup["root"] / "straight.log")
    assert result["status"] == 0, (setup["root"] / "straight.log").read_text()[-3000:]
    return {"run": run, "seconds": result["seconds"]}


def _metric_rows(run: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    for row in rows:
        row.pop("time")  # wall time per epoch and the speed: the columns that may differ
        row.pop("images_per_s")
    return rows


def assert_same_run(run: Path, reference: Path) -> None:
    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(reference / "checkpoints" / name)
        b = load_checkpoint(run / "checkpoints" / name)
        assert (a["epoch"], a["best_epoch"], a["global_step"]) == (b["epoch"], b["best_epoch"], b["global_step"]), name
        assert a["model"].keys() == b["model"].keys()
        for key, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][key]), f"{name}: {key} differs"
        for key, st in a["optimizer"]["state"].items():
            for field, value in st.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"]["state"][key][field]))
        assert a["scheduler"] == b["scheduler"]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == EPOCHS
    assert not list((run / "checkpoints").glob(".*")), "temporary files of killed saves were left behind"
    # every epoch's row exactly once, with the uninterrupted run's numbers
    assert _metric_rows(run) == _metric_rows(reference)
    assert [int(r["epoch"]) for r in _metric_rows(run)] == list(range(1, EPOCHS + 1))


def _after_kill_checks(run: Path) -> None:
    """Whatever moment the kill hit, what --resume reads is whole: last.pt is absent or loads."""
    last = run / "checkpoints" / "last.pt"
    if last.exists():
        load_checkpoint(last)


def test_kill_9_at_random_moments_then_resume_auto_matches_an_uninterrupted_run(
    forker: Forker, setup: dict[str, Any], baseline: dict[str, Any]
) -> None:
    rng = random.Random(SEED)
    span = baseline["seconds"]
    kills, chains, log = 0, 0, []
    # chains of kill + resume until one finishes; new chains until at least 10 kills in all
    while kills < 10:
        chains += 1
        # a bound, not a timing check: on any machine most chains take a kill or more
        assert chains <= 40, f"seed {SEED}: only {kills} kills landed in {chains - 1} chains: {log}"
        run = setup["root"] / f"random{chains}"
        for attempt in range(30):
            # the last attempt of a chain is left alone so that every chain ends
            # anywhere from the first instruction to about the end of an uninterrupted run
            delay = None if attempt == 29 else round(rng.uniform(0.0, 0.9 * span), 3)
            result = forker.run(setup["argv"] + ["--output", str(run)], setup["root"] / f"random{chains}.log",
                                kill_after=delay)
            log.append((chains, delay, result["status"]))
            if result["status"] == 0:
                break
            assert result["status"] == -9, (f"seed {SEED}: {log}",
                                            (run.parent / f"random{chains}.log").read_text()[-3000:])
            kills += 1
            _after_kill_checks(run)
        assert_same_run(run, baseline["run"])


@pytest.mark.parametrize("plan_seed", [1, 2])
def test_kill_9_during_checkpoint_writes_then_resume_auto_matches_an_uninterrupted_run(
    forker: Forker, setup: dict[str, Any], baseline: dict[str, Any], plan_seed: int
) -> None:
    """Each process dies inside its Nth checkpoint write (half the bytes on disk): the first write of a new
    run (no last.pt yet), best.pt before last.pt, last.pt itself."""
    rng = random.Random(SEED + plan_seed)
    run = setup["root"] / f"in-save{plan_seed}"
    plan = [1] + [rng.choice([1, 2, 3]) for _ in range(3)]
    statuses = []
    for nth in plan:
        result = forker.run(setup["argv"] + ["--output", str(run)], run.parent / f"in-save{plan_seed}.log",
                            kill_in_save=nth)
        statuses.append(result["status"])
        assert result["status"] == -9, (plan, statuses, (run.parent / f"in-save{plan_seed}.log").read_text()[-3000:])
        assert list((run / "checkpoints").glob(".*.tmp")), "the kill did not land inside a write"
        _after_kill_checks(run)
    result = forker.run(setup["argv"] + ["--output", str(run)], run.parent / f"in-save{plan_seed}.log")
    assert result["status"] == 0, (run.parent / f"in-save{plan_seed}.log").read_text()[-3000:]
    assert_same_run(run, baseline["run"])


@pytest.fixture(scope="module")
def forker() -> Forker:
    return shared_forker()
