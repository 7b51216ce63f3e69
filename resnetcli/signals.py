"""SIGTERM and SIGHUP handled like Ctrl-C: what a batch scheduler, `kill` or a closed terminal sends.

Inside `interrupt_on_termination()` those signals raise `Terminated`, a KeyboardInterrupt, so every
`except KeyboardInterrupt` / `finally` that cleans up after Ctrl-C cleans up after them too. The CLI boundary
exits with 128 + the signal's number (143 for SIGTERM, 129 for SIGHUP), as a shell reports a process the
signal killed; Ctrl-C stays 130.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: the signals treated like Ctrl-C (SIGHUP does not exist on Windows)
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by `signum`; exit_code is what a shell would report."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def _raise(signum: int, frame: FrameType | None) -> None:
    # once is enough: a second signal during the clean-up must not interrupt the clean-up itself
    for sig in TERMINATION_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def interrupt_on_termination() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Terminated (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in TERMINATION_SIGNALS}
    for sig in TERMINATION_SIGNALS:
        signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for a termination signal N."""
    return getattr(exc, "exit_code", 130)
