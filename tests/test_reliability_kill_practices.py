"""kill -9 at random moments of a run that uses EMA, gradient accumulation, class weights, early stopping, the
balanced sampler and CutMix at once: `--resume auto` ends with exactly the checkpoints (every tensor of
last.pt and best.pt, the EMA's raw weights and counters included) and metrics of an uninterrupted run.

The style and the fork server are test_reliability_kill.py's (tests/helpers_forker.py); the kill moments
come from a seeded random.Random, so a failure names the seed and replays the same plan.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from helpers_forker import Forker
from helpers_kill import EXACT, assert_same_run, kill_at_random_moments, kill_in_saves, straight_run, train_setup

from resnetcli.engine.checkpoint import load_checkpoint

SEED = 20261124
EPOCHS = 8
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    setup = train_setup(tmp_path_factory.mktemp("kill-practices"), 6, "--epochs", str(EPOCHS), *EXACT, "--ema", "0.7",
                        "--accumulate", "2", "--class-weights", "auto", "--balanced-sampler", "--early-stop", "3",
                        "--early-stop-metric", "val_loss", "--cutmix", "1.0",
                        config="data_options: {val_split: 0.25}\n")
    images = setup["images"]
    for extra in range(6):  # class c1 3x as large as c0: the class weights and the sampler have work to do
        for copy in range(2):
            (images / "c1" / f"x{copy}{extra}.png").write_bytes((images / "c1" / f"{extra}.png").read_bytes())
    return setup


@pytest.fixture(scope="module")
def baseline(forker: Forker, setup: dict[str, Any]) -> dict[str, Any]:
    straight = straight_run(forker, setup)
    last = load_checkpoint(straight["run"] / "checkpoints" / "last.pt")
    assert last["ema"]["n_averaged"] == last["global_step"] > 0  # every piece really ran
    assert last["early_stop"]["metric"] == "val_loss"
    return {**straight, "epochs": last["epoch"]}


def test_kill_9_with_ema_accumulation_class_weights_early_stopping_and_cutmix_resumes_exactly(
    forker: Forker, setup: dict[str, Any], baseline: dict[str, Any]
) -> None:
    kill_at_random_moments(forker, setup, baseline, seed=SEED, kills=6, max_chains=30, epochs=baseline["epochs"])


def test_kill_9_during_checkpoint_writes_with_every_practice_on_resumes_exactly(
    forker: Forker, setup: dict[str, Any], baseline: dict[str, Any]
) -> None:
    rng = random.Random(SEED + 1)
    run = setup["root"] / "in-save"
    plan = [1] + [rng.choice([1, 2, 3]) for _ in range(3)]
    # the run may finish (it stopped early) before a process's Nth save
    kill_in_saves(forker, setup["argv"], run, run.parent / "in-save.log", plan, may_finish=True)
    assert_same_run(run, baseline["run"], baseline["epochs"])
