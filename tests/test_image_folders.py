"""Raw class-per-folder trees used directly: files that cannot be images are set aside before training starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import make_image_folder
from helpers_train import run_engine
from PIL import Image

from resnetcli.data import headers, open_source
from resnetcli.data.headers import check_headers, header_problem


def broken_folder(root: Path) -> dict[str, str]:
    """Two classes of 6 good PNGs plus bad files a header check must catch; {relative path: reason word}."""
    make_image_folder(root, ["a", "b"], 6, 16, ext="png")
    good = (root / "a" / "a_0000.png").read_bytes()
    (root / "a" / "cut.png").write_bytes(good[: len(good) // 2])  # a download cut short
    (root / "b" / "page.png").write_text("<html>404 Not Found</html>\n")  # a web page saved as .png
    (root / "b" / "empty.png").write_bytes(b"")
    return {"a/cut.png": "truncated", "b/page.png": "not an image", "b/empty.png": "0 bytes"}


def test_training_on_a_raw_folder_sets_bad_files_aside_first(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = broken_folder(tmp_path / "raw")
    # a whole epoch, so every image is loaded: before, the first bad file stopped training mid-epoch
    result = run_engine(tmp_path / "raw", tmp_path / "run", epochs=1, max_steps=None, image_size=16)
    assert result.epochs_run == 1
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == len(bad)  # one warning each
    for rel, word in bad.items():
        assert sum(rel in line and word in line for line in warnings) == 1, (rel, warnings)
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["image_size"] == 16


def test_the_source_lists_bad_files_with_reasons_and_keeps_the_rest(tmp_path: Path) -> None:
    bad = broken_folder(tmp_path / "raw")
    source = open_source(tmp_path / "raw", val_split=0.0)
    assert len(source.split("train")) == 12
    reasons = dict(source.notes["problems"])
    assert reasons.keys() == bad.keys()
    assert all(word in reasons[rel] for rel, word in bad.items())


def test_the_header_check_does_not_decode(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 8
    data[start:start + 8] = b"\x00" * 8  # corrupt pixel data; header and end marker intact
    path.write_bytes(bytes(data))
    assert header_problem(path) is None  # cheap by design: what a full decode finds is for preprocess
    assert "not an image" in header_problem(Path(__file__))


def test_the_header_check_in_a_pool_agrees_with_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken_folder(tmp_path / "raw")
    paths = sorted((tmp_path / "raw").rglob("*.png"))
    serial = check_headers(paths, workers=1)
    monkeypatch.setattr(headers, "PARALLEL_FROM", 2)
    assert check_headers(paths, workers=2) == serial
    assert sum(r is not None for r, _ in serial) == 3


def test_files_that_passed_are_not_read_again_until_they_change(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    broken_folder(tmp_path / "raw")
    read: list[str] = []
    real = headers.judge_header
    monkeypatch.setattr(headers, "judge_header", lambda path: read.append(Path(path).name) or real(path))
    first = open_source(tmp_path / "raw", val_split=0.0)
    assert len(read) == 14 and len(first.split("train")) == 12  # the empty file: set aside by the scan already
    read.clear()
    again = open_source(tmp_path / "raw", val_split=0.0)
    assert sorted(read) == ["cut.png", "page.png"]  # only the files that failed are judged again
    assert dict(again.notes["problems"]).keys() == dict(first.notes["problems"]).keys()
    Image.new("RGB", (5, 5)).save(tmp_path / "raw" / "a" / "a_0001.png")  # changed since: read again
    (tmp_path / "raw" / "b" / "b_0001.png").write_text("no longer an image")
    read.clear()
    changed = open_source(tmp_path / "raw", val_split=0.0)
    assert {"a_0001.png", "b_0001.png"} <= set(read) and len(changed.split("train")) == 11
