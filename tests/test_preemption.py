"""Preemption-safe training: one writer per run folder (RUN/.lock), and SIGTERM/SIGHUP handled like Ctrl-C.

Each `resnetcli train` is a real child process (tests/helpers_forker.py), sent real signals.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from helpers_forker import Forker
from helpers_kill import run_ok, train_setup

from resnetcli.engine import lock
from resnetcli.engine.checkpoint import load_checkpoint
from resnetcli.runs import RunLayout

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return train_setup(tmp_path_factory.mktemp("preempt"), 8, "--no-amp")


def _wait_for(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _last_epoch(run: Path) -> int:
    last = RunLayout(run).last
    return int(load_checkpoint(last)["epoch"]) if last.is_file() else 0


def _children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (a /proc scan: no psutil)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_second_writer_is_refused_in_one_line_and_kill_9_leaves_no_stale_lock(
        forker: Forker, setup: dict[str, Any]) -> None:
    root, run = setup["root"], setup["root"] / "locked"
    argv = setup["argv"] + ["--epochs", "100000", "--workers", "0", "--output", str(run)]
    first = forker.start(argv, root / "first.log")
    try:
        _wait_for(lambda: lock.holder(RunLayout(run)) is not None, "the first run to lock its folder")
        assert lock.holder(RunLayout(run))["pid"] == first
        # the same --output (with --resume auto, as a restarted job script would), and a run that starts over
        for extra in ([], ["--overwrite"]):
            err = root / f"second{len(extra)}.err"
            result = forker.run(argv + extra, root / "second.log", err=err)
            assert result["status"] == 2, err.read_text()
            lines = [line for line in err.read_text().splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: "), lines
            assert f"process {first} on " in lines[0] and "is being written by" in lines[0]
        assert _alive(first) and lock.holder(RunLayout(run))["pid"] == first  # the first one goes on
        _wait_for(lambda: _last_epoch(run) >= 1, "an epoch")
    finally:
        forker.kill(first, "SIGKILL")
        assert forker.wait(first, timeout=60, signal_name="SIGKILL") == -9
    assert RunLayout(run).lock.is_file() and lock.holder(RunLayout(run)) is None  # the kernel dropped it
    done = _last_epoch(run)
    run_ok(forker, setup["argv"] + ["--epochs", str(done + 1), "--workers", "0", "--output", str(run)],
           root / "third.log")
    assert load_checkpoint(RunLayout(run).last)["epoch"] == done + 1


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_end_training_like_ctrl_c(forker: Forker, setup: dict[str, Any], name: str,
                                                     code: int) -> None:
    """A resumable last.pt, one line saying how to resume (also in train.log), the documented exit code, and
    no DataLoader worker left behind."""
    root, run = setup["root"], setup["root"] / name
    argv = setup["argv"] + ["--epochs", "100000", "--workers", "2", "--no-in-memory", "--output", str(run)]
    err = root / f"{name}.err"
    pid = forker.start(argv, root / f"{name}.log", err=err)
    try:
        _wait_for(lambda: _last_epoch(run) >= 1 and len(_children(pid)) >= 2, "an epoch and its loader workers")
        workers = _children(pid)
        forker.kill(pid, name)
        status = forker.wait(pid, timeout=120, signal_name="SIGKILL")
    finally:
        forker.kill(pid, "SIGKILL")
    assert status == code, err.read_text()[-3000:]
    text = err.read_text()
    assert "Traceback" not in text, text
    said = [line for line in text.splitlines() if "resumes exactly" in line]
    assert len(said) == 1 and f"resnetcli train --resume {run}" in said[0], text
    assert f"interrupted ({name})" in text
    assert "resumes exactly" in RunLayout(run).log.read_text()
    _wait_for(lambda: not any(_alive(w) for w in workers), "the loader workers to end", timeout=30)
    assert lock.holder(RunLayout(run)) is None
    done = _last_epoch(run)
    assert done >= 1
    run_ok(forker, setup["argv"] + ["--epochs", str(done + 1), "--workers", "0", "--output", str(run)],
           root / f"{name}.resume.log")
    rows = [json.loads(line) for line in RunLayout(run).metrics_jsonl.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, done + 2))  # an epoch cut short is redone, not doubled


def test_termination_signals_are_the_ones_documented() -> None:
    from resnetcli.signals import TERMINATION_SIGNALS, Terminated, exit_code

    assert set(TERMINATION_SIGNALS) == {signal.SIGTERM, signal.SIGHUP}
    assert exit_code(Terminated(signal.SIGTERM)) == 143 and exit_code(Terminated(signal.SIGHUP)) == 129
    assert exit_code(KeyboardInterrupt()) == 130


# SIGTERM to torchrun's launcher (every rank stops, rank 0 leaves a resumable run): in
# tests/test_reliability_dist.py's torchrun run, which checks uneven batches and freezing on the way.
