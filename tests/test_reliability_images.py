"""`resnetcli preprocess` on a folder full of awkward files: every bad one skipped with one warning and named
in report.json, every odd-but-valid one converted correctly, and images in == images out + images reported.
"""

from __future__ import annotations

import csv
import json
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from resnetcli.cli import app

runner = CliRunner()
SIZE = 16


def _solid(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (24, 20), **save: object) -> Path:
    Image.new("RGB", size, colour).save(path, quality=95, **save)
    return path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height pixels (a decompression bomb), in a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Three class folders (two differing only in case) with good, odd and broken files; returns what to expect."""
    root = tmp_path_factory.mktemp("messy") / "images"
    cats, dogs, big_cats = root / "cats", root / "dogs", root / "Cats"
    for folder in (cats, dogs, big_cats):
        folder.mkdir(parents=True)
    good: dict[str, list[str]] = {"cats": [], "dogs": [], "Cats": []}
    bad: dict[str, str] = {}  # relative path -> a word its reason must contain

    for i in range(3):
        good["cats"].append(_solid(cats / f"cat{i}.jpg", (200, 40 + 10 * i, 40)).name)
        good["dogs"].append(_solid(dogs / f"dog{i}.jpg", (40, 200, 40 + 10 * i)).name)
    for i in range(2):
        good["Cats"].append(_solid(big_cats / f"big{i}.jpg", (40, 40, 200 - 10 * i)).name)
    # the same file name in two classes: both kept, each under its own class
    good["cats"].append(_solid(cats / "dup.jpg", (210, 60, 60)).name)
    good["dogs"].append(_solid(dogs / "dup.jpg", (60, 210, 60)).name)

    # odd but valid: each must become correct 8-bit RGB
    cmyk = Image.new("CMYK", (24, 20), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(cats / "cmyk.jpg", quality=95)
    good["cats"].append("cmyk.jpg")
    Image.fromarray(np.full((20, 24), 32768, dtype=np.uint16)).save(dogs / "gray16.png")  # I;16, mid-grey
    assert Image.open(dogs / "gray16.png").mode in ("I;16", "I")
    good["dogs"].append("gray16.png")
    pal = Image.new("P", (24, 20), 0)
    pal.putpalette([0, 0, 255] + [255, 0, 0] * 255)  # index 0 blue, index 1 red
    pal.paste(1, (12, 0, 24, 20))  # right half: index 1, declared transparent
    pal.save(dogs / "palette.png", transparency=1)
    good["dogs"].append("palette.png")
    # stored 32 wide x 16 high, top red / bottom blue, EXIF orientation 6: shown 16 wide x 32 high, red on the right
    exif_pixels = np.zeros((16, 32, 3), np.uint8)
    exif_pixels[:8] = (255, 0, 0)
    exif_pixels[8:] = (0, 0, 255)
    exif_img = Image.fromarray(exif_pixels)
    exif = exif_img.getexif()
    exif[0x0112] = 6
    exif_img.save(big_cats / "rotated.jpg", quality=95, exif=exif.tobytes())
    good["Cats"].append("rotated.jpg")
    frames = [Image.new("P", (24, 20), k) for k in range(2)]
    frames[0].save(cats / "anim.gif", save_all=True, append_images=frames[1:])  # a GIF among JPEGs
    good["cats"].append("anim.gif")

    # broken: each must be skipped and reported
    data = (cats / "cat0.jpg").read_bytes()
    (cats / "truncated.jpg").write_bytes(data[: len(data) // 2])
    bad["cats/truncated.jpg"] = "truncated"
    (dogs / "zero.jpg").write_bytes(b"")
    bad["dogs/zero.jpg"] = "0 bytes"
    (dogs / "page.jpg").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>\n")
    bad["dogs/page.jpg"] = "not an image"
    side = math.isqrt(Image.MAX_IMAGE_PIXELS) + 100
    _png_header_only(cats / "bomb.png", side, side)
    bad["cats/bomb.png"] = "decompression-bomb"
    (big_cats / "loop.jpg").symlink_to("loop.jpg")  # a symlink loop
    bad["Cats/loop.jpg"] = "unreadable"
    (dogs / "gone.jpg").symlink_to(root / "nowhere" / "gone.jpg")  # a dangling link
    bad["dogs/gone.jpg"] = "unreadable"
    if os.geteuid() != 0:
        locked = _solid(cats / "locked.jpg", (1, 2, 3))
        locked.chmod(0)
        bad["cats/locked.jpg"] = "unreadable"
    # as root chmod 000 does not stop reading, so the dangling link above is the unreadable file there

    return {"root": root, "good": good, "bad": bad}


def test_every_awkward_file_is_converted_or_reported(messy: dict[str, object], tmp_path: Path) -> None:
    root: Path = messy["root"]  # type: ignore[assignment]
    good: dict[str, list[str]] = messy["good"]  # type: ignore[assignment]
    bad: dict[str, str] = messy["bad"]  # type: ignore[assignment]
    out = tmp_path / "out"
    result = runner.invoke(app, ["preprocess", "-i", str(root), "-o", str(out), "--size", str(SIZE),
                                 "--val-split", "0.2", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    report = json.loads((out / "report.json").read_text())

    n_in = sum(len(v) for v in good.values()) + len(bad)
    assert report["images_in"] == n_in
    assert report["written"] + report["skipped_count"] == n_in
    assert report["written"] == sum(len(v) for v in good.values())
    skipped = {Path(item["file"]).relative_to(root).as_posix(): item["reason"] for item in report["skipped"]}
    assert skipped.keys() == bad.keys()
    for rel, word in bad.items():
        assert word in skipped[rel].lower(), (rel, skipped[rel])
    # one warning line per skipped file, naming it
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == len(bad)
    for rel in bad:
        assert sum(rel in line for line in warnings) == 1, rel

    # two folders differing only in case are two classes; duplicate names across classes both kept
    classes = {row["name"]: int(row["id"]) for row in csv.DictReader((out / "categories.csv").open())}
    assert set(classes) == {"cats", "Cats", "dogs"}
    rows = [r for split in ("train", "val") for r in csv.DictReader((out / f"{split}.csv").open())]
    assert len(rows) == report["written"] == len({r["image"] for r in rows})
    per_class = {name: sum(int(r["class_id"]) == cid for r in rows) for name, cid in classes.items()}
    assert per_class == {name: len(files) for name, files in good.items()}

    by_colour: dict[str, np.ndarray] = {}
    for row in rows:
        img = Image.open(out / row["image"])
        assert img.mode == "RGB" and img.format == "JPEG" and min(img.size) == SIZE
        by_colour[row["image"]] = np.asarray(img).astype(int)
    images = list(by_colour.values())

    def find(predicate) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
        return [a for a in images if predicate(a)]

    # the EXIF-rotated image: upright portrait, red on the right, blue on the left
    portrait = find(lambda a: a.shape[0] == 2 * a.shape[1])
    assert len(portrait) == 1
    upright = portrait[0]
    assert (upright[:, -3:, 0].mean() > 200 and upright[:, -3:, 2].mean() < 60
            and upright[:, :3, 2].mean() > 200 and upright[:, :3, 0].mean() < 60)
    # CMYK pure red -> RGB red; 16-bit mid-grey -> 8-bit ~128 (not clipped to 255); palette transparency -> white
    assert len(find(lambda a: np.abs(a.mean((0, 1)) - (255, 0, 0)).max() < 12)) == 1
    assert len(find(lambda a: np.abs(a - 128).max() <= 3)) == 1
    halves = find(lambda a: np.abs(a[:, :5].mean((0, 1)) - (0, 0, 255)).max() < 12
                  and np.abs(a[:, -5:].mean((0, 1)) - (255, 255, 255)).max() < 12)
    assert len(halves) == 1


def test_training_sets_aside_the_files_preprocess_skips(messy: dict[str, object],
                                                        capsys: pytest.CaptureFixture) -> None:
    # training on the raw folder judges files by their headers (no decode) and must not trip on any of these
    from resnetcli.data import open_source

    root: Path = messy["root"]  # type: ignore[assignment]
    good: dict[str, list[str]] = messy["good"]  # type: ignore[assignment]
    bad: dict[str, str] = messy["bad"]  # type: ignore[assignment]
    source = open_source(root, val_split=0.0)
    reasons = dict(source.notes["problems"])
    assert reasons.keys() == bad.keys()
    kept = source.split("train")
    assert sorted(kept.ident(i) for i in range(len(kept))) == sorted(f"{c}/{n}" for c, ns in good.items() for n in ns)
    for i in range(len(kept)):
        assert kept.load(i)[0].dtype == np.uint8  # every file kept decodes
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == len(bad)
