"""`resnetcli test`: a checkpoint trained in this session, evaluated; outputs agree with the report; bad input
refused."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_evaluate import CLASSES, PER_SPLIT, TrainedRun, train_once, write_tree
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine.checkpoint import load_checkpoint, save_checkpoint
from resnetcli.errors import CheckpointError
from resnetcli.inference.data import label_map
from resnetcli.inference.metrics import compute_metrics
from resnetcli.inference.restore import restore
from resnetcli.inference.run import forward_log_probs

runner = CliRunner()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_once(tmp_path_factory)


def _one_error_line(result, code: int) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    return lines[0]


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_no_arguments_tests_the_latest_run_and_outputs_agree(
    trained: TrainedRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(trained.workdir)  # runs/ is found relative to the working folder, like seed 002's test.py
    result = runner.invoke(app, ["test", "--workers", "0"])
    assert result.exit_code == 0, result.output
    out = trained.run / "eval_test"
    for name in ("metrics.json", "predictions.csv", "confusion_matrix.csv", "confusion_matrix.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    n = PER_SPLIT["test"] * len(CLASSES)
    assert metrics["split"] == "test" and metrics["samples"] == n
    assert metrics["checkpoint"].endswith("last.pt")
    assert metrics["classes"] == sorted(CLASSES)

    cm = np.array(metrics["confusion_matrix"])
    assert cm.sum() == n
    assert metrics["correct"] == int(np.trace(cm))
    assert metrics["unit"] == "percent" and metrics["top1"] == pytest.approx(100 * np.trace(cm) / n)
    assert [row["support"] for row in metrics["per_class"]] == cm.sum(1).tolist()
    assert metrics["k"] == 3 and metrics["topk"] == pytest.approx(100.0)  # 3 classes: top-3 holds every class

    # the CSV twin of the confusion matrix
    rows = _read_csv(out / "confusion_matrix.csv")
    assert rows[0][1:] == metrics["classes"]
    assert [[int(v) for v in r[1:]] for r in rows[1:]] == cm.tolist()

    # predictions.csv: one row per image, consistent with the matrix and the accuracy
    rows = _read_csv(out / "predictions.csv")
    header, body = rows[0], rows[1:]
    assert header[:4] == ["ident", "true_class", "predicted_class", "correct"]
    assert len(body) == n
    assert sum(int(r[3]) for r in body) == metrics["correct"]
    index = {c: i for i, c in enumerate(metrics["classes"])}
    rebuilt = np.zeros_like(cm)
    for r in body:
        rebuilt[index[r[1]], index[r[2]]] += 1
        assert r[2] == r[4]  # the prediction is the top-1 class
        probs = [float(p) for p in r[5::2]]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert (rebuilt == cm).all()
    # idents are paths relative to the data root: test/<class>/<file>
    assert all(r[0].split("/")[:2] == ["test", r[1]] for r in body)

    # the printed report says the same numbers
    text = result.output
    assert f"test accuracy: top-1 {metrics['top1']:.2f}% ({metrics['correct']}/{n})" in text
    assert f"top-3 {metrics['topk']:.2f}%, loss {metrics['loss']:.4f}" in text and "top-5" not in text
    for row in metrics["per_class"]:
        assert re.search(rf"{re.escape(row['class'])}\s*│\s*{row['precision']:.2f}%", text), row
    assert "most confused" in text or metrics["most_confused"] == []


def test_checkpoint_path_split_and_output(trained: TrainedRun, tmp_path: Path) -> None:
    best = trained.run / "checkpoints" / "best.pt"
    out = tmp_path / "report"
    result = runner.invoke(app, ["test", "--checkpoint", str(best), "--split", "val", "--output", str(out),
                                 "--batch-size", "2", "--workers", "0"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "val" and metrics["samples"] == PER_SPLIT["val"] * len(CLASSES)
    assert metrics["checkpoint"] == str(best)
    assert len(_read_csv(out / "predictions.csv")) == metrics["samples"] + 1
    # the same checkpoint given as RUN_DIR + --which
    again = runner.invoke(app, ["test", str(trained.run), "--which", "best", "--split", "val", "--output",
                                str(tmp_path / "again"), "--workers", "0"])
    assert again.exit_code == 0, again.output
    again_metrics = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again_metrics["confusion_matrix"] == metrics["confusion_matrix"]


def test_tta_flip_averages_image_and_mirror(trained: TrainedRun, tmp_path: Path) -> None:
    restored = restore(trained.last)
    x = torch.randn(4, 3, 16, 16)
    with torch.inference_mode():
        plain = torch.softmax(restored.model(x), 1)
        mirror = torch.softmax(restored.model(x.flip(3)), 1)
    tta = forward_log_probs(restored.model, x, tta_flip=True).exp()
    assert torch.allclose(tta, (plain + mirror) / 2, atol=1e-5)
    assert not torch.allclose(plain, mirror, atol=1e-4)  # the check above is not vacuous

    result = runner.invoke(app, ["test", str(trained.run), "--tta-flip", "--output", str(tmp_path), "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "metrics.json").read_text())["tta_flip"] is True


def test_restore_rebuilds_from_the_checkpoint_alone(trained: TrainedRun) -> None:
    restored = restore(trained.last)
    state = load_checkpoint(trained.last)
    assert restored.arch == "cifar_resnet" and restored.classes == sorted(CLASSES)
    assert restored.image_size == 16 and restored.channels == 3
    assert restored.mean == tuple(state["normalization"]["mean"])
    for key, value in restored.model.state_dict().items():
        assert torch.equal(value, state["model"][key]), key


def test_compute_metrics_by_hand() -> None:
    # 3 classes; rows of probs chosen so predictions are: a a b | b b | c a
    probs = np.array([
        [0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1], [0.3, 0.6, 0.1],
        [0.1, 0.2, 0.7], [0.5, 0.1, 0.4],
    ])
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    m = compute_metrics(probs, labels, ["a", "b", "c"], loss=0.5)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["top1"] == pytest.approx(500 / 7) and m["correct"] == 5  # percent
    a, b, c = m["per_class"]
    assert (a["precision"], a["recall"], a["support"]) == (pytest.approx(200 / 3), pytest.approx(200 / 3), 3)
    assert (b["precision"], b["recall"]) == (pytest.approx(200 / 3), pytest.approx(100.0))
    assert (c["precision"], c["recall"], c["f1"]) == (pytest.approx(100.0), pytest.approx(50.0), pytest.approx(200 / 3))
    assert [(p["true"], p["predicted"], p["count"]) for p in m["most_confused"]] == [("a", "b", 1), ("c", "a", 1)]
    assert m["k"] == 3 and m["topk"] == 100.0
    two = compute_metrics(probs[:, :2] / probs[:, :2].sum(1, keepdims=True), np.array([0, 0, 0, 1, 1, 1, 0]),
                          ["a", "b"], loss=0.1)
    assert two["k"] == 2


def test_label_map_compares_names() -> None:
    assert label_map(["a", "b", "c"], ["a", "b", "c"], Path("x.pt"), "d") == [0, 1, 2]
    assert label_map(["a", "b", "c"], ["c", "a", "b"], Path("x.pt"), "d") == [2, 0, 1]  # renumbered, same classes
    with pytest.raises(CheckpointError, match="only in the checkpoint: c; only in the data: z"):
        label_map(["a", "b", "c"], ["a", "b", "z"], Path("x.pt"), "d")


# ------------------------------------------------------------------------------------------ bad input


def test_truncated_checkpoint(trained: TrainedRun, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    data = trained.last.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    line = _one_error_line(runner.invoke(app, ["test", "--checkpoint", str(broken)]), 4)
    assert "truncated or corrupt" in line and str(broken) in line


def test_weights_of_another_architecture(trained: TrainedRun, tmp_path: Path) -> None:
    state = load_checkpoint(trained.last)
    state["arch"]["options"] = {"depth": 14, "width": 4}  # the stored weights are depth 8
    other = save_checkpoint(state, tmp_path / "other.pt")
    line = _one_error_line(runner.invoke(app, ["test", "--checkpoint", str(other)]), 4)
    assert "do not fit a 'cifar_resnet' network" in line and "missing" in line

    state["arch"] = {"name": "resnet18", "num_classes": 3, "in_channels": 3, "options": {}}
    other = save_checkpoint(state, tmp_path / "resnet18.pt")
    line = _one_error_line(runner.invoke(app, ["test", "--checkpoint", str(other)]), 4)
    assert "do not fit a 'resnet18' network" in line and "wrong shape" in line


def test_architecture_not_installed(trained: TrainedRun, tmp_path: Path) -> None:
    state = load_checkpoint(trained.last)
    state["arch"]["name"] = "resnet_from_an_uninstalled_plugin"
    other = save_checkpoint(state, tmp_path / "gone.pt")
    line = _one_error_line(runner.invoke(app, ["test", "--checkpoint", str(other)]), 4)
    assert "'resnet_from_an_uninstalled_plugin', which cannot be built here" in line


def test_classes_that_do_not_match_the_data(trained: TrainedRun, tmp_path: Path) -> None:
    other = write_tree(tmp_path / "other", classes=("red", "green shirt", "yellow"))
    line = _one_error_line(runner.invoke(app, ["test", str(trained.run), "--data", str(other)]), 4)
    assert "only in the checkpoint: blue,bag" in line and "only in the data: yellow" in line


def test_not_a_resnetcli_checkpoint(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    line = _one_error_line(runner.invoke(app, ["test", "--checkpoint", str(tmp_path / "foreign.pt")]), 4)
    assert "not a resnetcli checkpoint" in line


def test_no_runs_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_error_line(runner.invoke(app, ["test"]), 4)
    assert "no trained run found under runs/" in line
    line = _one_error_line(runner.invoke(app, ["test", "runs/nope"]), 4)
    assert "run folder runs/nope does not exist" in line


def test_training_data_moved_away(trained: TrainedRun, tmp_path: Path) -> None:
    data = shutil.copytree(trained.data, tmp_path / "images")
    state = load_checkpoint(trained.last)
    state["data"]["spec"] = str(data)
    moved = save_checkpoint(state, tmp_path / "moved.pt")
    shutil.rmtree(data)
    line = _one_error_line(runner.invoke(app, ["test", "--checkpoint", str(moved)]), 3)
    assert "pass --data SOURCE" in line


def test_unknown_split(trained: TrainedRun) -> None:
    line = _one_error_line(runner.invoke(app, ["test", str(trained.run), "--split", "holdout"]), 2)
    assert "train, val, test" in line


def test_relative_data_path_is_found_from_the_training_folder(
    trained: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    shutil.copytree(trained.data, project / "images")
    state = load_checkpoint(trained.last)
    state["data"]["spec"] = state["config"]["data"] = "images"  # as typed: `--data images --output runs/x`
    state["config"]["output"] = "runs/x"
    save_checkpoint(state, project / "runs" / "x" / "checkpoints" / "last.pt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["test", str(project / "runs" / "x"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((project / "runs" / "x" / "eval_test" / "metrics.json").read_text())
    assert metrics["samples"] == PER_SPLIT["test"] * len(CLASSES)


@pytest.mark.parametrize("where", ["under-a-file", "name-too-long"])
def test_an_output_folder_that_cannot_be_written_is_one_line(trained: TrainedRun, tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "report" if where == "under-a-file" else tmp_path / ("n" * 300)
    result = runner.invoke(app, ["test", str(trained.run), "-o", str(out), "--workers", "0"])
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot write the results to {out}: "), errors


def test_a_split_trained_on_is_refused_however_the_data_is_spelled(tmp_path: Path) -> None:
    """`--data data/` (a shell's completion), or a link to the data, is still the data trained on: after
    `--val-split none` its val images were trained on, and scoring them would measure memory."""
    from conftest import make_image_folder
    from helpers_train import run_engine

    data = tmp_path / "data"
    make_image_folder(data / "train", ["a", "b"], 10, 12)
    make_image_folder(data / "test", ["a", "b"], 3, 12, seed=1)
    run = tmp_path / "run"
    run_engine(data, run, val_split="none", epochs=1, max_steps=1)
    link = tmp_path / "link"
    link.symlink_to(data)
    for spelled in (f"{data}/", str(link)):
        result = runner.invoke(app, ["test", str(run), "--data", spelled, "--split", "val", "--workers", "0"])
        assert "trained on the val split" in _one_error_line(result, 2)
    other = tmp_path / "other"  # other data with the same classes: its val split was never trained on
    shutil.copytree(data, other)
    scored = runner.invoke(app, ["test", str(run), "--data", str(other), "--split", "val", "--workers", "0",
                                 "--output", str(tmp_path / "eval")])
    assert scored.exit_code == 0, scored.output


def test_metrics_json_records_the_data_options_the_data_was_opened_with(trained: TrainedRun, tmp_path: Path) -> None:
    """The report reopens the evaluated data for its thumbnails with exactly these."""
    state = load_checkpoint(trained.run / "checkpoints" / "last.pt")
    state["config"]["data_options"] = {"check_images": False}  # a run trained with --data-option check_images=false
    crafted = save_checkpoint(state, tmp_path / "run" / "checkpoints" / "last.pt")
    runs = [(["--checkpoint", str(crafted)], {"check_images": False}),  # the run's own data, its own options
            (["--checkpoint", str(crafted), "--data", str(trained.data)], {})]  # --data given: opened plainly
    for k, (argv, expected) in enumerate(runs):
        result = runner.invoke(app, ["test", *argv, "--output", str(tmp_path / f"eval{k}"), "--workers", "0"])
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / f"eval{k}" / "metrics.json").read_text())["data_options"] == expected
