"""Robust image decoding: any file Pillow can read becomes an 8-bit RGB (or L) image, or a clear reason why not.

Every path that turns a file into pixels (the `folder` and `processed` sources, `preprocess`, `predict`)
goes through `open_image`, so EXIF orientation, palette transparency, CMYK and 16-bit images are handled
the same way everywhere. `load_resized` adds a fast path for the common case, a plain RGB or grayscale
JPEG: OpenCV decodes it (with the same DCT scaling as Pillow's draft mode) and every resize is OpenCV's
(see resize_array), several times Pillow's speed on photo-sized images; anything else, including every damaged
file, still goes through `open_image`, so what is accepted and each skip reason stay the same.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from resnetcli.errors import UsageError

#: file name endings treated as images; anything else in a class folder is ignored (and reported)
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
     ".pbm", ".pnm"}
)

#: transparent pixels are composited on white: what a viewer shows, and the same for every mode
BACKGROUND = (255, 255, 255)



class BadImage(Exception):
    """A file that cannot become an image; str(exc) is the reason, for warnings and report.json."""


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


#: Pillow modes that hold one channel of samples (with alpha or at more than 8 bits): gray images
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def stored_channels(mode: str) -> int:
    """1 for a file stored as a gray image (its Pillow mode), else 3."""
    return 1 if mode in GRAY_MODES else 3


def dataset_channels(stored: Iterable[int]) -> int:
    """`--channels auto` for a whole folder: 1 when every image is stored gray, else 3 (gray ones become RGB).

    The one rule for `preprocess` and for training on a raw folder, so both build the same network.
    """
    gray = False
    for channels in stored:  # lazily: the first colour image decides
        if channels != 1:
            return 3
        gray = True
    return 1 if gray else 3


def parse_channels(value: int | str, flag: str = "--channels") -> int | str:
    """1, 3 or 'auto' (any case, as text or a number), else one UsageError line naming `flag`."""
    text = str(value).strip().lower()
    if text not in ("1", "3", "auto"):
        raise UsageError(f"{flag} must be 1, 3 or auto, got '{value}'")
    return text if text == "auto" else int(text)


def stored_header(path: str | os.PathLike[str]) -> tuple[tuple[int, int] | None, int]:
    """The file's (w, h) on disk and its stored channels, from the header alone (one open, no decode).

    Channels are 1 when the file is stored as a gray image (its mode), else 3: an RGB file whose three
    channels happen to be equal counts as colour (deciding that would mean decoding it twice). A file that
    cannot be opened is (None, 3); decoding it reports why.
    """
    try:
        with Image.open(path) as img:
            return img.size, stored_channels(img.mode)
    except Exception:  # open_image gives the reason when the file is decoded
        return None, 3


def adapt_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """HxWxC uint8 to `channels` channels (gray repeated to RGB, RGB to luma)."""
    have = image.shape[2] if image.ndim == 3 else 1
    if image.ndim == 2:
        image = image[:, :, None]
    if have == channels:
        return image
    if channels == 3:
        return np.repeat(image[:, :, :1], 3, axis=2)
    # ITU-R 601 luma, as Pillow's convert("L") computes it
    luma = image[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, :, None]


#: the most elongated image read: a 1x3000 strip brought to a smaller side of 224 would be 224x672000 pixels
MAX_ASPECT = 100


def shape_problem(width: int, height: int) -> str | None:
    """Why a width x height image is refused before decoding (no pixels, or too elongated to resize), or None."""
    if width < 1 or height < 1:
        return f"{width}x{height} pixels: no image"
    if max(width, height) > MAX_ASPECT * min(width, height):
        return (f"{width}x{height} pixels is more elongated than {MAX_ASPECT}:1; resizing its smaller side "
                "would make an enormous image")
    return None


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
            problem = shape_problem(width, height)
            if problem is not None:
                raise BadImage(problem)
            if min_size is not None and img.format == "JPEG":
                # draft() picks the largest DCT scaling that keeps both sides >= the requested ones
                img.draft("RGB", (max(1, min_size[0]), max(1, min_size[1])))
            img.load()
            # a corrupt EXIF block must not lose an otherwise good image
            with contextlib.suppress(Exception):
                ImageOps.exif_transpose(img, in_place=True)  # in place: no copy when already upright
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
    arr = resize_array(np.asarray(img), size, center_crop=center_crop)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def resize_array(arr: np.ndarray, size: int | tuple[int, int] | None, *, center_crop: bool = False) -> np.ndarray:
    """`resize` on an HxW or HxWxC uint8 array; returns HxWxC.

    Shrinking by 2x or more uses OpenCV's INTER_AREA (antialiased); a smaller shrink (a photo-sized image
    to 256 px) INTER_LINEAR, which there still reads every source pixel: as close to a Lanczos resize as
    INTER_AREA (39.5 vs 39.4 dB PSNR on 300-500 px crops of a real photo, to 256) and six times faster, as
    INTER_AREA at a non-integer ratio below 2 is slow (it was most of preprocess's time). Enlarging, where
    area averaging has nothing to average, uses INTER_CUBIC.
    """
    import cv2

    if arr.ndim == 2:
        arr = arr[:, :, None]
    if size is None:
        return arr
    height, width = arr.shape[:2]
    new_w, new_h = resized_size(width, height, size, center_crop)
    if Image.MAX_IMAGE_PIXELS and new_w * new_h > Image.MAX_IMAGE_PIXELS:  # the decoder's bomb limit, resized
        raise BadImage(f"{width}x{height} pixels resized to {new_w}x{new_h} exceeds the decompression-bomb limit "
                       f"of {Image.MAX_IMAGE_PIXELS} (PIL.Image.MAX_IMAGE_PIXELS)")
    if (new_w, new_h) != (width, height):
        if new_w > width or new_h > height:
            interpolation = cv2.INTER_CUBIC
        elif 2 * new_w <= width or 2 * new_h <= height:
            interpolation = cv2.INTER_AREA
        else:
            interpolation = cv2.INTER_LINEAR
        out = cv2.resize(arr, (new_w, new_h), interpolation=interpolation)
        arr = out[:, :, None] if out.ndim == 2 else out  # OpenCV drops a single channel's axis
    if center_crop:
        crop_h, crop_w = size if isinstance(size, tuple) else (size, size)
        top, left = (new_h - crop_h) // 2, (new_w - crop_w) // 2
        arr = arr[top:top + crop_h, left:left + crop_w]
    return np.ascontiguousarray(arr)


def load_resized(
    path: str | os.PathLike[str],
    size: int | tuple[int, int] | None,
    *,
    center_crop: bool = False,
    channels: int = 3,
    max_pixels: int | None = None,
) -> np.ndarray:
    """`resize(open_image(path, ...), size)` as an HxWxC uint8 array (RGB or gray), fast for plain JPEGs.

    Raises BadImage with open_image's reason for anything that cannot be read.
    """
    import cv2

    bgr = _decode_plain_jpeg(path, decode_min_size(size), channels, max_pixels)
    if bgr is None:
        arr = np.asarray(open_image(path, channels=channels, min_size=decode_min_size(size), max_pixels=max_pixels))
        return resize_array(arr, size, center_crop=center_crop)
    arr = resize_array(bgr, size, center_crop=center_crop)
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB) if channels == 3 else arr  # after the resize: fewer pixels


#: EXIF orientation -> the view that makes the pixels upright, as PIL.ImageOps.exif_transpose does
_UPRIGHT = {
    2: lambda a: a[:, ::-1],  # FLIP_LEFT_RIGHT
    3: lambda a: a[::-1, ::-1],  # ROTATE_180
    4: lambda a: a[::-1],  # FLIP_TOP_BOTTOM
    5: lambda a: a.swapaxes(0, 1),  # TRANSPOSE
    6: lambda a: np.rot90(a, -1),  # ROTATE_270 (counter-clockwise)
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # TRANSVERSE
    8: lambda a: np.rot90(a, 1),  # ROTATE_90
}


def _decode_plain_jpeg(
    path: str | os.PathLike[str], min_size: tuple[int, int] | None, channels: int, max_pixels: int | None
) -> np.ndarray | None:
    """The upright pixels (BGR, or HxWx1 gray) of a complete RGB or grayscale JPEG decoded by OpenCV, or None.

    None sends the file to open_image: other formats and modes (CMYK, ...), a file that is missing its
    end marker (OpenCV decodes truncated data without an error, as grey), a bad EXIF block, a file over
    the pixel limit, anything OpenCV refuses. So only files Pillow would read alike take this path.
    """
    import cv2

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if data[:2] != b"\xff\xd8" or data.rfind(b"\xff\xd9", max(0, len(data) - 64)) < 0:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:  # the header only: format, mode, size, EXIF
                if img.format != "JPEG" or img.mode not in ("RGB", "L"):
                    return None
                width, height = img.size
                gray = img.mode == "L"
                orientation = img.getexif().get(0x0112, 1)
    except Exception:  # whatever it is, open_image reports it
        return None
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if (limit and width * height > limit) or (channels == 1 and not gray) or shape_problem(width, height):
        return None  # the limit's reason is open_image's; RGB -> L keeps Pillow's luma weights
    scale = 1
    if min_size is not None:  # the DCT scale Pillow's draft() picks: the largest keeping both sides
        fits = min(width // max(1, min_size[0]), height // max(1, min_size[1]))
        scale = next((s for s in (8, 4, 2) if fits >= s), 1)
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}[scale]
    if channels == 1:
        flags = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[scale]
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None or arr.shape[:2] != (-(-height // scale), -(-width // scale)):
        return None
    arr = arr if channels == 3 else arr[:, :, None]
    upright = _UPRIGHT.get(orientation)
    return np.ascontiguousarray(upright(arr)) if upright is not None else arr


def encode_jpeg(arr: np.ndarray, quality: int) -> bytes:
    """An HxWxC uint8 RGB or gray array as JPEG bytes; colour at full resolution (4:2:0 smears small images)."""
    import cv2

    if arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                  cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    ok, buffer = cv2.imencode(".jpg", arr, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {arr.shape} array as JPEG")
    return buffer.tobytes()
