"""Run loggers as plugins (entry-point group resnetcli.loggers): csv always, tensorboard, mlflow, a plugin's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_cli import one_error_line
from helpers_train import run_engine, write_images
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.registry import registry

PLUGIN = '''
from resnetcli.engine.callbacks import Callback

STEPS = []


class Boom(Callback):
    def __init__(self, where):
        self.where = where
        self.calls = 0

    def on_step(self, state, step, snapshot):
        STEPS.append(step)
        if self.where == "on_step":
            raise RuntimeError("step hook broke")

    def on_train_start(self, state):
        if self.where == "on_train_start":
            raise RuntimeError("cannot reach the tracking server")

    def on_epoch_end(self, state, row):
        self.calls += 1
        if self.where == "on_epoch_end":
            raise OSError("disk full")

def boom_build(layout):
    raise ValueError("no credentials")

def boom_start(layout):
    return Boom("on_train_start")

def boom_epoch(layout):
    return Boom("on_epoch_end")

def boom_step(layout):
    return Boom("on_step")

def steps(layout):
    return Boom("nowhere")
'''


@pytest.fixture
def boom_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A third-party distribution declaring three failing loggers, found through sys.path's metadata."""
    site = tmp_path / "site"
    dist = site / "boomlog-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "boomlog.py").write_text(PLUGIN)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: boomlog\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[resnetcli.loggers]\nboom-build = boomlog:boom_build\nboom-start = boomlog:boom_start\n"
        "boom-epoch = boomlog:boom_epoch\nboom-step = boomlog:boom_step\nsteps = boomlog:steps\n")
    monkeypatch.syspath_prepend(str(site))
    registry.cache_clear()
    yield
    registry.cache_clear()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("loggers") / "data")


@pytest.mark.parametrize("name", ["boom-build", "boom-start", "boom-epoch", "boom-step"])
def test_a_failing_logger_costs_one_warning_and_training_finishes(boom_plugin: None, data: Path, tmp_path: Path,
                                                                  name: str) -> None:
    run = tmp_path / "run"
    result = run_engine(data, run, epochs=3, loggers=[name])
    assert result.epochs_run == 3 and (run / "checkpoints" / "last.pt").is_file()
    warnings = [line for line in (run / "train.log").read_text().splitlines() if f"logger '{name}' failed" in line]
    assert len(warnings) == 1, warnings
    assert " WARNING " in warnings[0]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3  # csv is on whatever --logger says


def test_a_plugin_logger_receives_every_event_a_callback_does(boom_plugin: None, data: Path, tmp_path: Path) -> None:
    """on_step too (mid-epoch checkpoints use it): after each optimizer step, numbered within its epoch."""
    import boomlog  # type: ignore[import-not-found]

    boomlog.STEPS.clear()
    run_engine(data, tmp_path / "run", epochs=2, max_steps=2, loggers=["steps"])
    assert boomlog.STEPS == [1, 2, 1, 2]


