"""kill -9 during training, at random moments and in the middle of checkpoint writes: `--resume auto` always
continues, and the run ends with exactly the weights, best checkpoint and metrics of an uninterrupted run.

Each `resnetcli train` call is a real child process that gets a real SIGKILL. The children are forked by
tests/helpers_forker.py, which imported torch once, so each one costs training time rather than startup.
The kill moments come from a seeded random.Random: a failure names the seed and replays the same plan
(wall-clock kills land at slightly different points from run to run; checkpoint-write kills do not).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from helpers_forker import Forker
from helpers_kill import EXACT, assert_same_run, kill_at_random_moments, kill_in_saves, train_setup

SEED = 20261123
EPOCHS = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return train_setup(tmp_path_factory.mktemp("kill"), 4, "--epochs", str(EPOCHS), *EXACT)


def test_kill_9_at_random_moments_then_resume_auto_matches_an_uninterrupted_run(
    forker: Forker, setup: dict[str, Any], baseline: dict[str, Any]
) -> None:
    # chains of kill + resume until one finishes; new chains until at least 10 kills in all
    kill_at_random_moments(forker, setup, baseline, seed=SEED, kills=10, max_chains=40, epochs=EPOCHS)


@pytest.mark.parametrize("plan_seed", [1, 2])
def test_kill_9_during_checkpoint_writes_then_resume_auto_matches_an_uninterrupted_run(
    forker: Forker, setup: dict[str, Any], baseline: dict[str, Any], plan_seed: int
) -> None:
    """Each process dies inside its Nth checkpoint write (half the bytes on disk): the first write of a new
    run (no last.pt yet), best.pt before last.pt, last.pt itself."""
    rng = random.Random(SEED + plan_seed)
    run = setup["root"] / f"in-save{plan_seed}"
    plan = [1] + [rng.choice([1, 2, 3]) for _ in range(3)]
    kill_in_saves(forker, setup["argv"], run, run.parent / f"in-save{plan_seed}.log", plan)
    assert_same_run(run, baseline["run"], EPOCHS)
