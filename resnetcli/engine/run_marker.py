"""RUN/running.json: written when training starts and removed when it ends, so `resnetcli runs` can tell a
run in progress from one that stopped. A run killed outright (kill -9, power loss) leaves the file behind;
its process id then names no live process, and the run reads as interrupted.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from resnetcli.engine.callbacks import Callback
from resnetcli.io import write_json
from resnetcli.runs import RunLayout

if TYPE_CHECKING:
    from resnetcli.engine.state import TrainState


class RunMarker(Callback):
    def __init__(self, layout: RunLayout) -> None:
        self.path = layout.running

    def on_train_start(self, state: TrainState) -> None:
        write_json(self.path, {"pid": os.getpid(), "host": socket.gethostname(),
                               "started": datetime.now(UTC).isoformat(timespec="seconds")})

    def on_train_end(self, state: TrainState) -> None:
        self.path.unlink(missing_ok=True)


def is_running(layout: RunLayout) -> bool:
    """Is a training process writing this run now? (Another host's process is taken at its word.)"""
    try:
        marker = json.loads(layout.running.read_text(encoding="utf-8"))
        pid, host = int(marker["pid"]), str(marker["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
