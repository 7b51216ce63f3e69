"""RUN/.lock: one process at a time writes a run folder, and "running" means exactly that the lock is held.

An OS lock (fcntl.flock) rather than a pid file: the kernel drops it when the process ends however it ends
(kill -9, power loss), so a dead run never looks alive and never blocks its own `--resume`. The file holds the
holder's pid, host and start time for the refusal message and `resnetcli runs`; it is never deleted (deleting
a lock file lets two processes lock two different files). Children forked while it is held (DataLoader
workers) close their copy at once: a worker that outlives a killed trainer must not keep the run locked.
Where flock is missing (Windows) nothing is locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from resnetcli.errors import UsageError
from resnetcli.runs import RunLayout

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: descriptors of the locks this process holds, closed in forked children
_HELD: set[int] = set()


def _close_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


def _try_lock(fd: int, shared: bool = False) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_soon(fd: int) -> bool:
    # a few tries: `holder` (resnetcli runs) takes the lock for an instant to look
    for _ in range(10):
        if _try_lock(fd):
            return True
        time.sleep(0.05)
    return False


def _describe(info: dict[str, Any]) -> str:
    who = f"process {info.get('pid', '?')} on {info.get('host', '?')}"
    return who + (f" (since {info['started']})" if info.get("started") else "")


def _read(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def acquire(layout: RunLayout) -> None:
    """Lock the run folder (created if missing) until `release` or the end of the process; UsageError naming
    the holder if another process has it."""
    if fcntl is None:  # pragma: no cover
        return
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    if not _lock_soon(fd):
        holder = _describe(_read(fd))
        os.close(fd)
        raise UsageError(f"{layout.run_dir} is being written by {holder}; wait for it to end, or train into "
                         "another --output")
    _HELD.add(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "started": datetime.now(UTC).isoformat(timespec="seconds")}).encode(), 0)


def release() -> None:
    """Unlock every run folder this process locked (the file stays: see the module's docstring)."""
    for fd in list(_HELD):
        _HELD.discard(fd)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor drops the lock


def holder(layout: RunLayout) -> dict[str, Any] | None:
    """Who holds the run's lock now ({pid, host, started}), or None when no process writes the run."""
    if fcntl is None or not layout.lock.is_file():  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(layout.lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not _try_lock(fd, shared=True):
            return _read(fd)
        return None  # the lock taken just to look is released with the descriptor below
    finally:
        os.close(fd)


def is_running(layout: RunLayout) -> bool:
    """Is a training process writing this run now?"""
    return holder(layout) is not None