def test_mlflow_logger_writes_params_and_every_epochs_metrics_to_its_local_store(data: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    run_engine(data, run, epochs=2, loggers=["mlflow"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    client = MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    run_id = (run / "mlruns" / "resnetcli_run_id").read_text().strip()
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.params["arch"] == "resnet20" and logged.data.params["epochs"] == "2"
    history = client.get_metric_history(run_id, "val_acc")
    assert [(m.step, m.value) for m in history] == [(r["epoch"], r["val_acc"]) for r in rows]
    assert [m.value for m in client.get_metric_history(run_id, "train_loss")] == [r["train_loss"] for r in rows]
    assert not (run / "tensorboard").exists()  # --logger mlflow alone: no tensorboard


def test_default_loggers_are_csv_and_tensorboard(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_engine(data, run, epochs=1, tensorboard=True)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "metrics.csv").is_file() and not (run / "mlruns").exists()


def test_an_unknown_logger_is_one_line_listing_the_known_ones(data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--arch", "resnet20", "--logger", "tensorbord",
                                      "--output", str(tmp_path / "run")])
    line = one_error_line(result, 2)
    assert "unknown logger 'tensorbord'" in line and "did you mean tensorboard" in line and "mlflow" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("end", "expected"), [("done", [1, 4, 7, 10]), ("early stop", [1, 4, 5]),
                                              ("Ctrl-C", [1, 4, 5]), ("Ctrl-C right after a drawing", [1, 4])])
def test_plot_is_redrawn_after_the_first_epoch_then_at_most_every_30_s_and_after_the_last(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, end: str, expected: list[int]) -> None:
    from types import SimpleNamespace

    from resnetcli.engine import callbacks

    drawn: list[int] = []
    monkeypatch.setattr(callbacks, "write_plot", lambda path, rows: drawn.append(rows[-1]["epoch"]))
    clock = [0.0]
    monkeypatch.setattr(callbacks, "monotonic", lambda: clock[0])
    rows: list[dict] = []
    plot = callbacks.Plot(tmp_path / "plot.png", SimpleNamespace(log=SimpleNamespace(rows=rows)))
    state = SimpleNamespace(config=SimpleNamespace(epochs=10), stop_reason=None)
    stop = {"early stop": 5, "Ctrl-C": 5, "Ctrl-C right after a drawing": 4}.get(end)
    plot.on_train_start(state)
    for epoch in range(1, 11):  # 10 s an epoch
        clock[0] = 10.0 * (epoch - 1)
        rows.append({"epoch": epoch})
        if end == "early stop" and epoch == stop:  # a callback before this one ended the run here
            state.stop_reason = "no better val acc for 3 epochs"
        plot.on_epoch_end(state, rows[-1])
        if epoch == stop:
            break
    plot.on_train_end(state)  # the loop's `finally`, however the run ended
    assert drawn == expected  # 0 s; 30 s after it; 60 s; the last epoch, or the one the run ended in
    assert callbacks.PLOT_EVERY_S == 30.0


def test_a_resumed_run_with_nothing_new_does_not_redraw(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from resnetcli.engine import callbacks

    drawn: list[int] = []
    monkeypatch.setattr(callbacks, "write_plot", lambda path, rows: drawn.append(len(rows)))
    plot = callbacks.Plot(tmp_path / "plot.png", SimpleNamespace(log=SimpleNamespace(rows=[{"epoch": 1}] * 3)))
    state = SimpleNamespace(config=SimpleNamespace(epochs=3), stop_reason=None)
    plot.on_train_start(state)
    plot.on_train_end(state)
    assert drawn == []


def test_plot_png_has_a_learning_rate_panel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    from resnetcli.engine.bookkeeping import write_plot

    drawn: list[Figure] = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (drawn.append(fig), save(fig, *a, **k))[1])
    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_acc": 10 * e, "val_acc": 9 * e,
             "val_top5": 20 * e, "val_k": 4, "lr": 0.1 - 0.03 * (e - 1), "lr_end": 0.1 - 0.03 * e}
            for e in (1, 2, 3)]
    assert write_plot(tmp_path / "plot.png", rows) and (tmp_path / "plot.png").stat().st_size > 0
    assert [line.get_label() for line in drawn[0].axes[1].get_lines()] == ["train acc", "val acc", "val top-4"]
    lr_axis = drawn[0].axes[2]
    assert lr_axis.get_ylabel() == "learning rate"
    x, y = lr_axis.get_lines()[0].get_data()
    assert list(x) == [0, 1, 1, 2, 2, 3]  # each epoch from its start to its end
    assert list(y) == pytest.approx([0.1, 0.07, 0.07, 0.04, 0.04, 0.01])


def test_a_resumed_run_continues_its_mlflow_run(data: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    run_engine(data, run, epochs=1, loggers=["mlflow"])
    first = (run / "mlruns" / "resnetcli_run_id").read_text().strip()
    run_engine(data, None, epochs=2, resume=str(run), loggers=["mlflow"])
    assert (run / "mlruns" / "resnetcli_run_id").read_text().strip() == first
    client = MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    assert [m.step for m in client.get_metric_history(first, "train_loss")] == [1, 2]
    assert client.get_run(first).info.status == "FINISHED"


def test_overwrite_leaves_nothing_of_the_old_run_to_be_reported_as_the_new_one(data: Path, tmp_path: Path) -> None:
    """--overwrite deletes the MLflow store and what test, export and report wrote from the old weights."""
    from mlflow.tracking import MlflowClient

    from resnetcli.runs import RunLayout

    run = tmp_path / "run"
    layout = RunLayout(run)
    run_engine(data, run, epochs=1, loggers=["mlflow"])
    old = (layout.mlruns / "resnetcli_run_id").read_text().strip()
    for stale in (layout.eval_dir("test") / "metrics.json", layout.export / "model.onnx", layout.report):
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_text("the old run's")
    (run / "eval_notes.txt").write_text("yours")  # not a folder `test` writes: kept
    run_engine(data, run, epochs=1, loggers=["mlflow"], overwrite=True)
    new = (layout.mlruns / "resnetcli_run_id").read_text().strip()
    client = MlflowClient(tracking_uri=layout.mlruns.resolve().as_uri())
    experiment = client.get_experiment_by_name("resnetcli")
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id])] == [new] and new != old
    assert not layout.eval_dir("test").exists() and not layout.export.exists() and not layout.report.exists()
    assert layout.last.is_file() and layout.config.is_file() and (run / "eval_notes.txt").read_text() == "yours"


def test_the_guard_forwards_every_event_a_callback_has() -> None:
    from resnetcli.engine.callbacks import Callback
    from resnetcli.loggers import Guarded

    events = {name for name in vars(Callback) if name.startswith("on_")}
    assert events and events <= set(vars(Guarded)), events - set(vars(Guarded))


def test_an_early_stopped_run_is_finished_in_mlflow(data: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    result = run_engine(data, run, epochs=4, loggers=["mlflow"], early_stop=1, early_stop_min_delta=100.0)
    assert result.epochs_run == 2 and result.stop_reason  # nothing improves by 100 points: stopped after epoch 2
    run_id = (run / "mlruns" / "resnetcli_run_id").read_text().strip()
    assert MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri()).get_run(run_id).info.status == "FINISHED"
