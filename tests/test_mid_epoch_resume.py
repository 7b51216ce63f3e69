"""Checkpoints inside an epoch (--checkpoint-every-steps): a run killed mid-epoch and resumed with `--resume auto`
ends with exactly the tensors, best checkpoint and metrics rows of an uninterrupted run.

As tests/test_reliability_kill.py does it: real child processes (tests/helpers_forker.py), real SIGKILLs at
seeded random moments and inside checkpoint writes, then every tensor compared with torch.equal.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from helpers_forker import Forker
from helpers_kill import EXACT, assert_same_run, train_setup

from resnetcli.engine.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow
SEED = 20261124
EPOCHS = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # mixup: the epoch's own generators must be restored too; 7 batches an epoch, a checkpoint after every 2
    return train_setup(tmp_path_factory.mktemp("mid_epoch"), 8, "--epochs", str(EPOCHS), *EXACT, "--mixup", "0.4",
                       "--no-amp", "--checkpoint-every-steps", "2")


def test_kill_9_inside_epochs_then_resume_auto_matches_an_uninterrupted_run(
        forker: Forker, setup: dict[str, Any], baseline: dict[str, Any]) -> None:
    rng = random.Random(SEED)
    run, log = setup["root"] / "killed", setup["root"] / "killed.log"
    statuses, inside = [], 0
    for attempt in range(40):
        # kills inside checkpoint writes land at a known save (3 of 4 saves are inside an epoch); a wall-clock
        # kill every third attempt lands anywhere; once 3 resumes started inside an epoch the run may finish
        if attempt == 39 or (inside >= 3 and attempt >= 6):
            kill: dict[str, Any] = {}
        elif attempt % 3 == 2:
            kill = {"kill_after": round(rng.uniform(0.2, 0.5 * baseline["seconds"]), 3)}
        else:
            kill = {"kill_in_save": rng.choice([2, 3, 4, 5])}
        result = forker.run(setup["argv"] + ["--output", str(run)], log, **kill)
        statuses.append((kill, result["status"]))
        if result["status"] == 0:
            break
        assert result["status"] == -9, (f"seed {SEED}: {statuses}", log.read_text()[-3000:])
        last = run / "checkpoints" / "last.pt"
        if last.is_file() and load_checkpoint(last).get("partial_epoch"):
            inside += 1
    assert inside >= 3, f"seed {SEED}: only {inside} resumes started inside an epoch: {statuses}"
    assert_same_run(run, baseline["run"], EPOCHS)


def test_a_mid_epoch_checkpoint_records_where_the_epoch_got(forker: Forker, setup: dict[str, Any],
                                                            baseline: dict[str, Any]) -> None:
    run = setup["root"] / "inside"
    result = forker.run(setup["argv"] + ["--output", str(run)], setup["root"] / "inside.log", kill_in_save=3)
    assert result["status"] == -9
    state = load_checkpoint(run / "checkpoints" / "last.pt")  # the second write: after step 2 of epoch 1
    assert state["epoch"] == 0 and state["partial_epoch"]["epoch"] == 1
    assert state["partial_epoch"]["step"] == 2 and state["partial_epoch"]["seen"] == 4


def test_mid_epoch_checkpoints_are_refused_where_their_resume_could_not_be_exact(setup: dict[str, Any],
                                                                                  tmp_path: Path) -> None:
    from helpers_cli import one_error_line
    from typer.testing import CliRunner

    from resnetcli.cli import app

    result = CliRunner().invoke(app, setup["argv"] + ["--balanced-sampler", "--output", str(tmp_path / "run")])
    assert "--checkpoint-every-steps" in one_error_line(result, 2) and "BalancedSampler" in result.stderr


def test_a_time_interval_also_checkpoints_inside_the_epoch(forker: Forker, setup: dict[str, Any],
                                                           tmp_path: Path) -> None:
    argv = list(setup["argv"])
    at = argv.index("--checkpoint-every-steps")
    del argv[at:at + 2]
    argv += ["--checkpoint-every-minutes", "1e-9", "--output", str(tmp_path / "run")]  # due after every step
    result = forker.run(argv, tmp_path / "log", kill_in_save=3)
    assert result["status"] == -9, (tmp_path / "log").read_text()[-3000:]
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")  # epoch 0, then after step 1
    assert state["partial_epoch"]["epoch"] == 1 and state["partial_epoch"]["step"] == 1


def test_a_resume_from_inside_an_epoch_keeps_epochs_until_that_epoch_ends(forker: Forker, setup: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert forker.run(setup["argv"] + ["--output", str(run)], tmp_path / "log", kill_in_save=3)["status"] == -9
    err = tmp_path / "err"
    argv = setup["argv"] + ["--output", str(run), "--epochs", str(EPOCHS + 2)]
    assert forker.run(argv, tmp_path / "log", err=err)["status"] == 2
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    assert len(lines) == 1 and "written inside epoch 1" in lines[0] and f"--epochs {EPOCHS}" in lines[0], lines
