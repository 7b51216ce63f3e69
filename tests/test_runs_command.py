"""`resnetcli runs`: the table of runs (state, epochs, accuracies) and `--compare A B`, on two tiny real runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers_train import run_engine, write_images
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine import trainer
from resnetcli.runs import RunLayout

runner = CliRunner()
ODD = "b[red]eta"  # a run name rich would read as markup


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/alpha: 2 of 2 epochs, then tested; runs/b[red]eta: stopped by Ctrl-C in epoch 2 of 3 (other lr)."""
    root = tmp_path_factory.mktemp("runs_command")
    data = root / "data"
    write_images(data / "train", per_class=4)
    write_images(data / "test", per_class=2, seed=1)
    runs = root / "runs"
    run_engine(data, runs / "alpha", epochs=2)
    result = runner.invoke(app, ["test", str(runs / "alpha"), "--split", "test", "--device", "cpu", "-j", "0"])
    assert result.exit_code == 0, result.output

    real_epoch = trainer.train_epoch

    def interrupted(*args: object, epoch: int, **kwargs: object) -> object:
        if epoch == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, epoch=epoch, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "train_epoch", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_engine(data, runs / ODD, epochs=3, lr=0.05)
    os.utime(runs / ODD / "metrics.jsonl", (2e9, 2e9))  # newer than alpha, whatever the clock did
    return runs


def _json(args: list[str]) -> object:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_runs_lists_both_newest_first_with_their_state_epochs_and_accuracies(runs: Path) -> None:
    listed = _json(["runs", str(runs), "--format", "json"])
    assert [r["name"] for r in listed] == [ODD, "alpha"]
    beta, alpha = listed
    rows = [json.loads(line) for line in (runs / "alpha" / "metrics.jsonl").read_text().splitlines()]
    assert alpha["state"] == "finished" and (alpha["epochs_done"], alpha["epochs_planned"]) == (2, 2)
    assert alpha["best_val_acc"] == max(r["val_acc"] for r in rows)
    assert alpha["last_val_acc"] == rows[-1]["val_acc"]
    tested = json.loads((runs / "alpha" / "eval_test" / "metrics.json").read_text())
    assert alpha["test_acc"] == tested["top1"]
    assert alpha["arch"] == "resnet20" and alpha["data"].endswith("data")
    assert beta["state"] == "interrupted" and (beta["epochs_done"], beta["epochs_planned"]) == (1, 3)
    assert beta["test_acc"] is None


def test_a_run_whose_lock_is_held_is_running(runs: Path) -> None:
    from resnetcli.engine import lock

    lock.acquire(RunLayout(runs / ODD))  # as train does while it writes the run
    try:
        assert _json(["runs", str(runs), "-f", "json"])[0]["state"] == "running"
    finally:
        lock.release()
    assert _json(["runs", str(runs), "-f", "json"])[0]["state"] == "interrupted"


