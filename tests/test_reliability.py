"""Bad inputs and faults across commands: broken, foreign and malicious checkpoints, bad YAML configs, CSVs that
point outside their dataset, a full disk during a checkpoint save, and the documented exit codes.

Each bad input must give exactly one line on stderr starting with "error:", no traceback, and the exit code
resnetcli/errors.py documents (2 usage, 3 data, 4 checkpoint, 5 plugin, 6 training, 130 interrupted).
The plugin faults (raising on import, a name taken twice, a non-callable entry) live in tests/test_plugins.py.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers_cli import one_error_line
from helpers_evaluate import CLASSES, TrainedRun, train_once, write_tree
from helpers_forker import Forker
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.data import open_source
from resnetcli.engine.checkpoint import load_checkpoint, save_checkpoint
from resnetcli.errors import CheckpointError, DataError

runner = CliRunner()
QUIET_TRAIN = ["--workers", "0", "--device", "cpu", "--log-level", "WARNING"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_once(tmp_path_factory)


# --------------------------------------------------------------------------------- checkpoints


class Payload:
    """Unpickling this runs open(marker, 'w'): a stand-in for any code a malicious checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _commands(checkpoint: Path, trained: TrainedRun, tmp_path: Path) -> dict[str, list[str]]:
    """Every command that reads a checkpoint, pointed at `checkpoint`."""
    image = next((trained.data / "test" / CLASSES[0]).glob("*.png"))
    return {
        "test": ["test", "--checkpoint", str(checkpoint)],
        "predict": ["predict", str(image), "--checkpoint", str(checkpoint), "--device", "cpu"],
        "train --resume": ["train", "--data", str(trained.data / "train"), "--resume", str(checkpoint),
                           "--epochs", "2", "--output", str(tmp_path / "resumed"), *QUIET_TRAIN],
    }


def _refused_everywhere(checkpoint: Path, trained: TrainedRun, tmp_path: Path, pattern: str) -> None:
    for name, argv in _commands(checkpoint, trained, tmp_path).items():
        line = one_error_line(runner.invoke(app, argv), 4)
        assert re.search(pattern, line), (name, line)
        assert str(checkpoint) in line, (name, line)
        assert not (tmp_path / "resumed" / "checkpoints").exists(), name


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_is_refused_by_every_command(trained: TrainedRun, tmp_path: Path, damage: str) -> None:
    data = trained.last.read_bytes()
    broken = tmp_path / f"{damage}.pt"
    broken.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b""}[damage])
    _refused_everywhere(broken, trained, tmp_path, "truncated or corrupt")


