"""SIGTERM and SIGHUP handled like Ctrl-C: what a batch scheduler, `kill` or a closed terminal sends.

Inside `interrupt_on_termination()` those signals raise `Terminated`, a KeyboardInterrupt, so every
`except KeyboardInterrupt` / `finally` that cleans up after Ctrl-C cleans up after them too. The CLI boundary
exits with 128 + the signal's number (143 for SIGTERM, 129 for SIGHUP), as a shell reports a process the
signal killed; Ctrl-C stays 130.

A signal that arrives inside `hold()` (a DataLoader handing a batch over: `held()`) is raised when the block
ends, not in the middle of it: an exception raised inside the main process's half of the file-descriptor
hand-over with a worker cuts the connection, and the worker prints that as a traceback. A block that ends
with an error while a signal is held raises the stop instead. A second signal while one is held is raised at
once, so a hung block can still be stopped. After a stop, SIGCHLD does nothing until the block ends: a loader
worker killed by the same signal must not raise torch's "worker killed" error mid clean-up (the block's
clean-up ends the workers, `Loader.close`, before torch's handler is back).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any, TypeVar

#: the signals treated like Ctrl-C (SIGHUP does not exist on Windows)
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

T = TypeVar("T")


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by `signum`; exit_code is what a shell would report."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


class _State:
    installed = False  # inside interrupt_on_termination(): hold() defers only where our handler runs
    holding = 0
    pending: int | None = None
    received: int | None = None  # the first stop signal the block got, even one whose exception was lost
    sigchld: Any = None  # SIGCHLD's handler before a stop muted it, restored when the block ends

    @classmethod
    def reset(cls, *, installed: bool) -> None:
        cls.installed, cls.holding, cls.pending, cls.received = installed, 0, None, None


def _interruption(signum: int) -> KeyboardInterrupt:
    """What a stop by `signum` raises: KeyboardInterrupt for Ctrl-C, else Terminated."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _stop(signum: int) -> None:
    # once is enough: a second termination signal during the clean-up must not interrupt the clean-up itself
    for sig in TERMINATION_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "SIGCHLD") and _State.sigchld is None:
        # a signal sent to the whole process group (a scheduler, `kill -- -PGID`) kills the loader's workers too,
        # and torch's SIGCHLD handler would raise "worker killed by signal" in the middle of the clean-up (a
        # Python no-op, not SIG_DFL: a SIGCHLD already caught would be reported as "ignored due to race condition")
        _State.sigchld = signal.getsignal(signal.SIGCHLD)
        signal.signal(signal.SIGCHLD, _child_ended)
    raise _interruption(signum)


def _forked_child() -> None:
    # a process forked inside the block (a DataLoader or preprocess worker, often from inside a hold) is not the
    # one that asked for deferred stops: it gets Python's defaults, so Ctrl-C and SIGTERM end it as before
    if _State.installed:
        _State.reset(installed=False)
        _State.sigchld = None
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in TERMINATION_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked_child)


def _child_ended(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD after a stop: nothing to do (see _stop)."""


def _handle(signum: int, frame: FrameType | None) -> None:
    if _State.received is None:
        _State.received = signum
    if _State.holding and _State.pending is None:
        _State.pending = signum
        return
    held, _State.pending = _State.pending, None
    _stop(held if held is not None else signum)  # the first signal is the one the process was asked to stop by


@contextlib.contextmanager
def interrupt_on_termination() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Terminated and Ctrl-C KeyboardInterrupt, each deferred to the
    end of a `hold()` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread() or _State.installed:
        yield
        return
    handled = (signal.SIGINT, *TERMINATION_SIGNALS)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in handled:
        signal.signal(sig, _handle)
    _State.reset(installed=True)
    try:
        yield
    except Exception as exc:
        # the stop's own exception can be lost (raised inside a __del__ or a weakref callback, it is only
        # printed) and the same signal, sent to the whole process group, killed the loader's workers: their
        # "exited unexpectedly" is then a consequence of the stop, not the error to report
        if _State.received is None:
            raise
        raise _interruption(_State.received) from exc
    finally:
        _State.reset(installed=False)
        if _State.sigchld is not None:
            previous[signal.SIGCHLD], _State.sigchld = _State.sigchld, None
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def hold() -> Iterator[None]:
    """Defer a signal that arrives inside the block to its end (see the module's doc)."""
    _State.holding += 1
    try:
        yield
    finally:
        _State.holding -= 1
        # also when the block failed: a signal sent to the whole process group (Ctrl-C, a closed terminal, a
        # batch scheduler) stops the loader's workers too, and the block's "worker exited unexpectedly" is
        # then a consequence of the stop, not the reason to report
        if not _State.holding and _State.pending is not None:
            signum, _State.pending = _State.pending, None
            _stop(signum)


_END = object()


def held(start: Callable[[], Iterable[T]]) -> Iterator[T]:
    """The items of the iterable `start()` returns, it and each item fetched inside `hold()`."""
    with hold():
        iterator = iter(start())
    while True:
        with hold():
            item = next(iterator, _END)
        if item is _END:
            return
        yield item  # type: ignore[misc]


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for a termination signal N."""
    return getattr(exc, "exit_code", 130)
