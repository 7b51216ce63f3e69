"""Distributed training on CPU (gloo): a busy port; a run with an uneven last batch and freezing, resumed and
stopped by SIGTERM; a process that dies among processes started by hand.

Every case runs under a subprocess timeout far above what it needs: a hang fails the test instead of
blocking the suite. Processes are started two ways: by torchrun (whose agent supervises the workers), and
by hand with RANK/WORLD_SIZE/MASTER_PORT set (how a cluster scheduler or a second machine starts them),
where resnetcli alone must notice the problem.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_forker import Forker
from helpers_kill import run_ok
from PIL import Image
from torch import nn

from resnetcli.engine import lock
from resnetcli.engine.checkpoint import load_checkpoint
from resnetcli.engine.rng import seed_everything
from resnetcli.registry import registry
from resnetcli.runs import RunLayout

#: generous: every case here finishes in well under a minute on 2 busy cores; reaching this is a hang
HANG = 240


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "COLUMNS": "200", **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ 9 images (3 classes x 3), val/ 5 images: neither divides evenly between 2 processes."""
    root = tmp_path_factory.mktemp("dist") / "images"
    rng = np.random.default_rng(0)
    for split, counts in (("train", (3, 3, 3)), ("val", (2, 2, 1))):
        for k, n in enumerate(counts):
            folder = root / split / f"c{k}"
            folder.mkdir(parents=True)
            for i in range(n):
                img = np.full((8, 8, 3), 40, np.uint8)
                img[..., k] = 200
                img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    (root.parent / "quiet.yaml").write_text("tensorboard: false\nplot: false\ndist_timeout: 60\n")
    return root


def _train_argv(data: Path, output: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--arch", "cifar_resnet", "--arch-option", "depth=8",
            "--arch-option", "width=2", "--image-size", "8", "--batch-size", "2", "--device", "cpu",
            "--workers", "0", "--log-level", "WARNING", "--config", str(data.parent / "quiet.yaml"),
            "--output", str(output), *extra]


def _torchrun(port: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
            "-m", "resnetcli"]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]




@pytest.mark.slow
def test_torchrun_on_a_busy_port_fails_at_once(data: Path, tmp_path: Path, busy_port: int) -> None:
    """torchrun's own rendezvous refuses the port before any resnetcli process starts (its message, not ours)."""
    proc = subprocess.run(_torchrun(busy_port) + _train_argv(data, tmp_path / "run", "--epochs", "1"),
                          capture_output=True, text=True, env=_env(), timeout=HANG)
    assert proc.returncode != 0
    assert "address already in use" in proc.stderr and str(busy_port) in proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_process_started_by_hand_on_a_busy_port_gives_one_line(forker: Forker, data: Path, tmp_path: Path,
                                                                 busy_port: int) -> None:
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(busy_port)}
    err = tmp_path / "err"
    result = forker.run(_train_argv(data, tmp_path / "run", "--epochs", "1"), tmp_path / "out", err=err, env=env)
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    assert result["status"] == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: cannot start the distributed run"), lines
    assert f"port {busy_port} on 127.0.0.1 is already in use" in lines[0]
    assert not (tmp_path / "run").exists()


@contextlib.contextmanager
def _torchrun_run(argv: list[str]) -> Iterator[subprocess.Popen]:
    """torchrun running `resnetcli ARGV`; whatever the test does, no launcher or rank outlives it."""
    proc = subprocess.Popen(_torchrun(_free_port()) + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    try:
        yield proc
    finally:
        _kill_tree(proc)


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun's ranks (its children), then torchrun; reap it."""
    if proc.poll() is None:
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(child), signal.SIGKILL)
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
        proc.communicate(timeout=60)


def _until(condition: Callable[[], bool], proc: subprocess.Popen, deadline: float) -> None:
    while not condition():
        if proc.poll() is not None or time.monotonic() >= deadline:
            ended = proc.poll()
            _kill_tree(proc)  # before reading its output: a run of 10,000 epochs would never close it
            raise AssertionError(f"torchrun {'exited ' + str(ended) if ended is not None else 'timed out'}")
        time.sleep(0.1)