def test_a_checkpoint_with_a_pickled_object_is_refused_and_never_executed(trained: TrainedRun, tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    state = load_checkpoint(trained.last)
    state["config"]["extra"] = Payload(marker)
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    _refused_everywhere(evil, trained, tmp_path, "holds objects other than tensors and plain types and was refused")
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    assert not marker.exists()
    # the control: the file really is dangerous to an unsafe loader (so the refusal above is what saved us)
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_a_checkpoint_of_another_architecture_is_refused(trained: TrainedRun, tmp_path: Path) -> None:
    state = load_checkpoint(trained.last)
    state["arch"]["options"] = {**state["arch"]["options"], "depth": 14}  # the weights are depth 8
    other = save_checkpoint(state, tmp_path / "deeper.pt")
    for name in ("test", "predict"):
        line = one_error_line(runner.invoke(app, _commands(other, trained, tmp_path)[name]), 4)
        assert "do not fit a 'cifar_resnet' network" in line, (name, line)
    # resuming into a deeper network than the checkpoint's: refused, the difference named
    argv = _commands(trained.last, trained, tmp_path)["train --resume"] + ["--arch-option", "depth=14"]
    line = one_error_line(runner.invoke(app, argv), 4)
    assert "cannot resume from" in line and "arch options" in line and "'depth': 14" in line
    assert not (tmp_path / "resumed" / "checkpoints").exists()


def test_a_checkpoint_with_other_classes_is_refused(trained: TrainedRun, tmp_path: Path) -> None:
    other = write_tree(tmp_path / "other", classes=(CLASSES[0], CLASSES[1], "yellow"))
    line = one_error_line(runner.invoke(app, ["test", "--checkpoint", str(trained.last), "--data", str(other)]), 4)
    assert "only in the checkpoint: blue,bag" in line and "only in the data: yellow" in line
    argv = ["train", "--data", str(other / "train"), "--resume", str(trained.last), "--epochs", "2",
            "--output", str(tmp_path / "resumed"), *QUIET_TRAIN]
    line = one_error_line(runner.invoke(app, argv), 4)
    assert "classes differ" in line and "missing now: blue,bag" in line and "new: yellow" in line
    assert not (tmp_path / "resumed" / "checkpoints").exists()


# ------------------------------------------------------------------------------------ configs


@pytest.mark.parametrize("text, pattern", [
    ("epochs: 1\nlearning_rate: 0.1\n", r"unknown config key 'learning_rate' in \S+bad\.yaml"),
    ("epochs: three\n", r"config key 'epochs' in \S+bad\.yaml must be int, got 'three'"),
    ("epochs: 1.5\n", r"config key 'epochs' in \S+bad\.yaml must be int, got 1\.5"),
    ("batch_size: [4]\n", r"config key 'batch_size' in \S+bad\.yaml must be int"),
    ("arch_options: 7\n", r"config key 'arch_options' in \S+bad\.yaml must be dict"),
    ("amp: maybe\n", r"config key 'amp' in \S+bad\.yaml must be bool"),
    ("epochs: [1\n", r"config \S+bad\.yaml is not valid YAML"),
])
def test_a_bad_yaml_config_stops_a_real_training_call_before_any_work(
    trained: TrainedRun, tmp_path: Path, text: str, pattern: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    out = tmp_path / "run"
    argv = ["train", "--config", str(config), "--data", str(trained.data / "train"), "--arch", "cifar_resnet",
            "--output", str(out), *QUIET_TRAIN]
    line = one_error_line(runner.invoke(app, argv), 2)
    assert re.search(pattern, line), line
    assert not out.exists()


def test_a_yaml_config_with_a_python_tag_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "yaml-payload-ran"
    config = tmp_path / "evil.yaml"
    config.write_text(f"epochs: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    line = one_error_line(runner.invoke(app, ["train", "--config", str(config), "--print-config"]), 2)
    assert "is not valid YAML" in line and str(config) in line
    assert not marker.exists()


# ------------------------------------------------------------------------- CSV path containment


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("contained")
    write_tree(base / "raw", classes=("a", "b"))
    out = base / "processed"
    result = runner.invoke(app, ["preprocess", "-i", str(base / "raw" / "train"), "-o", str(out), "--size", "16",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    # a real image just outside the dataset folder: what a hostile CSV would try to read
    shutil.copy(next((out / "train").glob("*.jpg")), base / "secret.jpg")
    return out


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "nested-dotdot", "symlink"])
def test_csv_paths_outside_the_dataset_folder_are_refused(processed: Path, tmp_path: Path, kind: str) -> None:
    data = shutil.copytree(processed, tmp_path / "data", symlinks=True)
    secret = processed.parent / "secret.jpg"
    assert secret.is_file()
    if kind == "symlink":
        (data / "train" / "innocent.jpg").symlink_to(secret)
    entry = {"dotdot": "../secret.jpg", "absolute": str(secret), "nested-dotdot": "train/../../secret.jpg",
             "symlink": "train/innocent.jpg"}[kind]
    rows = list(csv.reader((data / "train.csv").open()))
    rows.insert(2, [entry, "0"])
    with (data / "train.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)

    with pytest.raises(DataError, match="points outside the dataset folder"):
        open_source(str(data)).split("train")
    out = tmp_path / "run"
    line = one_error_line(runner.invoke(app, ["train", "--data", str(data), "--arch", "cifar_resnet", "--epochs", "1",
                                              "--output", str(out), *QUIET_TRAIN]), 3)
    assert f"'{entry}' points outside the dataset folder" in line and "train.csv, row 3" in line
    assert not out.exists()
    line = one_error_line(runner.invoke(app, ["preprocess", "-i", str(data), "-o", str(tmp_path / "again"),
                                              "--workers", "1"]), 3)
    assert "points outside the dataset folder" in line
    assert not (tmp_path / "again").exists()


# ----------------------------------------------------------------------------------- full disk


def test_a_full_disk_during_a_checkpoint_save_keeps_the_previous_checkpoint(
    trained: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 3rd save of a new run is epoch 1's last.pt (after epoch 0's last.pt and epoch 1's best.pt): the disk
    fills up half-way through it."""
    real_save = torch.save
    calls: list[str] = []

    def full_disk(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(str(f))
        if len(calls) < 3:
            return real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(trained.data / "train"), "--arch", "cifar_resnet",
                                 "--arch-option", "depth=8", "--arch-option", "width=2", "--image-size", "16",
                                 "--epochs", "2", "--batch-size", "8", "--output", str(out), *QUIET_TRAIN])
    monkeypatch.undo()
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0]
    last = out / "checkpoints" / "last.pt"
    assert errors[0] == (f"error: could not write checkpoint {last}: No space left on device; "
                         "the previous checkpoint is intact")
    assert calls[2].startswith(str(out / "checkpoints" / ".last.pt."))
    state = load_checkpoint(last)
    assert state["epoch"] == 0
    assert not list((out / "checkpoints").glob(".*.tmp"))  # the half-written temporary file is gone


# ------------------------------------------------------------------- exit codes, real processes




def test_exit_codes_of_real_processes(forker: Forker, trained: TrainedRun, tmp_path: Path) -> None:
    """The process exit status (not just CliRunner's) is the documented one, with one 'error:' line on stderr."""
    truncated = tmp_path / "half.pt"
    truncated.write_bytes(trained.last.read_bytes()[:1000])
    train = ["train", "--data", str(trained.data / "train"), "--arch", "cifar_resnet", "--image-size", "16",
             "--batch-size", "8", *QUIET_TRAIN]
    cases = {
        2: ["train", "--data", str(trained.data), "--arch", "resnet21"],
        3: ["preprocess", "-i", str(tmp_path / "missing"), "-o", str(tmp_path / "out")],
        4: ["test", "--checkpoint", str(truncated)],
    }
    for code, argv in cases.items():
        err = tmp_path / f"{code}.err"
        result = forker.run(argv, tmp_path / f"{code}.out", err=err)
        assert result["status"] == code, err.read_text()
        lines = [line for line in err.read_text().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), lines

    # 6: a loss that turns non-finite stops training; the last good checkpoint is named. Every setting is
    # range-checked now, so the data does it: a dataset whose recorded std is tiny (but positive) scales its
    # images past float32's range, and the first forward pass gives a non-finite loss.
    extreme = tmp_path / "extreme"
    made = forker.run(["preprocess", "-i", str(trained.data / "train"), "-o", str(extreme), "--size", "16"],
                      tmp_path / "extreme.out")
    assert made["status"] == 0, (tmp_path / "extreme.out").read_text()
    stats = json.loads((extreme / "rgb_val.json").read_text())
    stats["std"] = [1e-30 for _ in stats["std"]]
    (extreme / "rgb_val.json").write_text(json.dumps(stats))
    err = tmp_path / "6.err"
    nan_train = ["train", "--data", str(extreme), "--arch", "cifar_resnet", "--image-size", "16", "--batch-size", "8",
                 *QUIET_TRAIN]
    result = forker.run(nan_train + ["--epochs", "3", "--output", str(tmp_path / "nan")], tmp_path / "6.out", err=err)
    text = err.read_text()
    assert result["status"] == 6, text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in text and "last good checkpoint" in errors[0]
    named = int(re.search(r"last\.pt \(epoch (\d+)\) is the last good checkpoint", errors[0]).group(1))
    state = load_checkpoint(tmp_path / "nan" / "checkpoints" / "last.pt")
    assert state["epoch"] == named and all(torch.isfinite(t).all() for t in state["model"].values())

    # 130: Ctrl-C (SIGINT) during a long run leaves a resumable last.pt
    err = tmp_path / "130.err"
    run = tmp_path / "interrupted"
    result = forker.run(train + ["--epochs", "1000", "--output", str(run)], tmp_path / "130.out", err=err,
                        kill_after=3.0, signal_name="SIGINT")
    text = err.read_text()
    assert result["status"] == 130, text
    assert "Traceback" not in text and "interrupted" in text
    load_checkpoint(run / "checkpoints" / "last.pt")


# ------------------------------------------------------------- one line and the right code, everywhere


@pytest.fixture(scope="module")
def all_bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two class folders holding only files that cannot be images."""
    root = tmp_path_factory.mktemp("allbad") / "images"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "zero.jpg").write_bytes(b"")
        (root / name / "page.jpg").write_text("<html>not found</html>")
    return root


@pytest.mark.parametrize("argv, code, pattern, warnings", [
    (["preprocess", "-i", "{all_bad}", "-o", "{tmp}/out", "--workers", "1"], 3, r"no readable training images", 4),
    (["preprocess", "-i", "{data}", "-o", "{tmp}/out", "--size", "0"], 2, r"--size must be positive", 0),
    (["preprocess", "-o", "{tmp}/out"], 2, r"Missing option '--input'.*resnetcli preprocess --help", 0),
    (["train", "--data", "{tmp}/nothing-here", "--arch", "resnet20"], 3, r"nothing-here", 0),
    (["train", "--data", "{data}", "--arch", "resnet20", "--resume", "{tmp}/gone.pt"], 4, r"gone\.pt", 0),
    (["train", "--data", "{data}", "--arch", "resnet20", "--device", "cuda"], 2, r"--device cuda", 0),
    (["train", "--data", "{data}", "--arch", "resnet20", "--arch-option", "shortcut=Z"], 2, r"shortcut", 0),
    (["train", "--data", "{data}", "--arch", "resnet20", "--epochs", "many"], 2, r"'--epochs'.*valid int", 0),
    (["predict", "{all_bad}", "--checkpoint", "{last}"], 3, r"nothing to classify", 4),
    (["predict", "{tmp}/missing.png", "--checkpoint", "{last}"], 3, r"nothing to classify", 1),
    (["predict", "{all_bad}", "--checkpoint", "{last}", "--top-k", "0"], 2, r"--top-k", 0),
    (["test", "{run}", "--which", "worst"], 2, r"'worst' is not one of 'last', 'best'", 0),
    (["test", "{run}", "--checkpoint", "{last}"], 2, r"not both", 0),
    (["summarize", "--arch", "resnet21"], 2, r"unknown architecture 'resnet21'", 0),
    (["summarize", "--arch", "resnet20", "--arch-option", "bogus=1"], 2, r"bogus", 0),
    (["list", "widgets"], 2, r"widgets", 0),
    (["fly"], 2, r"No such command 'fly'", 0),
])
def test_every_bad_input_is_one_error_line_with_its_exit_code(
    trained: TrainedRun, all_bad: Path, tmp_path: Path, argv: list[str], code: int, pattern: str, warnings: int
) -> None:
    values = {"{all_bad}": str(all_bad), "{tmp}": str(tmp_path), "{last}": str(trained.last), "{run}": str(trained.run),
              "{data}": str(trained.data / "train")}
    for key, value in values.items():
        argv = [a.replace(key, value) for a in argv]
    if argv[0] == "train":
        argv = ["train", "--output", str(tmp_path / "run"), *QUIET_TRAIN, *argv[1:]]  # the case's flags win
    line = one_error_line(runner.invoke(app, argv), code, warnings=warnings)
    assert re.search(pattern, line), line
    assert not (tmp_path / "out").exists() and not (tmp_path / "run" / "checkpoints").exists()


def test_outputs_get_the_permissions_the_umask_allows(trained: TrainedRun, processed: Path) -> None:
    """Temporary-then-rename writing must not leave outputs private (mkstemp's 0600, mkdtemp's 0700)."""
    mask = os.umask(0o022)
    os.umask(mask)
    for path in (processed, trained.run / "checkpoints"):
        assert path.stat().st_mode & 0o777 == 0o777 & ~mask, path
    for path in (processed / "train.csv", processed / "report.json", trained.run / "config.yaml",
                 trained.run / "metrics.csv", trained.last):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


def test_a_full_disk_during_preprocess_leaves_no_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 5th image file preprocess opens for writing finds the disk full."""
    import resnetcli.preprocess as pp

    write_tree(tmp_path / "raw", classes=("a", "b"))
    saved: list[str] = []

    def full_disk(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "x" in mode or "w" in mode:
            saved.append(str(file))
            if len(saved) >= 5:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return open(file, mode, *args, **kwargs)

    monkeypatch.setattr(pp, "open", full_disk, raising=False)  # the module's name for the builtin
    out = tmp_path / "out"
    line = one_error_line(runner.invoke(app, ["preprocess", "-i", str(tmp_path / "raw" / "train"), "-o", str(out),
                                              "--size", "16", "--workers", "1"]), 3)
    monkeypatch.undo()
    assert "No space left on device" in line and "cannot write" in line
    assert len(saved) == 5
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # no dataset, no half-written temporary folder
