"""One rule turns --data / --input (a dataset name or a folder) into a source: same meaning, same message everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_image_folder
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.data import resolve_source
from resnetcli.errors import DataError, UsageError

runner = CliRunner()


def _error_line(argv: list[str]) -> str:
    result = runner.invoke(app, argv)
    lines = result.output.strip().splitlines()
    assert result.exit_code == DataError.exit_code and len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.mark.parametrize(("given", "message"), [
    ("cifar1", "error: no dataset named 'cifar1'; did you mean cifar10"),
    ("{tmp}/nope", "error: dataset folder {tmp}/nope does not exist"),
])
def test_train_and_preprocess_say_the_same_about_a_bad_name_or_folder(tmp_path: Path, given: str, message: str) -> None:
    given, message = given.replace("{tmp}", str(tmp_path)), message.replace("{tmp}", str(tmp_path))
    train = _error_line(["train", "--data", given, "--arch", "resnet20", "--output", str(tmp_path / "run")])
    preprocess = _error_line(["preprocess", "--input", given, "--output", str(tmp_path / "out")])
    assert train == preprocess and train.startswith(message), (train, preprocess)


def test_names_and_folders_resolve_to_their_builders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_image_folder(tmp_path / "cifar10", 2, 2, 8)  # a folder that shares a dataset's name
    monkeypatch.chdir(tmp_path)
    assert resolve_source("cifar10", root=tmp_path).name == "cifar10"  # the registered name wins
    spec = resolve_source("./cifar10")  # ./ asks for the folder
    assert (spec.name, spec.root) == ("folder", Path("cifar10"))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "categories.csv").write_text("name,id\n")
    (tmp_path / "p" / "train.csv").write_text("image,class_id\n")
    assert resolve_source(tmp_path / "p").name == "processed"
    with pytest.raises(UsageError, match="--root is for named datasets"):
        resolve_source(tmp_path / "p", root=tmp_path)
    with pytest.raises(DataError, match="is a file; give a dataset folder or one of: caltech256, cifar10"):
        resolve_source(tmp_path / "p" / "train.csv")