def test_the_table_shows_run_names_literally(runs: Path) -> None:
    result = runner.invoke(app, ["runs", str(runs)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert ODD in result.stdout and "alpha" in result.stdout
    assert "finished" in result.stdout and "interrupted" in result.stdout and "1/3" in result.stdout


def test_compare_shows_the_config_differences_and_both_curves(runs: Path) -> None:
    compared = _json(["runs", str(runs), "--compare", "alpha", ODD, "--format", "json"])
    assert compared["config_diff"]["lr"] == {"a": 0.1, "b": 0.05}
    assert compared["config_diff"]["epochs"] == {"a": 2, "b": 3}
    assert "output" not in compared["config_diff"]  # where a run went is not a difference in how it trained
    assert [row["epoch"] for row in compared["epochs"]] == [1, 2]
    alpha_rows = [json.loads(line) for line in (runs / "alpha" / "metrics.jsonl").read_text().splitlines()]
    assert compared["epochs"][1]["a"]["val_acc"] == alpha_rows[1]["val_acc"]
    assert compared["epochs"][1]["b"]["val_acc"] is None  # beta never finished epoch 2
    table = runner.invoke(app, ["runs", str(runs), "--compare", "alpha", ODD], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "lr" in table.stdout and "0.05" in table.stdout and f"{ODD} (B)" in table.stdout


def test_an_unknown_run_or_folder_is_one_error_line(runs: Path, tmp_path: Path) -> None:
    from helpers_cli import one_error_line

    assert "no run 'gamma'" in one_error_line(runner.invoke(app, ["runs", str(runs), "--compare", "alpha", "gamma"]),
                                              2)
    assert "is not a folder of runs" in one_error_line(runner.invoke(app, ["runs", str(tmp_path / "none")]), 2)


def test_compare_lists_option_maps_key_by_key(runs: Path) -> None:
    from resnetcli.runs_table import RunInfo, config_diff

    def info(config: dict[str, object]) -> RunInfo:
        return RunInfo(name="x", path="x", arch=None, data=None, epochs_done=0, epochs_planned=None,
                       best_val_acc=None, last_val_acc=None, test_acc=None, state="finished", when=None,
                       config=config)

    a = info({"lr": 0.1, "aug_options": {"padding": 4, "reflect": True}, "output": "runs/a"})
    b = info({"lr": 0.1, "aug_options": {"padding": 2, "reflect": True}, "output": "runs/b"})
    assert config_diff(a, b) == {"aug_options.padding": (4, 2)}


def test_listing_runs_imports_no_torch(runs: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from resnetcli.cli import app; from typer.testing import CliRunner; "
            f"r = CliRunner().invoke(app, ['runs', {str(runs)!r}]); assert r.exit_code == 0, r.output; "
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_compare_plot_draws_both_runs_curves_into_a_png(runs: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import math

    from resnetcli import plots

    drawn = []
    real_save = plots.save_png

    def keep(fig: object, path: Path) -> None:
        drawn.append(fig)
        real_save(fig, path)  # type: ignore[arg-type]

    monkeypatch.setattr(plots, "save_png", keep)
    png = tmp_path / "compare.png"
    result = runner.invoke(app, ["runs", str(runs), "--compare", "alpha", ODD, "--plot", str(png), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config_diff"]["lr"] == {"a": 0.1, "b": 0.05}  # stdout still pure JSON
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["compare.png"]
    loss, acc = drawn[0].axes
    lines = {line.get_label(): list(line.get_ydata()) for line in acc.get_lines()}
    alpha = [json.loads(line)["val_acc"] for line in (runs / "alpha" / "metrics.jsonl").read_text().splitlines()]
    assert lines["A alpha: val acc"] == alpha
    assert math.isnan(lines[f"B {ODD}: val acc"][1])  # beta never finished epoch 2: a gap, not a zero
    assert len(loss.get_lines()) == 4


def test_plot_without_compare_is_one_error_line(runs: Path, tmp_path: Path) -> None:
    from helpers_cli import one_error_line

    result = runner.invoke(app, ["runs", str(runs), "--plot", str(tmp_path / "x.png")])
    assert "give --compare too" in one_error_line(result, 2)
    assert not (tmp_path / "x.png").exists()


def test_an_empty_runs_folder_is_named_inert(tmp_path: Path) -> None:
    empty = tmp_path / "e\x1b[31m[red]x"
    empty.mkdir()
    result = runner.invoke(app, ["runs", str(empty)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "no runs under" in result.stdout
    assert "e\\x1b[31m[red]x/" in result.stdout


def test_a_run_with_odd_metrics_values_does_not_stop_the_listing(runs: Path, tmp_path: Path) -> None:
    """A metrics.jsonl value that is not a number (a hand edit, another tool) shows as '-', in the list and in
    --compare; it was a traceback that hid every other run."""
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(runs / "alpha", root / "alpha")
    odd = root / "odd"
    odd.mkdir()
    (odd / "config.yaml").write_text("arch: resnet20\nepochs: 2\n")
    (odd / "metrics.jsonl").write_text('{"epoch": 1, "val_acc": "high", "train_loss": true}\n'
                                       '{"epoch": 2, "val_acc": [1], "train_acc": 50.0}\n')
    listed = {r["name"]: r for r in _json(["runs", str(root), "--format", "json"])}  # type: ignore[union-attr]
    assert listed["odd"]["last_val_acc"] is None and listed["odd"]["best_val_acc"] is None
    assert listed["odd"]["epochs_done"] == 2 and listed["alpha"]["best_val_acc"] is not None
    table = runner.invoke(app, ["runs", str(root)])
    assert table.exit_code == 0 and "odd" in table.stdout, table.output
    compared = runner.invoke(app, ["runs", str(root), "--compare", "alpha", "odd", "--plot", str(tmp_path / "c.png")])
    assert compared.exit_code == 0, compared.output
