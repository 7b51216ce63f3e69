"""The data doctor finds planted exact and near duplicates across splits and classes, and nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.data import open_source
from resnetcli.doctor import duplicates_to_drop, examine_source, fingerprint, near_pairs

SIDE = 96
CLASSES = ("cat", "dog")


def photo(seed: int) -> Image.Image:
    """A distinct photo-like image: smooth random colour fields plus sensor noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3)).astype(np.uint8))
    arr = np.asarray(coarse.resize((SIDE, SIDE), Image.Resampling.BICUBIC)).astype(np.float64)
    return Image.fromarray(np.clip(arr + rng.normal(0, 6, arr.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[frozenset[str]]]:
    """train/val/test class folders of distinct images, plus planted copies; returns (root, planted pairs)."""
    root = tmp_path_factory.mktemp("doctor") / "data"
    seed = 0
    for split, count in (("train", 6), ("val", 2), ("test", 3)):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                photo(seed).save(root / split / name / f"{i}.png")
                seed += 1
    base = Image.open(root / "train" / "cat" / "0.png").convert("RGB")
    shutil.copy(root / "train" / "cat" / "0.png", root / "test" / "cat" / "exact.png")  # exact, leaks into test
    Image.open(root / "train" / "dog" / "1.png").resize((64, 64), Image.Resampling.BICUBIC).save(
        root / "test" / "dog" / "resized.png")  # resized copy in test
    Image.open(root / "train" / "cat" / "2.png").save(root / "val" / "cat" / "reencoded.jpg", quality=50)
    Image.open(root / "train" / "cat" / "3.png").crop((2, 2, SIDE - 2, SIDE - 2)).save(
        root / "test" / "cat" / "cropped.png")  # 4% cropped copy
    base.save(root / "train" / "dog" / "mislabelled.png")  # the same picture under another class
    pairs = {
        frozenset({"train/cat/0.png", "test/cat/exact.png"}),
        frozenset({"train/dog/1.png", "test/dog/resized.png"}),
        frozenset({"train/cat/2.png", "val/cat/reencoded.jpg"}),
        frozenset({"train/cat/3.png", "test/cat/cropped.png"}),
        frozenset({"train/cat/0.png", "train/dog/mislabelled.png"}),
        frozenset({"test/cat/exact.png", "train/dog/mislabelled.png"}),
    }
    return root, pairs


def test_doctor_finds_exactly_the_planted_duplicates(planted: tuple[Path, set[frozenset[str]]]) -> None:
    root, expected = planted
    items, findings = examine_source(open_source(root), progress=False)
    found = {frozenset({items[i].ident, items[j].ident}) for i, j, _ in findings["_pairs"].tolist()}
    assert found == expected  # every planted copy, and no pair of distinct images
    exact = findings["exact"]
    assert exact["pairs"] == 3  # original, test copy and mislabelled copy are pixel-identical
    assert exact["groups"] == 1
    assert exact["leaks"] == {"val": 0, "test": 1}
    assert exact["across_classes"] == 3
    near = findings["near"]
    assert near["pairs"] == 3
    assert near["leaks"] == {"val": 1, "test": 2}
    assert near["across_classes"] == 0
    assert findings["examples"][0]["a"]["split"] != findings["examples"][0]["b"]["split"]  # leaks listed first


def test_dedupe_keeps_the_first_copy_in_split_order(planted: tuple[Path, set[frozenset[str]]]) -> None:
    root, _ = planted
    items, findings = examine_source(open_source(root), progress=False)
    dropped = {items[k].ident for k in duplicates_to_drop(items, findings["_pairs"])}
    assert dropped == {"test/cat/exact.png", "test/dog/resized.png", "val/cat/reencoded.jpg",
                       "test/cat/cropped.png", "train/dog/mislabelled.png"}


def test_doctor_reports_balance_and_shapes(planted: tuple[Path, set[frozenset[str]]]) -> None:
    root, _ = planted
    _, findings = examine_source(open_source(root), progress=False)
    assert findings["balance"]["per_class"] == {"cat": 14, "dog": 13}
    assert findings["balance"]["ratio"] == round(14 / 13, 2)
    shapes = findings["shapes"]
    assert shapes["width"]["min"] == 64 and shapes["width"]["max"] == SIDE  # the resized copy
    assert shapes["small"] == 0 and shapes["grayscale"] == 0


def test_grayscale_and_exact_hash_follow_the_pixels() -> None:
    arr = np.asarray(photo(1))
    gray = np.repeat(arr.mean(2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert fingerprint(gray).gray and not fingerprint(arr).gray
    assert fingerprint(arr).digest == fingerprint(arr.copy()).digest
    changed = arr.copy()
    changed[0, 0, 0] ^= 1
    assert fingerprint(changed).digest != fingerprint(arr).digest


@pytest.mark.parametrize("threshold", [0, 3, 5, 9])
def test_near_pairs_match_brute_force(threshold: int) -> None:
    rng = np.random.default_rng(threshold)
    base = rng.integers(0, 2 ** 63, 40, dtype=np.uint64)
    flips = rng.integers(0, 64, (120, 4))
    hashes = base[rng.integers(0, 40, 120)].copy()
    for k in range(120):  # 0-4 bits flipped: many pairs within a few bits of each other
        for bit in flips[k][: k % 5]:
            hashes[k] ^= np.uint64(1) << np.uint64(bit)
    expected = {(i, j, bin(int(hashes[i]) ^ int(hashes[j])).count("1")) for i in range(120) for j in range(i + 1, 120)
                if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= threshold}
    assert {tuple(p) for p in near_pairs(hashes, threshold).tolist()} == expected


def test_doctor_command_prints_and_writes_json(planted: tuple[Path, set[frozenset[str]]], tmp_path: Path) -> None:
    root, _ = planted
    result = CliRunner().invoke(app, ["doctor", str(root), "--output", str(tmp_path / "f.json"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "exact duplicates: 3 pairs" in result.output
    assert "1 test images have a copy in an earlier split" in result.output
    saved = json.loads((tmp_path / "f.json").read_text())
    assert saved["near"]["pairs"] == 3 and "_pairs" not in saved


def test_doctor_command_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["doctor", str(tmp_path / "nope")])
    assert result.exit_code == 3
    assert "error:" in result.output


def test_preprocess_reports_the_doctor_and_dedupe_leaves_no_copy_across_splits(
    planted: tuple[Path, set[frozenset[str]]], tmp_path: Path,
) -> None:
    from resnetcli.preprocess import preprocess

    root, _ = planted
    kept = preprocess(root, tmp_path / "all", workers=1, progress=False, size=64)
    assert kept["doctor"]["exact"]["leaks"]["test"] == 1 and kept["doctor"]["near"]["pairs"] >= 2
    assert json.loads((tmp_path / "all" / "report.json").read_text())["doctor"] == kept["doctor"]
    result = CliRunner().invoke(app, ["preprocess", "--input", str(root), "--output", str(tmp_path / "dedup"),
                                      "--workers", "1", "--size", "64", "--dedupe"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "dedup" / "report.json").read_text())
    doctor = report["doctor"]
    assert doctor["dropped"] == 5
    assert {Path(f).relative_to(root).as_posix() for f in doctor["dropped_files"]} == {
        "test/cat/exact.png", "test/dog/resized.png", "val/cat/reencoded.jpg", "test/cat/cropped.png",
        "train/dog/mislabelled.png"}
    assert report["written"] == kept["written"] - 5
    written = {p.relative_to(tmp_path / "dedup").as_posix() for p in (tmp_path / "dedup").glob("*/*.jpg")}
    listed = {line.split(",")[0] for s in ("train", "val", "test")
              for line in (tmp_path / "dedup" / f"{s}.csv").read_text().splitlines()[1:]}
    assert written == listed  # the dropped copies' files are gone, not just unlisted
    # the deduplicated dataset holds no duplicate any more
    _, again = examine_source(open_source(tmp_path / "dedup"), progress=False)
    assert again["exact"]["pairs"] == 0 and again["near"]["pairs"] == 0
