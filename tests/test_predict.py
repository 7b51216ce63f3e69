"""`resnetcli predict`: top-k per image, same preprocessing as evaluation, unreadable files skipped."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_evaluate import CLASSES, TrainedRun, train_once
from PIL import Image
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.inference.files import collect_images, load_image, pre_resize_side
from resnetcli.inference.restore import eval_pipeline, restore
from resnetcli.inference.run import forward_log_probs

runner = CliRunner()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_once(tmp_path_factory)


@pytest.fixture
def pictures(trained: TrainedRun, tmp_path: Path) -> Path:
    """Two test images in a nested folder, one bigger non-square photo, a broken file and a text file."""
    root = tmp_path / "pictures"
    (root / "nested").mkdir(parents=True)
    for i, name in enumerate(("red", "green shirt")):
        src = trained.data / "test" / name / "0.png"
        (root / "nested" / f"{i}.png").write_bytes(src.read_bytes())
    big = np.asarray(Image.open(trained.data / "test" / "blue,bag" / "1.png").convert("RGB").resize((40, 32)))
    Image.fromarray(big).save(root / "big.jpg", quality=95)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "notes.txt").write_text("not an image")
    return root


def test_table_lists_top_k_for_every_readable_image(
    trained: TrainedRun, pictures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pictures)  # short paths keep the table's rows on one line each
    result = runner.invoke(app, ["predict", ".", "--checkpoint", str(trained.run), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: broken.png: not an image Pillow can identify; skipped"]
    assert "notes.txt" not in result.output  # not an image name: not picked up from a folder
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["big.jpg", "nested/0.png", "nested/1.png"]
    assert all(len(re.findall(r"\d+\.\d%", row)) == 2 for row in rows)  # top-2: two classes with probabilities


def test_csv_and_json_agree_with_the_model(trained: TrainedRun, pictures: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(pictures), "--checkpoint", str(trained.last), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["image", "top1_class", "top1_prob", "top2_class", "top2_prob", "top3_class", "top3_prob"]
    assert len(rows) == 1 + 3
    assert all(r[1] in CLASSES for r in rows[1:])

    # the same numbers as running the network by hand on the decoded, resized, normalized image
    restored = restore(trained.last)
    pipeline = eval_pipeline(restored)
    for row in rows[1:]:
        arr = load_image(Path(row[0]), channels=3, side=pre_resize_side(pipeline, restored.image_size))
        x = pipeline(image=arr)["image"][None]
        assert tuple(x.shape) == (1, 3, 16, 16)
        probs = forward_log_probs(restored.model, x).exp()[0]
        top = torch.argsort(probs, descending=True)
        assert [restored.classes[i] for i in top] == row[1::2]
        assert [float(p) for p in row[2::2]] == pytest.approx(probs[top].tolist(), abs=1e-5)

    out = tmp_path / "predictions.json"
    result = runner.invoke(app, ["predict", str(pictures / "nested"), str(pictures / "big.jpg"), "--checkpoint",
                                 str(trained.last), "-k", "1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["checkpoint"] == str(trained.last)
    assert [Path(p["image"]).name for p in data["predictions"]] == ["0.png", "1.png", "big.jpg"]
    by_name = {Path(r[0]).name: r for r in rows[1:]}
    for p in data["predictions"]:
        assert len(p["top"]) == 1
        assert p["top"][0]["class"] == by_name[Path(p["image"]).name][1]


def test_latest_run_is_the_default(trained: TrainedRun, pictures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained.workdir)
    result = runner.invoke(app, ["predict", str(pictures / "nested" / "0.png"), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoint"] == "runs/tiny/checkpoints/last.pt"


def test_preprocessing_resizes_the_smaller_side_then_center_crops(trained: TrainedRun, tmp_path: Path) -> None:
    restored = restore(trained.last)
    pipeline = eval_pipeline(restored)
    photo = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 96, 3), dtype=np.uint8)).save(photo)
    arr = load_image(photo, channels=3, side=pre_resize_side(pipeline, 16))
    assert arr.shape == (16, 32, 3)  # smaller side to 16, aspect kept
    assert tuple(pipeline(image=arr)["image"].shape) == (3, 16, 16)
    gray = load_image(photo, channels=1, side=16)
    assert gray.shape == (16, 32, 1)


def test_collect_images_recurses_and_reports_missing(pictures: Path) -> None:
    files, problems = collect_images([pictures, pictures / "big.jpg", pictures / "absent.png"])
    assert [f.name for f in files] == ["big.jpg", "broken.png", "0.png", "1.png"]  # sorted, no duplicates
    assert problems == [f"{pictures / 'absent.png'}: no such file or folder"]


def test_nothing_readable_is_an_error(trained: TrainedRun, pictures: Path) -> None:
    result = runner.invoke(app, ["predict", str(pictures / "broken.png"), str(pictures / "absent.png"),
                                 "--checkpoint", str(trained.last)])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "nothing to classify" in result.output
    assert "absent.png: no such file or folder" in result.output


def test_bad_checkpoint_and_options(trained: TrainedRun, pictures: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(trained.last.read_bytes()[:1000])
    result = runner.invoke(app, ["predict", str(pictures), "--checkpoint", str(broken)])
    assert result.exit_code == 4 and "truncated or corrupt" in result.output
    result = runner.invoke(app, ["predict", str(pictures), "--checkpoint", str(trained.last), "--top-k", "0"])
    assert result.exit_code == 2 and "--top-k must be at least 1" in result.output


def test_dangling_links_and_fifos_are_warned_about_and_skipped(trained: TrainedRun, tmp_path: Path) -> None:
    import os

    root = tmp_path / "mixed"
    root.mkdir()
    (root / "good.png").write_bytes((trained.data / "test" / "red" / "0.png").read_bytes())
    (root / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(root / "pipe.png")  # reading it would block forever: it must not be opened
    result = runner.invoke(app, ["predict", str(root), "--checkpoint", str(trained.last), "-f", "csv"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {root / 'gone.png'}: a link to nothing (dangling); skipped",
                        f"warning: {root / 'pipe.png'}: not a regular file (a FIFO, socket or device); skipped"]
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert [Path(r[0]).name for r in rows[1:]] == ["good.png"]
    direct = runner.invoke(app, ["predict", str(root / "pipe.png"), "--checkpoint", str(trained.last)])
    assert direct.exit_code == 3 and "pipe.png: not a regular file" in direct.output


def test_output_that_cannot_be_written_is_one_line(trained: TrainedRun, tmp_path: Path) -> None:
    import os

    from helpers_cli import one_error_line

    image = str(trained.data / "test" / "red" / "0.png")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    line = one_error_line(runner.invoke(app, ["predict", image, "-c", str(trained.last), "-o", str(fifo)]), 2)
    assert "is not a regular file" in line and fifo.is_fifo()  # a rename would have replaced the FIFO
    line = one_error_line(runner.invoke(app, ["predict", image, "-c", str(trained.last), "-o", str(tmp_path)]), 2)
    assert "is a folder" in line
    (tmp_path / "file").write_text("")
    for bad in (tmp_path / "file" / "p.csv", tmp_path / ("n" * 300 + ".csv")):
        line = one_error_line(runner.invoke(app, ["predict", image, "-c", str(trained.last), "-o", str(bad)]), 3)
        assert line.startswith(f"error: cannot write the results to {bad}: "), line
