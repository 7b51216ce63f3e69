"""MLflow: the run's config as params and every epoch's metrics, in a local file store under RUN/mlruns
(`pip install 'resnetcli[mlflow]'`; `mlflow ui --backend-store-uri RUN/mlruns` shows it).

A resumed run continues the same MLflow run (its id is kept in RUN/mlruns/resnetcli_run_id); the epochs a
resume redoes are logged again at the same steps.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from resnetcli.engine.callbacks import Callback
from resnetcli.errors import UsageError
from resnetcli.io import write_text
from resnetcli.runs import RunLayout

if TYPE_CHECKING:
    from resnetcli.engine.state import TrainState

EXPERIMENT = "resnetcli"


class MLflowLogger(Callback):
    def __init__(self, layout: RunLayout) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise UsageError("the mlflow logger needs mlflow: pip install 'resnetcli[mlflow]'") from None
        self.store = layout.mlruns
        self.id_file = self.store / "resnetcli_run_id"
        # mlflow 3 keeps the file store only on request; a local folder per run needs no database server
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = self.store.resolve().as_uri()
        if not self.store.is_dir():  # mlflow lays a store's folder out once per URI and process, and caches it:
            from mlflow.store.tracking.file_store import FileStore  # lay it out again after --overwrite deleted it

            FileStore(uri)
        self.client = MlflowClient(tracking_uri=uri)
        self.run_id: str | None = None

    def on_train_start(self, state: TrainState) -> None:
        from mlflow.entities import Param

        if state.resumed_from is not None and self.id_file.is_file():
            self.run_id = self.id_file.read_text(encoding="utf-8").strip()
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(EXPERIMENT)
        run = self.client.create_run(experiment_id, run_name=state.run_dir.name)
        self.run_id = run.info.run_id
        write_text(self.id_file, self.run_id + "\n")
        params = [Param(key, str(value)[:6000]) for key, value in sorted(state.config.to_dict().items())]
        self.client.log_batch(self.run_id, params=params)

    def on_epoch_end(self, state: TrainState, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        assert self.run_id is not None
        now = _millis()
        metrics = [Metric(key, float(value), now, int(row["epoch"])) for key, value in row.items()
                   if key != "epoch" and isinstance(value, (int, float)) and value == value]
        self.client.log_batch(self.run_id, metrics=metrics)

    def on_train_end(self, state: TrainState) -> None:
        if self.run_id is not None:
            finished = state.epoch >= state.config.epochs or state.stop_reason is not None  # or stopped early
            self.client.set_terminated(self.run_id, status="FINISHED" if finished else "KILLED")


def _millis() -> int:
    import time

    return int(time.time() * 1000)


def mlflow(layout: RunLayout) -> MLflowLogger:
    """MLflow: config as params, epoch metrics, in a local file store under RUN/mlruns (needs the mlflow extra)."""
    return MLflowLogger(layout)
