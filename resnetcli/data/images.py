"""Robust image decoding: any file Pillow can read becomes an 8-bit RGB (or L) image, or a clear reason why not.

Every path that turns a file into pixels (the `folder` and `processed` sources, `preprocess`, `predict`)
goes through `open_image`, so EXIF orientation, palette transparency, CMYK and 16-bit images are handled
the same way everywhere.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

#: file name endings treated as images; anything else in a class folder is ignored (and reported)
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
     ".pbm", ".pnm"}
)

#: transparent pixels are composited on white: what a viewer shows, and the same for every mode
BACKGROUND = (255, 255, 255)

#: resampling filter for every resize (antialiased when shrinking)
RESAMPLE = Image.Resampling.BICUBIC


class BadImage(Exception):
    """A file that cannot become an image; str(exc) is the reason, for warnings and report.json."""


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _scale_to_uint8(arr: np.ndarray, *, full_scale: float | None) -> np.ndarray:
    """Map integer or float samples to 0-255: by the type's full scale when known, else by the data's range."""
    arr = arr.astype(np.float64, copy=False)
    if full_scale is not None:
        out = arr * (255.0 / full_scale)
    else:
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0 and arr.dtype.kind == "f":
            out = arr * 255.0  # float images in [0, 1]
        elif lo >= 0.0 and hi <= 255.0:
            out = arr
        elif lo >= 0.0 and hi <= 65535.0:
            out = arr * (255.0 / 65535.0)  # 16-bit data held in a 32-bit mode (old Pillow, some TIFFs)
        else:
            out = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Alpha (RGBA, LA, PA, P with a transparent colour) is composited on white, 16-bit and 32-bit
    samples are scaled (not clipped) to 8 bits, CMYK and YCbCr go through Pillow's converters.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        gray = _scale_to_uint8(np.asarray(img), full_scale=65535.0)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode in ("I", "F"):
        gray = _scale_to_uint8(np.asarray(img), full_scale=None)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "1":
        return img.convert("L").convert("RGB")
    try:
        return img.convert("RGB")  # L, P, CMYK, YCbCr, LAB, RGBX, ...
    except (ValueError, OSError) as exc:
        raise BadImage(f"unsupported image mode {mode}: {exc}") from exc


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """8-bit RGB (channels=3) or 8-bit grayscale (channels=1), whatever the input mode."""
    if channels == 1 and img.mode == "L":
        return img
    rgb = to_rgb(img)
    return rgb if channels == 3 else rgb.convert("L")


def open_image(
    path: str | os.PathLike[str],
    *,
    channels: int = 3,
    min_size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Decode `path` fully into an upright 8-bit image, or raise BadImage with the reason.

    min_size=(w, h) lets a JPEG decode at a reduced scale (Pillow's draft mode: 1/2, 1/4 or 1/8 in the
    DCT domain), never below that size in either dimension; this is most of preprocess's speed on large
    photos. max_pixels refuses decompression bombs (defaults to PIL.Image.MAX_IMAGE_PIXELS).
    """
    path = Path(path)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        if path.stat().st_size == 0:
            raise BadImage("empty file (0 bytes)")
        with warnings.catch_warnings():
            # the pixel limit is checked below, against max_pixels, with a reason for the report
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            width, height = img.size
            if limit and width * height > limit:
                raise BadImage(
                    f"{width}x{height} pixels exceeds the decompression-bomb limit of {limit} "
                    "(PIL.Image.MAX_IMAGE_PIXELS)"
                )
            if min_size is not None and img.format == "JPEG":
                # draft() picks the largest DCT scaling that keeps both sides >= the requested ones
                img.draft("RGB", (max(1, min_size[0]), max(1, min_size[1])))
            img.load()
            try:
                ImageOps.exif_transpose(img, in_place=True)  # in place: no copy when already upright
            except Exception:  # a corrupt EXIF block must not lose an otherwise good image
                pass
            return to_mode(img, channels)
    except BadImage:
        raise
    except Image.DecompressionBombError as exc:
        raise BadImage(f"decompression-bomb limit: {exc}") from exc
    except Image.UnidentifiedImageError:
        raise BadImage("not an image Pillow can identify") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombWarning) as exc:
        # truncated data, broken symlinks and loops, bad headers, ...
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise BadImage(f"unreadable: {text}") from exc


def load_array(path: str | os.PathLike[str], *, channels: int = 3, min_side: int | None = None) -> np.ndarray:
    """HxWxC uint8 array of the image at `path` (C = channels); raises BadImage.

    min_side lets large JPEGs decode at a reduced scale whose smaller side stays >= min_side.
    """
    min_size = (min_side, min_side) if min_side else None
    arr = np.asarray(open_image(path, channels=channels, min_size=min_size))
    return arr[:, :, None] if arr.ndim == 2 else arr


def resized_size(width: int, height: int, size: int | tuple[int, int], center_crop: bool) -> tuple[int, int]:
    """(w, h) after resizing (before any crop): smaller side to `size`, or exactly (h, w) = size."""
    if isinstance(size, tuple):
        if not center_crop:
            return size[1], size[0]
        # cover the HxW box keeping aspect ratio, then crop
        scale = max(size[1] / width, size[0] / height)
    else:
        scale = size / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_min_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """The smallest decode size (w, h) from which `size` can be produced without upsampling.

    Orientation is not known before decoding (EXIF may swap the sides), so ask for the larger side in
    both directions: draft() then still never decodes below what the resize needs.
    """
    if size is None:
        return None
    side = max(size) if isinstance(size, tuple) else size
    return side, side


def resize(img: Image.Image, size: int | tuple[int, int] | None, *, center_crop: bool = False) -> Image.Image:
    """Smaller side to `size` keeping aspect ratio, or exact (h, w); with center_crop, resize then crop.

    center_crop with an int crops the central size x size square; with (h, w) it crops that box.
    """
    if size is None:
        return img
    width, height = img.size
    new_w, new_h = resized_size(width, height, size, center_crop)
    if (new_w, new_h) != (width, height):
        img = img.resize((new_w, new_h), RESAMPLE, reducing_gap=3.0)
    if center_crop:
        crop_h, crop_w = size if isinstance(size, tuple) else (size, size)
        left = (new_w - crop_w) // 2
        top = (new_h - crop_h) // 2
        img = img.crop((left, top, left + crop_w, top + crop_h))
    return img

