"""Stop signals (resnetcli/signals.py): raised at once, except inside `hold()`, where they wait for its end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
from torch.utils.data import Dataset

from resnetcli.engine.data import Loader
from resnetcli.signals import Terminated, hold, interrupt_on_termination

if TYPE_CHECKING:
    from helpers_forker import Forker


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # Python runs the handler at the next bytecode boundary of the main thread


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_outside_a_hold_a_termination_signal_raises_at_once(signum: int) -> None:
    with interrupt_on_termination(), pytest.raises(Terminated) as info:
        _deliver(signum)
        pytest.fail("not interrupted")
    assert info.value.exit_code == 128 + signum


@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGTERM, Terminated), (signal.SIGHUP, Terminated),
                                                (signal.SIGINT, KeyboardInterrupt)])
def test_inside_a_hold_a_signal_waits_for_its_end(signum: int, raised: type[BaseException]) -> None:
    finished = False
    with interrupt_on_termination(), pytest.raises(raised):
        with hold():
            _deliver(signum)
            finished = True
        pytest.fail("the held signal was not raised at the end of the hold")
    assert finished


def test_a_second_signal_while_one_is_held_raises_at_once() -> None:
    with interrupt_on_termination(), pytest.raises(Terminated) as info:
        with hold():
            _deliver(signal.SIGHUP)
            _deliver(signal.SIGINT)  # a hung block can still be stopped
            pytest.fail("the second signal waited")
    assert info.value.signum == signal.SIGHUP


class _StopsInDel:
    """An object whose __del__ receives the stop: Python only prints an exception raised there."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        _deliver(self.signum)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost exception, printed
@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_an_error_after_a_stop_whose_exception_was_lost_is_reported_as_the_stop(
        signum: int, raised: type[BaseException]) -> None:
    """Sent to the whole process group, the stop also kills the loader's workers; if its own exception was lost
    (raised inside a __del__), their 'exited unexpectedly' must not be what the run ends with."""
    with pytest.raises(raised) as info, interrupt_on_termination():
        stops = _StopsInDel(signum)
        del stops
        raise RuntimeError("DataLoader worker (pid(s) 1) exited unexpectedly")
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(RuntimeError), interrupt_on_termination():  # without a stop, the error is the error
        raise RuntimeError("DataLoader worker (pid(s) 1) exited unexpectedly")


def test_handlers_are_restored_and_nothing_stays_held() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(Terminated), interrupt_on_termination():
        _deliver(signal.SIGTERM)
    assert {sig: signal.getsignal(sig) for sig in before} == before
    with hold():  # outside interrupt_on_termination a hold defers nothing and raises nothing
        pass


class _Gated(Dataset):
    """Item 0 waits for `go`, then marks `done`: the test controls when the worker hands the batch over."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == 0:
            while not (self.root / "go").exists():
                time.sleep(0.01)
            (self.root / "done").touch()
        return torch.zeros(3, 8, 8)


def test_a_signal_during_a_worker_hand_over_is_raised_after_the_batch_arrived(tmp_path: Path) -> None:
    """The hand-over is where an exception in the main process cut a worker's fd-sharing connection (a
    traceback from multiprocessing/resource_sharer.py in a SIGTERM-ed training's stderr)."""
    loader = Loader(_Gated(tmp_path), batch_size=2, num_workers=1)

    def stop_then_release() -> None:
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # while the main thread waits for the first batch
        time.sleep(0.5)
        (tmp_path / "go").touch()

    batches = []
    with interrupt_on_termination(), pytest.raises(Terminated):
        iterator = iter(loader)
        threading.Thread(target=stop_then_release, daemon=True).start()
        for batch in iterator:
            batches.append(batch)
    assert (tmp_path / "done").exists()  # raised once the batch had arrived, not while it was on its way
    assert batches == []  # and before the loop's body ran on it


def test_a_held_signal_wins_over_the_error_the_block_then_raised() -> None:
    """A signal sent to the whole process group (Ctrl-C, a closed terminal, a scheduler) also stops the loader's
    workers, and the main process then sees 'worker exited unexpectedly' inside the hold: the stop is reported."""
    with interrupt_on_termination(), pytest.raises(Terminated) as info:
        with hold():
            _deliver(signal.SIGTERM)
            raise RuntimeError("DataLoader worker (pid(s) 1) exited unexpectedly")
    assert info.value.signum == signal.SIGTERM
    assert isinstance(info.value.__context__, RuntimeError)


def test_after_a_stop_a_dying_child_does_not_interrupt_the_clean_up() -> None:
    """A signal sent to the whole process group also kills the loader's workers, and torch's SIGCHLD handler
    raised 'DataLoader worker is killed by signal' in the middle of the clean-up, replacing the stop."""
    def worker_failed(signum: int, frame: object) -> None:  # what torch's DataLoader installs, in effect
        raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated.")

    previous = signal.signal(signal.SIGCHLD, worker_failed)
    try:
        with interrupt_on_termination(), pytest.raises(Terminated):
            try:
                _deliver(signal.SIGTERM)
            finally:  # the clean-up, while a child the same signal reached ends
                subprocess.run([sys.executable, "-c", ""], check=True)
                time.sleep(0.05)
        assert signal.getsignal(signal.SIGCHLD) is worker_failed  # DataLoaders after the run detect failures again
    finally:
        signal.signal(signal.SIGCHLD, previous)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_to_the_whole_process_group_ends_training_cleanly(forker: Forker, tmp_path: Path, name: str,
                                                                   code: int) -> None:
    """What a scheduler that signals every process of a job does, and Ctrl-C in a terminal: the loader's workers
    get the signal too. The exit code is the signal's, and stderr holds no traceback from a dying worker."""
    from helpers_train import write_images

    data = write_images(tmp_path / "data", classes=2, per_class=8, size=8)
    run = tmp_path / "run"
    err = tmp_path / "err.txt"
    argv = ["train", "-d", str(data), "-a", "cifar_resnet", "--arch-option", "depth=8", "--arch-option", "width=2",
            "-b", "2", "-j", "2", "--no-in-memory", "--image-size", "8", "--epochs", "100000", "--device", "cpu",
            "--output", str(run)]
    # its own session: the group signalled is the run's, not the fork server's or pytest's
    pid = forker.start(argv, os.devnull, err=err, session=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "metrics.jsonl").is_file():  # an epoch done: the workers are up and handing over
            assert forker.wait(pid, timeout=0.1) is None and time.monotonic() < deadline, err.read_text()[-3000:]
        os.killpg(pid, getattr(signal, name))
        assert forker.wait(pid, timeout=120, signal_name="SIGKILL") == code, err.read_text()[-3000:]
    finally:
        with contextlib.suppress(ProcessLookupError):  # workers left behind, if any
            os.killpg(pid, signal.SIGKILL)
        forker.wait(pid, timeout=0, signal_name="SIGKILL")
    text = err.read_text()
    assert "Traceback" not in text and "Exception ignored" not in text and "race condition" not in text, text
