"""The OpenCV fast path for plain JPEGs gives Pillow's pixels, and everything else still goes through Pillow."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnetcli.data.images import BadImage, _decode_plain_jpeg, load_resized, open_image, resize_array

RESNETCLI = str(Path(sys.executable).parent / "resnetcli")


def _photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth structure plus noise: JPEG-typical content where decoders could disagree."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width * 200, yy / height * 200, (xx + yy) / (width + height) * 255], axis=-1)
    return np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)


def _save(path: Path, arr: np.ndarray, orientation: int | None = None, **options: object) -> Path:
    img = Image.fromarray(arr)
    if orientation is not None:
        exif = img.getexif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    img.save(path, quality=90, **options)
    return path


@pytest.mark.parametrize("orientation", [None, 1, 2, 3, 4, 5, 6, 7, 8])
def test_fast_decode_is_pillows_upright_image(tmp_path: Path, orientation: int | None) -> None:
    path = _save(tmp_path / "p.jpg", _photo(48, 32), orientation)
    fast = _decode_plain_jpeg(path, None, 3, None)
    assert fast is not None
    np.testing.assert_array_equal(fast[:, :, ::-1], np.asarray(open_image(path)))  # OpenCV's order is BGR
    np.testing.assert_array_equal(load_resized(path, None), np.asarray(open_image(path)))


@pytest.mark.parametrize("min_side", [40, 100, 130, 260, 600])
def test_fast_decode_scales_like_pillows_draft_mode(tmp_path: Path, min_side: int) -> None:
    path = _save(tmp_path / "big.jpg", _photo(520, 390), 6)
    fast = _decode_plain_jpeg(path, (min_side, min_side), 3, None)
    assert fast is not None
    np.testing.assert_array_equal(fast[:, :, ::-1], np.asarray(open_image(path, min_size=(min_side, min_side))))


def test_grayscale_jpeg_keeps_its_channel_count(tmp_path: Path) -> None:
    gray = _photo(40, 30)[:, :, 0]
    path = tmp_path / "g.jpg"
    Image.fromarray(gray).save(path, quality=90)
    as_rgb, as_gray = load_resized(path, None, channels=3), load_resized(path, None, channels=1)
    assert as_rgb.shape == (30, 40, 3) and as_gray.shape == (30, 40, 1)
    np.testing.assert_array_equal(as_rgb[:, :, 0], as_gray[:, :, 0])
    np.testing.assert_array_equal(as_rgb, np.asarray(open_image(path, channels=3)))


def test_colour_jpeg_to_one_channel_uses_pillows_luma(tmp_path: Path) -> None:
    path = _save(tmp_path / "c.jpg", _photo(40, 30))
    assert _decode_plain_jpeg(path, None, 1, None) is None  # not the fast path: Pillow's weights decide
    expected = np.asarray(open_image(path, channels=1))
    np.testing.assert_array_equal(load_resized(path, None, channels=1)[:, :, 0], expected)


def test_files_the_fast_path_refuses_get_pillows_answer(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.jpg", _photo(64, 48))
    data = good.read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])  # OpenCV would decode this as grey, silently
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (24, 20), (0, 255, 255, 0)).save(cmyk, quality=95)
    png = tmp_path / "p.png"
    Image.fromarray(_photo(24, 20)).save(png)
    for path in (tmp_path / "half.jpg", cmyk, png):
        assert _decode_plain_jpeg(path, None, 3, None) is None, path
    with pytest.raises(BadImage, match="truncated"):
        load_resized(tmp_path / "half.jpg", 16)
    assert np.abs(load_resized(cmyk, None).mean((0, 1)) - (255, 0, 0)).max() < 12
    np.testing.assert_array_equal(load_resized(png, None), np.asarray(open_image(png)))
    with pytest.raises(BadImage, match="decompression-bomb"):
        load_resized(good, 16, max_pixels=100)


@pytest.mark.parametrize(("size", "center_crop", "shape"), [
    (24, False, (24, 32)), (64, False, (64, 85)), ((20, 10), False, (20, 10)), (24, True, (24, 24)),
    ((16, 30), True, (16, 30)), (None, False, (48, 64)),
])
def test_resize_shapes(size: int | tuple[int, int] | None, center_crop: bool, shape: tuple[int, int]) -> None:
    arr = _photo(64, 48)
    assert resize_array(arr, size, center_crop=center_crop).shape == (*shape, 3)
    assert resize_array(arr[:, :, :1], size, center_crop=center_crop).shape == (*shape, 1)


def test_shrinking_averages_instead_of_aliasing() -> None:
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)  # 1-pixel black/white checkerboard
    small = resize_array(checker, 16)
    assert np.abs(small.astype(int) - 128).max() <= 1  # every output pixel is the average grey


def test_a_small_shrink_stays_close_to_pillows_lanczos() -> None:
    # photo-sized (300-500 px) to 256 takes the bilinear path of resize_array: no aliasing worth the name
    arr = _photo(400, 330, seed=1)
    small = resize_array(arr, 256)
    reference = np.asarray(Image.fromarray(arr).resize((310, 256), Image.Resampling.LANCZOS))
    psnr = 10 * np.log10(255**2 / ((small.astype(float) - reference) ** 2).mean())
    assert small.shape == (256, 310, 3) and psnr > 32  # nearest-neighbour: 22 dB


def test_a_short_write_under_a_file_size_limit_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        for i in range(3):
            _save(src / cls / f"{i}.jpg", _photo(96, 96, seed=i))
    limit = 4096  # each written 96 px noisy JPEG at quality 95 is larger than this

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "out"
    proc = subprocess.run([RESNETCLI, "preprocess", "-i", str(src), "-o", str(out), "--size", "96", "--workers", "1"],
                          capture_output=True, text=True, check=False, preexec_fn=cap,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 3, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "cannot write" in error[0] and str(src) in error[0] and "too large" in error[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()
