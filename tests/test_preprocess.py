"""`resnetcli preprocess`: the issue's acceptance checks, its errors, and exporting array datasets."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import class_image, make_image_folder
from PIL import Image
from typer.testing import CliRunner

from resnetcli import preprocess as pp
from resnetcli.cli import app
from resnetcli.data import open_source
from resnetcli.errors import DataError, UsageError

runner = CliRunner()


def read_rows(path: Path) -> list[tuple[str, int]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["image", "class_id"]
    return [(r[0], int(r[1])) for r in rows[1:]]


def mixed_folder(root: Path) -> dict[str, int]:
    """3 classes of varied sizes and modes plus the bad files of the acceptance check; {class: good images}."""
    make_image_folder(root, ["001.ak47", "002.bear", "003.cactus"], 3, [(60, 40), (30, 70), (45, 45)])
    extra = [
        ("001.ak47", "gray.png", Image.fromarray(class_image(0, 3, (50, 34), 7)).convert("L")),
        ("001.ak47", "palette.gif", Image.fromarray(class_image(0, 3, (40, 40), 8)).convert("P")),
        ("002.bear", "alpha.png", Image.fromarray(class_image(1, 3, (36, 52), 9)).convert("RGBA")),
        ("002.bear", "cmyk.jpg", Image.fromarray(class_image(1, 3, (64, 48), 10)).convert("CMYK")),
        ("003.cactus", "deep.png", Image.fromarray(class_image(2, 3, (40, 30), 11)[..., 1].astype(np.uint16) * 257)),
    ]
    for cls, name, img in extra:
        img.save(root / cls / name)
    (root / "001.ak47" / "zero.jpg").write_bytes(b"")
    (root / "002.bear" / "notes.jpg").write_text("this is text, not a JPEG")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "003.cactus" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / ".hidden_empty").mkdir()
    return {"ak47": 5, "bear": 5, "cactus": 4}


def test_acceptance_mixed_folder(tmp_path: Path) -> None:
    good = mixed_folder(tmp_path / "in")
    out = tmp_path / "out"
    result = runner.invoke(app, ["preprocess", "--input", str(tmp_path / "in"), "--output", str(out),
                                 "--workers", "2", "--val-split", "0.25"])
    assert result.exit_code == 0, result.output
    assert "wrote 14 images" in result.output

    categories = list(csv.reader(open(out / "categories.csv")))
    assert categories == [["name", "id"], ["ak47", "0"], ["bear", "1"], ["cactus", "2"]]
    train, val = read_rows(out / "train.csv"), read_rows(out / "val.csv")
    listed = [name for name, _ in train + val]
    assert len(listed) == len(set(listed)) == 14  # every good image exactly once, no bad one
    on_disk = {p.relative_to(out).as_posix() for p in out.glob("*/*.jpg")}
    assert on_disk == set(listed)
    assert all(name.startswith("train/") for name, _ in train) and all(n.startswith("val/") for n, _ in val)
    per_class = [sum(1 for _, c in train + val if c == k) for k in range(3)]
    assert per_class == list(good.values())
    # stratified 25 % of each class's candidate files (bear's text file may have been drawn for val)
    assert [sum(1 for _, c in val if c == k) for k in range(3)] in ([1, 1, 1], [1, 2, 1])

    for name in listed:
        with Image.open(out / name) as img:
            assert img.mode == "RGB" and min(img.size) == 256, (name, img.size)

    stats = json.loads((out / "rgb_val.json").read_text())
    pixels = np.concatenate([np.asarray(Image.open(out / n)).reshape(-1, 3) for n, _ in train]).astype(np.float64)
    assert np.abs(np.array(stats["mean"]) - pixels.mean(0)).max() < 0.5
    assert np.abs(np.array(stats["std"]) - pixels.std(0)).max() < 0.5
    assert [stats["R"], stats["G"], stats["B"]] == stats["mean"]

    report = json.loads((out / "report.json").read_text())
    skipped = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert skipped == {"zero.jpg": "empty file (0 bytes)", "notes.jpg": "not an image Pillow can identify"}
    assert report["images_in"] == report["written"] + len(report["skipped"]) == 16
    assert report["written_per_split"] == {"train": len(train), "val": len(val)}
    assert "zero.jpg" in result.output and "notes.jpg" in result.output  # one warning each

    source = open_source(out)  # the processed folder reads back
    assert source.name == "processed" and source.classes == ["ak47", "bear", "cactus"]
    assert (len(source.split("train")), len(source.split("val"))) == (len(train), len(val))
    assert source.mean == pytest.approx(tuple(m / 255 for m in stats["mean"]))
    assert min(source.split("val").load(0)[0].shape[:2]) == 256


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_second_run_without_force_leaves_the_first_untouched(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["preprocess", "-i", str(image_folder), "-o", str(out), "--size", "16", "--workers", "1"]
    assert runner.invoke(app, args).exit_code == 0
    before = snapshot(out)
    result = runner.invoke(app, args)
    assert result.exit_code == DataError.exit_code
    assert "already holds a dataset; pass --force" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left

    forced = runner.invoke(app, args + ["--force", "--seed", "3"])
    assert forced.exit_code == 0, forced.output
    after = snapshot(out)
    assert set(after) != set(before)  # fresh random names: the first dataset was replaced as a whole
    assert len(after) == len(before) and [p.name for p in out.glob(".*")] == [".resnetcli-dataset"]  # the marker


def test_interrupted_run_leaves_no_dataset(image_folder: Path, tmp_path: Path, monkeypatch) -> None:
    real = pp._process
    done = []

    def dies_midway(task):
        if len(done) == 5:
            raise KeyboardInterrupt
        done.append(task)
        return real(task)

    monkeypatch.setattr(pp, "_process", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        pp.preprocess(image_folder, tmp_path / "out", size=16, workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # neither output nor partial folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{tmp}/nope"], "dataset folder .*nope does not exist"),
        (["--input", "{tmp}/one"], "at least two"),
        (["--input", "{tmp}/withempty"], "class folder .*empty has no images"),
        (["--input", "{tmp}/images", "--size", "big"], "--size expects N"),
        (["--input", "{tmp}/images", "--val-split", "1.5"], "--val-split must be in"),
        (["--input", "{tmp}/images", "--output", "{tmp}/images/sub"], "overlap"),
        (["--input", "{tmp}/images", "--output", "{tmp}/junk"], "not empty and is not a resnetcli dataset"),
        (["--input", "cifar100", "--label-pattern", "x", "--root", "{tmp}"], "--label-pattern applies to image"),
        (["--input", "cifar1"], "did you mean cifar10"),
    ],
)
def test_errors_are_one_clear_line(image_folder: Path, tmp_path: Path, args: list[str], message: str) -> None:
    make_image_folder(tmp_path / "one", ["solo"], 2, 8)
    make_image_folder(tmp_path / "withempty", ["a", "b"], 2, 8)
    (tmp_path / "withempty" / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "thesis.tex").write_text("precious")
    output = [] if "--output" in args else ["--output", str(tmp_path / "out")]
    argv = ["preprocess", *output, *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    result = runner.invoke(app, argv)
    assert result.exit_code in (UsageError.exit_code, DataError.exit_code), result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "junk" / "thesis.tex").read_text() == "precious"


def test_exact_size_center_crop_label_pattern_exclude_and_test_split(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "in", ["n01_tench", "n02_goldfish", "n03_shark", "n99_junk"], 10, [(40, 30), (30, 44)])
    report = pp.preprocess(tmp_path / "in", tmp_path / "exact", size="12x20", label_pattern=r"^n\d+_(\w+)$",
                           exclude_classes=["junk"], val_split=0.2, test_split=0.1, workers=1, progress=False)
    assert report["classes"] == 3 and report["written_per_split"] == {"train": 21, "val": 6, "test": 3}
    assert report["image_size"] is None
    assert [r[0] for r in csv.reader(open(tmp_path / "exact" / "categories.csv"))][1:] == ["tench", "goldfish", "shark"]
    for name, _ in read_rows(tmp_path / "exact" / "test.csv"):
        assert Image.open(tmp_path / "exact" / name).size == (20, 12)

    report = pp.preprocess(tmp_path / "in", tmp_path / "crop", size=24, center_crop=True, seed=1, workers=2,
                           progress=False)
    assert report["image_size"] == 24 and report["classes"] == 4
    assert {Image.open(p).size for p in (tmp_path / "crop").glob("*/*.jpg")} == {(24, 24)}


def test_separate_test_folder(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "train", ["cat", "dog"], 4, 20)
    make_image_folder(tmp_path / "heldout", ["dog"], 3, 20, seed=5)
    report = pp.preprocess(tmp_path / "train", tmp_path / "out", size=16, test_input=tmp_path / "heldout",
                           workers=1, progress=False)
    assert report["written_per_split"]["test"] == 3
    assert {label for _, label in read_rows(tmp_path / "out" / "test.csv")} == {1}
    make_image_folder(tmp_path / "stranger", ["horse"], 1, 20)
    with pytest.raises(DataError, match="'horse', which is not among the training classes"):
        pp.preprocess(tmp_path / "train", tmp_path / "out2", test_input=tmp_path / "stranger", progress=False)


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "in", ["a", "b"], 3, 24)
    big = tmp_path / "in" / "a" / "huge.png"
    Image.new("RGB", (200, 200), (1, 2, 3)).save(big)
    good = (tmp_path / "in" / "b" / "b_0000.jpg").read_bytes()
    (tmp_path / "in" / "b" / "cut.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "in" / "b" / "loop.jpg").symlink_to("loop.jpg")
    report = pp.preprocess(tmp_path / "in", tmp_path / "out", size=16, workers=1, progress=False,
                           max_pixels=100 * 100)
    reasons = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"huge.png", "cut.jpg", "loop.jpg"}
    assert "decompression-bomb" in reasons["huge.png"] and "unreadable" in reasons["cut.jpg"]
    assert report["written"] == 6 and report["images_in"] == 9


def test_export_fashion_mnist_idx_through_the_same_writer(tmp_path: Path) -> None:
    from test_sources import write_idx

    arrays = write_idx(tmp_path / "fm" / "FashionMNIST" / "raw", n_train=20, n_test=6)
    out = tmp_path / "out"
    result = runner.invoke(app, ["preprocess", "--input", "fashion-mnist", "--root", str(tmp_path / "fm"),
                                 "--output", str(out), "--workers", "2", "--quality", "100"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["written_per_split"] == {"train": 16, "val": 4, "test": 6}
    assert report["image_size"] == 28 and report["channels"] == 1
    stats = json.loads((out / "rgb_val.json").read_text())
    assert set(stats) >= {"L", "mean", "std"} and len(stats["mean"]) == 1

    source = open_source(out)
    assert source.classes[0] == "T-shirt/top" and source.channels == 1 and source.image_size == 28
    test = source.split("test")
    assert sorted(test.labels) == sorted(arrays["t10k-labels-idx1-ubyte"].tolist())
    image, _ = test.load(0)
    assert image.shape == (28, 28, 1)
    # quality 100 grayscale JPEG of random noise: close to, not equal to, one of the originals
    errors = [np.abs(image[..., 0].astype(int) - a.astype(int)).mean() for a in arrays["t10k-images-idx3-ubyte"]]
    assert min(errors) < 4.0


def test_spawned_worker_rebuilds_the_source(tmp_path: Path) -> None:
    # Under the spawn/forkserver start methods workers inherit nothing: they reopen the dataset.
    from test_sources import write_cifar10_bin

    write_cifar10_bin(tmp_path)
    settings = {"out_dir": str(tmp_path), "size": None, "center_crop": False, "quality": 90, "channels": 3,
                "max_pixels": None, "source_spec": ("cifar10-bin", tmp_path, {"val_split": 0.0})}
    (tmp_path / "test").mkdir()
    assert pp._INHERITED is None
    pp._init_worker(settings, in_pool=False)
    try:
        slot, name, reason, stats, *_ = pp._process((7, None, "test", 2, "test", True))
    finally:
        pp._STATE.clear()
    assert (slot, reason) == (7, None) and name.startswith("test/") and stats[2] == 32 * 32
    assert Image.open(tmp_path / name).size == (32, 32)


def test_caltech256_download_failure_is_one_line(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "Caltech256", offline)
    result = runner.invoke(app, ["preprocess", "-i", "caltech256", "--root", str(tmp_path), "-o",
                                 str(tmp_path / "out")])
    assert result.exit_code == DataError.exit_code
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "downloading it failed" in lines[0] and "256_ObjectCategories" in lines[0]


def test_parse_size() -> None:
    assert pp.parse_size("256") == 256 and pp.parse_size("224x192") == (224, 192) and pp.parse_size(None) is None
    with pytest.raises(UsageError):
        pp.parse_size("0")


def test_readme_caltech256_example_with_exclude_class(tmp_path: Path) -> None:
    # torchvision's Caltech256 layout under --root; the files are there, so nothing downloads
    categories = tmp_path / "root" / "caltech256" / "256_ObjectCategories"
    make_image_folder(categories, ["001.ak47", "002.bat", "003.cake", "257.clutter"], 5, (30, 24))
    out = tmp_path / "data" / "caltech"
    result = runner.invoke(app, ["preprocess", "--input", "caltech256", "--output", str(out), "--exclude-class",
                                 "257.clutter", "--exclude-class", "003.cake", "--root", str(tmp_path / "root"),
                                 "--size", "16", "--workers", "1"])
    assert result.exit_code == 0, result.output  # exited 2: "--exclude-class applies to image folders"
    assert (out / "categories.csv").read_text() == "name,id\nak47,0\nbat,1\n"
    assert json.loads((out / "report.json").read_text())["written"] == 10


def test_processed_folder_caps_the_training_size_at_the_written_side(tmp_path: Path) -> None:
    from helpers_train import run_engine

    make_image_folder(tmp_path / "in", 2, 6, [(40, 30), (30, 44)])
    report = pp.preprocess(tmp_path / "in", tmp_path / "p", size=16, workers=1, progress=False)
    assert report["image_size"] is None and report["smaller_side"] == 16  # not square, but never below 16
    assert open_source(tmp_path / "p").image_size == 16
    assert open_source(tmp_path / "p").describe("val").endswith(" val (val.csv)")
    run_engine(tmp_path / "p", tmp_path / "run", epochs=1, max_steps=1)  # resnet20's own default is 32px
    assert "image_size: 16" in (tmp_path / "run" / "config.yaml").read_text().splitlines()
    # a folder written before smaller_side existed: its integer --size says the same
    report.pop("smaller_side")
    (tmp_path / "p" / "report.json").write_text(json.dumps(report))
    assert open_source(tmp_path / "p").image_size == 16


def test_workers_forked_after_the_parent_used_opencv_threads_finish(tmp_path: Path) -> None:
    """A parent whose OpenCV thread pool already ran (as in a test process) still gets its workers' results."""
    import subprocess
    import sys

    make_image_folder(tmp_path / "images", classes=2, n_per_class=6, size=(40, 30))
    script = (
        "import cv2, numpy as np, sys\n"
        "cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (999, 999), interpolation=cv2.INTER_AREA)\n"
        "from resnetcli.cli import main\n"
        "sys.argv = ['resnetcli', 'preprocess', '--input', sys.argv[1], '--output', sys.argv[2], '--size', '16',"
        " '--workers', '2']\n"
        "main()\n"
    )
    # the timeout only guards against the deadlock this test is about; it asserts no duration
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "images"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "train.csv").is_file()


def test_a_channel_that_never_varies_gets_a_usable_std(tmp_path: Path) -> None:
    # red and green images: blue is 0 everywhere; its std was written as 0, which training divided by
    for name, colour in (("red", (200, 0, 0)), ("green", (0, 200, 0))):
        (tmp_path / "flat" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 12), colour).save(tmp_path / "flat" / name / f"{i}.png")
    pp.preprocess(tmp_path / "flat", tmp_path / "out", size=12, val_split=0.0, workers=1, progress=False)
    stats = json.loads((tmp_path / "out" / "rgb_val.json").read_text())
    assert stats["std"][:2] == [100.0, 100.0] and stats["std"][2] == 1.0  # one grey level
    assert open_source(tmp_path / "out").std[2] == pytest.approx(1 / 255)


def test_array_statistics_of_a_constant_channel_are_one_grey_level() -> None:
    from resnetcli.data.formats import channel_stats

    images = np.zeros((4, 5, 5, 2), dtype=np.uint8)
    images[..., 1] = np.arange(4)[:, None, None] * 10
    mean, std = channel_stats(images)
    assert mean[0] == 0.0 and std[0] == pytest.approx(1 / 255)
    assert std[1] == pytest.approx(np.std([0, 10, 20, 30]) / 255)
