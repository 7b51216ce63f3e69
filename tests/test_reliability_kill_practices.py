"""kill -9 at random moments of a run that uses EMA, gradient accumulation, class weights, early stopping, the
balanced sampler and CutMix at once: `--resume auto` ends with exactly the checkpoints (every tensor of
last.pt and best.pt, the EMA's raw weights and counters included) and metrics of an uninterrupted run.

The style and the fork server are test_reliability_kill.py's (tests/helpers_forker.py); the kill moments
come from a seeded random.Random, so a failure names the seed and replays the same plan.
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

SEED = 20261124
EPOCHS = 8
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("kill-practices")
    images = write_images(root / "images", classes=2, per_class=6, size=8)
    for extra in range(6):  # class c1 3x as large as c0: the class weights and the sampler have work to do
        for copy in range(2):
            (images / "c1" / f"x{copy}{extra}.png").write_bytes((images / "c1" / f"{extra}.png").read_bytes())
    config = root / "quiet.yaml"
    config.write_text("tensorboard: false\nplot: false\ndata_options: {val_split: 0.25}\n")
    argv = ["train", "--data", str(images), "--arch", "cifar_resnet", "--arch-option", "depth=8",
            "--arch-option", "width=2", "--epochs", str(EPOCHS), "--batch-size", "2", "--workers", "0",
            "--device", "cpu", "--image-size", "8", "--augment", "cifar", "--scheduler", "cosine",
            "--optimizer", "sgd-nesterov", "--seed", "1", "--log-level", "WARNING", "--config", str(config),
            "--ema", "0.7", "--accumulate", "2", "--class-weights", "auto", "--balanced-sampler",
            "--early-stop", "3", "--early-stop-metric", "val_loss", "--cutmix", "1.0", "--resume", "auto"]
    return {"root": root, "argv": argv}


@pytest.fixture(scope="module")
def baseline(forker: Forker, setup: dict[str, Any]) -> dict[str, Any]:
    run = setup["root"] / "straight"
    result = forker.run(setup["argv"] + ["--output", str(run)], setup["root"] / "straight.log")
    assert result["status"] == 0, (setup["root"] / "straight.log").read_text()[-3000:]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["ema"]["n_averaged"] == last["global_step"] > 0  # every piece really ran
    assert last["early_stop"]["metric"] == "val_loss"
    return {"run": run, "seconds": result["seconds"], "epochs": last["epoch"]}


def assert_equal_tree(a: Any, b: Any, where: str) -> None:
    """Equal nested checkpoint contents, tensors compared bit for bit (torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, set(a) ^ set(b))
        for key in a:
            assert_equal_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


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
        for key in ("model", "ema", "early_stop", "optimizer", "scheduler", "epoch", "global_step", "best_epoch",
                    "best_metric", "metrics"):
            if key != "metrics":
                assert_equal_tree(a.get(key), b.get(key), f"{name}:{key}")
            else:  # the last row's wall-clock columns differ between any two runs
                clock = ("time", "images_per_s")
                assert {k: v for k, v in a[key].items() if k not in clock} == \
                    {k: v for k, v in b[key].items() if k not in clock}, name
    assert not list((run / "checkpoints").glob(".*")), "temporary files of killed saves were left behind"
    assert _metric_rows(run) == _metric_rows(reference)


def test_kill_9_with_ema_accumulation_class_weights_early_stopping_and_cutmix_resumes_exactly(
    forker: Forker, setup: dict[str, Any], baseline: dict[str, Any]
) -> None:
    rng = random.Random(SEED)
    span = baseline["seconds"]
    kills, chains, log = 0, 0, []
    while kills < 6:
        chains += 1
        # a bound, not a timing check: on any machine most chains take a kill or more
        assert chains <= 30, f"seed {SEED}: only {kills} kills landed in {chains - 1} chains: {log}"
        run = setup["root"] / f"random{chains}"
        for attempt in range(30):
            delay = None if attempt == 29 else round(rng.uniform(0.0, 0.9 * span), 3)
            result = forker.run(setup["argv"] + ["--output", str(run)], setup["root"] / f"random{chains}.log",
                                kill_after=delay)
            log.append((chains, delay, result["status"]))
            if result["status"] == 0:
                break
            assert result["status"] == -9, (f"seed {SEED}: {log}",
                                            (run.parent / f"random{chains}.log").read_text()[-3000:])
            kills += 1
            last = run / "checkpoints" / "last.pt"
            if last.exists():
                load_checkpoint(last)
        assert_same_run(run, baseline["run"])


def test_kill_9_during_checkpoint_writes_with_every_practice_on_resumes_exactly(
    forker: Forker, setup: dict[str, Any], baseline: dict[str, Any]
) -> None:
    rng = random.Random(SEED + 1)
    run = setup["root"] / "in-save"
    plan = [1] + [rng.choice([1, 2, 3]) for _ in range(3)]
    for nth in plan:
        result = forker.run(setup["argv"] + ["--output", str(run)], run.parent / "in-save.log", kill_in_save=nth)
        if result["status"] == 0:  # the run finished (it stopped early) before its Nth save
            break
        assert result["status"] == -9, (plan, (run.parent / "in-save.log").read_text()[-3000:])
    result = forker.run(setup["argv"] + ["--output", str(run)], run.parent / "in-save.log")
    assert result["status"] == 0, (run.parent / "in-save.log").read_text()[-3000:]
    assert_same_run(run, baseline["run"])


@pytest.fixture(scope="module")
def forker() -> Forker:
    return shared_forker()
