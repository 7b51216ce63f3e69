"""Run loggers, registered under the `resnetcli.loggers` entry-point group (csv, tensorboard, mlflow, a plugin's).

A logger entry is `build(layout: RunLayout) -> engine.callbacks.Callback`: it receives the run's events
(on_train_start ... on_train_end) like any callback. `csv` (metrics.csv + metrics.jsonl) is always on, first,
and unguarded: resume, the plot and `resnetcli runs` read its files. Every other logger is guarded: one that
fails, when it is built or in any event, costs one warning and is switched off; training goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resnetcli.engine.callbacks import Callback
from resnetcli.engine.config import ALWAYS_LOGGER
from resnetcli.registry import registry

if TYPE_CHECKING:
    from resnetcli.engine.config import TrainConfig
    from resnetcli.engine.partial import Snapshot
    from resnetcli.engine.state import TrainState
    from resnetcli.runs import RunLayout


def logger_names(config: TrainConfig) -> list[str]:
    """config.loggers (csv first, once each: the config sees to it) less tensorboard when `tensorboard: false`."""
    return [name for name in config.loggers if config.tensorboard or name != "tensorboard"]


def build_loggers(config: TrainConfig, layout: RunLayout, warn: Any) -> list[Callback]:
    """The run's loggers, csv first; `warn(message)` reports a logger that could not be built."""
    loggers: list[Callback] = []
    for name in logger_names(config):
        if name == ALWAYS_LOGGER:
            loggers.append(registry("loggers").build(name, layout, expect=Callback))
            continue
        try:
            built = registry("loggers").build(name, layout, expect=Callback)
        except Exception as exc:  # a logger never stops training, not even when it cannot be built
            warn(f"logger '{name}' failed to start ({' '.join(str(exc).split())}); the run goes on without it")
            continue
        loggers.append(Guarded(name, built))
    return loggers


class Guarded(Callback):
    """A logger whose first failure is one warning and switches it off for the rest of the run."""

    def __init__(self, name: str, inner: Callback) -> None:
        self.name = name
        self.inner = inner
        self.failed = False

    def _call(self, state: TrainState, event: str, *args: Any) -> None:
        if self.failed:
            return
        try:
            getattr(self.inner, event)(state, *args)
        except Exception as exc:  # a plugin may raise anything; training must not care
            self.failed = True
            state.logger.warning(f"logger '{self.name}' failed in {event} ({type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())}); it is off for the rest of this run")

    def on_train_start(self, state: TrainState) -> None:
        self._call(state, "on_train_start")

    def on_epoch_start(self, state: TrainState, epoch: int) -> None:
        self._call(state, "on_epoch_start", epoch)

    def on_progress(self, state: TrainState, steps: int, loss: float, acc: float) -> None:
        self._call(state, "on_progress", steps, loss, acc)

    def on_step(self, state: TrainState, step: int, snapshot: Snapshot) -> None:
        self._call(state, "on_step", step, snapshot)

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        self._call(state, "on_epoch_end", row)

    def on_train_end(self, state: TrainState) -> None:
        self._call(state, "on_train_end")
