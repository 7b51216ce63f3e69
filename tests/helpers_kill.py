"""What the kill -9 and resume tests share: a tiny `resnetcli train` argv, runs through the fork server
(tests/helpers_forker.py), the two kill plans, and the check that a resumed run is an uninterrupted one exactly.

A test module's `setup` fixture is a train_setup(...); the `baseline` fixture (tests/conftest.py) is
straight_run(forker, setup).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import torch
from helpers_forker import Forker
from helpers_train import write_images

from resnetcli.engine.checkpoint import load_checkpoint

#: what the exact-resume tests add to train_setup's argv: one process, random augmentation, momentum and a moving
#: schedule, so that every piece of state that resume must restore is in play
EXACT = ("--workers", "0", "--augment", "cifar", "--scheduler", "cosine", "--optimizer", "sgd-nesterov",
         "--log-level", "WARNING")
#: the checkpoint entries a resumed run must end with exactly (None == None where a run has no EMA or early stop)
RESTORED = ("model", "ema", "early_stop", "optimizer", "scheduler", "epoch", "global_step", "best_epoch",
            "best_metric")
#: wall time per epoch and the speed: the metrics that differ between any two runs
CLOCK = ("time", "images_per_s")


def train_setup(root: Path, per_class: int, *extra: str, config: str = "") -> dict[str, Any]:
    """A test module's `setup`: {"root": root, "images": 2 classes of `per_class` 8px images in root/images,
    "argv": `resnetcli train` of a 2-channel-wide depth-8 CIFAR ResNet on them, on the CPU, seed 1, with `extra`
    and `--resume auto`}; tensorboard and plots off through root/quiet.yaml (then the YAML lines in `config`)."""
    images = write_images(root / "images", classes=2, per_class=per_class, size=8)
    quiet = root / "quiet.yaml"
    quiet.write_text("tensorboard: false\nplot: false\n" + config)
    argv = ["train", "--data", str(images), "--arch", "cifar_resnet", "--arch-option", "depth=8",
            "--arch-option", "width=2", "--batch-size", "2", "--device", "cpu", "--image-size", "8", "--seed", "1",
            "--config", str(quiet), *extra, "--resume", "auto"]
    return {"root": root, "images": images, "argv": argv}


def run_ok(forker: Forker, argv: list[str], log: Path) -> dict[str, Any]:
    """Run `resnetcli ARGV` to its end through the fork server; a failure shows the end of its log."""
    result = forker.run(argv, log)
    assert result["status"] == 0, log.read_text()[-3000:]
    return result


def straight_run(forker: Forker, setup: dict[str, Any]) -> dict[str, Any]:
    """The uninterrupted run the kill plans are compared with: {"run": its folder, "seconds": its wall time}."""
    run = setup["root"] / "straight"
    result = run_ok(forker, setup["argv"] + ["--output", str(run)], setup["root"] / "straight.log")
    return {"run": run, "seconds": result["seconds"]}


def assert_whole_after_kill(run: Path) -> None:
    """Whatever moment the kill hit, what --resume reads is whole: last.pt is absent or loads."""
    last = run / "checkpoints" / "last.pt"
    if last.exists():
        load_checkpoint(last)


def kill_at_random_moments(forker: Forker, setup: dict[str, Any], baseline: dict[str, Any], *, seed: int,
                           kills: int, max_chains: int, epochs: int) -> None:
    """Chains of SIGKILL at a random moment + `--resume auto` until a process finishes the run; new chains until
    `kills` kills landed. Every chain ends with exactly the baseline's checkpoints and metrics."""
    rng = random.Random(seed)
    span = baseline["seconds"]
    landed, chains, log = 0, 0, []
    while landed < kills:
        chains += 1
        # a bound, not a timing check: on any machine most chains take a kill or more
        assert chains <= max_chains, f"seed {seed}: only {landed} kills landed in {chains - 1} chains: {log}"
        run, out = setup["root"] / f"random{chains}", setup["root"] / f"random{chains}.log"
        for attempt in range(30):
            # the last attempt of a chain is left alone so that every chain ends; the others land anywhere from
            # the first instruction to about the end of an uninterrupted run
            delay = None if attempt == 29 else round(rng.uniform(0.0, 0.9 * span), 3)
            result = forker.run(setup["argv"] + ["--output", str(run)], out, kill_after=delay)
            log.append((chains, delay, result["status"]))
            if result["status"] == 0:
                break
            assert result["status"] == -9, (f"seed {seed}: {log}", out.read_text()[-3000:])
            landed += 1
            assert_whole_after_kill(run)
        assert_same_run(run, baseline["run"], epochs)


def kill_in_saves(forker: Forker, argv: list[str], run: Path, log: Path, plan: list[int], *,
                  may_finish: bool = False) -> None:
    """One process per entry N of `plan`, each SIGKILLed inside its Nth checkpoint write (half the bytes on disk),
    then one that finishes the run. With `may_finish` a process that ends the run before its Nth write (early
    stopping) ends the plan."""
    argv = argv + ["--output", str(run)]
    statuses = []
    for nth in plan:
        result = forker.run(argv, log, kill_in_save=nth)
        statuses.append(result["status"])
        if may_finish and result["status"] == 0:
            break
        assert result["status"] == -9, (plan, statuses, log.read_text()[-3000:])
        assert list((run / "checkpoints").glob(".*.tmp")), "the kill did not land inside a write"
        assert_whole_after_kill(run)
    run_ok(forker, argv, log)


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


def metric_rows(run: Path) -> list[dict[str, str]]:
    """metrics.csv's rows without the wall-clock columns."""
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    for row in rows:
        for column in CLOCK:
            row.pop(column)
    return rows


def assert_same_run(run: Path, reference: Path, epochs: int) -> None:
    """`run` ended after `epochs` epochs with exactly `reference`'s last.pt and best.pt (every tensor, the EMA's
    and the optimizer's included, bit for bit) and metrics rows, and no temporary file of a killed save is left."""
    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(reference / "checkpoints" / name)
        b = load_checkpoint(run / "checkpoints" / name)
        for key in RESTORED:
            assert_equal_tree(a.get(key), b.get(key), f"{name}:{key}")
        assert {k: v for k, v in a["metrics"].items() if k not in CLOCK} == \
            {k: v for k, v in b["metrics"].items() if k not in CLOCK}, name
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == epochs
    assert not list((run / "checkpoints").glob(".*")), "temporary files of killed saves were left behind"
    # every epoch's row exactly once, with the uninterrupted run's numbers
    assert metric_rows(run) == metric_rows(reference)
    assert [int(r["epoch"]) for r in metric_rows(run)] == list(range(1, epochs + 1))