@pytest.mark.slow
def test_a_torchrun_run_with_uneven_batches_and_freezing_ends_then_resumes_and_survives_sigterm(
        forker: Forker, data: Path, tmp_path: Path) -> None:
    """One run's life under torchrun, in two launches (each costs three processes that import torch).

    1. Two processes over gloo: 9 training images in batches of 2 (the last one short), 5 validation images
       (3 + 2), 3 epochs to the end: exit 0, one TensorBoard writer, checkpoints without DDP's wrapper.
    2. Freezing: the stem and layer1 are frozen, then unfrozen at epoch 2. DistributedDataParallel registers the
       parameters that require grad when it is built, so the wrapper is rebuilt when --unfreeze-at changes them;
       frozen stages stay the initial weights (seeded) on every rank.
    3. The same torchrun command with --resume auto and more epochs trains on; then preemption, what a batch
       scheduler does: SIGTERM to the launcher, which passes it on to every rank; every rank stops and rank 0
       leaves a run that resumes (a single process resumes it to the end).
    A rank that dies is test_started_by_hand_a_rank_that_dies_...: under torchrun its agent stops the others,
    which is torchrun's own work; started by hand, resnetcli's.
    """
    from test_preemption import _alive, _last_epoch

    run = tmp_path / "run"
    # --logger names tensorboard again over quiet.yaml's `tensorboard: false`
    argv = _train_argv(data, run, "--no-drop-last", "--log-level", "INFO", "--logger", "csv,tensorboard",
                       "--checkpoint-every", "1", "--freeze-until", "layer1", "--unfreeze-at", "2", "--seed", "0")
    with _torchrun_run(argv + ["--epochs", "3"]) as proc:
        _, stderr = proc.communicate(timeout=HANG)
    assert proc.returncode == 0, stderr[-3000:]
    assert "on cpu x2 processes" in (run / "train.log").read_text()
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1  # rank 0 alone writes
    epoch1, epoch2, last = (load_checkpoint(run / "checkpoints" / name)
                            for name in ("epoch_001.pt", "epoch_002.pt", "last.pt"))
    assert not any(k.startswith("module.") for k in last["model"])  # saved unwrapped from DDP
    # DistributedSampler pads 9 to 5 per process: batches of 2, 2, 1 -> 3 steps per epoch on both
    assert (epoch2["epoch"], epoch2["global_step"]) == (2, 6) and (last["epoch"], last["global_step"]) == (3, 9)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    for row in rows:  # all 5 validation images counted once across both processes
        assert round(float(row["val_acc"]) * 5 / 100, 6).is_integer()

    seed_everything(0)  # a run's initial weights depend only on --seed
    model = registry("architectures").build("cifar_resnet", options={"depth": 8, "width": 2}, expect=nn.Module,
                                            num_classes=3, in_channels=3)
    initial = model.state_dict()
    children = [name for name, _ in model.named_children()]
    frozen = tuple(f"{name}." for name in children[: children.index("layer1") + 1])
    keys = [key for key in initial if key.startswith(frozen)]
    assert keys and all(torch.equal(epoch1["model"][key], initial[key]) for key in keys)
    assert not all(torch.equal(epoch2["model"][key], initial[key]) for key in keys if key.endswith("weight"))

    on = argv + ["--epochs", "10000", "--resume", "auto"]  # --epochs grows a finished run
    with _torchrun_run(on) as proc:
        deadline = time.monotonic() + HANG
        _until(lambda: _last_epoch(run) > 3, proc, deadline)
        ranks = [_rank_pid(proc.pid, rank, deadline) for rank in (0, 1)]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=HANG)
    assert proc.returncode != 0
    assert not any(_alive(pid) for pid in ranks), stderr[-3000:]
    log = (run / "train.log").read_text()
    assert f"resumed from {RunLayout(run).last} after epoch 3" in log and "resumes exactly" in log, stderr[-3000:]
    assert lock.holder(RunLayout(run)) is None

    done = _last_epoch(run)
    run_ok(forker, argv + ["--epochs", str(done + 1), "--resume", "auto"], tmp_path / "resume.log")
    assert _last_epoch(run) == done + 1


def _rank_pid(parent: int, rank: int, deadline: float) -> int:
    """The pid of torchrun's worker with RANK=rank (read from /proc)."""
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{parent}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if f"RANK={rank}".encode() in environ:
                    return int(child)
        time.sleep(0.1)
    raise AssertionError(f"no worker with RANK={rank} under {parent}")


def test_started_by_hand_a_rank_that_dies_makes_the_other_exit_with_one_error_line(
    forker: Forker, data: Path, tmp_path: Path
) -> None:
    """No torchrun agent to clean up: rank 0 itself must notice that rank 1 is gone and stop with an error."""
    run = tmp_path / "run"
    port = str(_free_port())
    pids = [forker.start(_train_argv(data, run, "--epochs", "10000"), tmp_path / f"out{rank}",
                         err=tmp_path / f"err{rank}",
                         env={"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
                              "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
            for rank in (0, 1)]
    try:
        deadline = time.monotonic() + HANG
        while not (run / "metrics.csv").exists():  # an epoch done: both ranks are deep in training
            assert time.monotonic() < deadline, "no epoch finished"
            for pid in pids:
                assert forker.wait(pid, timeout=0.1) is None, (tmp_path / "err0").read_text()[-3000:]
        forker.kill(pids[1])
        status = forker.wait(pids[0], timeout=HANG, signal_name="none")
    finally:
        for pid in pids:  # reap both whatever happened (SIGKILL at once if still running)
            forker.wait(pid, timeout=0, signal_name="SIGKILL")
    stderr = (tmp_path / "err0").read_text()
    assert status == 6, stderr[-3000:]
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "another process of the distributed run stopped or became unreachable" in errors[0]
    assert stderr.strip().splitlines()[-1] == errors[0]
    load_checkpoint(run / "checkpoints" / "last.pt")
