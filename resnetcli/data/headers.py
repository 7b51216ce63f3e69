"""Judging image files by their headers, cheaply, before training: what a raw folder sets aside up front.

Pillow's Image.open is lazy: it identifies the format and reads the size, no pixel data. JPEG and PNG
files must also end with their end-of-image marker (a download cut short has none). That costs about
0.1 ms of CPU a file, so large folders are checked by a process pool, and the files that passed are
remembered (by size and modification time, with the channels they store) under $RESNETCLI_CACHE or
~/.cache/resnetcli, so the next run on the same folder only stats them. A full decode is `preprocess`'s job.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import PIL
from PIL import Image

from resnetcli.data.folders import ClassTree
from resnetcli.data.images import shape_problem, stored_channels

#: below this many files the header check runs in this process (a pool costs more than it saves)
PARALLEL_FROM = 4096


#: end-of-image markers, looked for near the end of the file: a download cut short has none
_TRAILERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}
#: how far from the end a marker may sit (some cameras pad JPEGs after the marker)
_TRAILER_WINDOW = 4096


def header_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the file at `path` cannot be an image, judged without decoding it; None when it looks fine.

    Image.open is lazy: it identifies the format and reads the size, no pixel data. JPEG and PNG files
    must also end with their end-of-image marker, which catches files cut short. About 0.1 ms of CPU a
    file; the reasons read like resnetcli.data.images.open_image's, which decodes in full.
    """
    return judge_header(path)[0]


def judge_header(path: str | os.PathLike[str]) -> tuple[str | None, int]:
    """(header_problem's reason or None, the channels the file stores: images.stored_channels) from one open."""
    channels = 3
    try:
        with open(path, "rb") as fh:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(fh) as img:
                    width, height, kind = img.width, img.height, img.format
                    channels = stored_channels(img.mode)
            marker = _TRAILERS.get(kind or "")
            if marker is not None:
                end = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, end - _TRAILER_WINDOW))
                if marker not in fh.read():
                    return f"truncated: the {kind} data ends before its end-of-image marker", channels
    except Image.DecompressionBombError as exc:
        return f"decompression-bomb limit: {exc}", channels
    except Image.UnidentifiedImageError:
        return "not an image Pillow can identify", channels
    except Exception as exc:  # unreadable files, symlink loops, truncated headers (OSError, SyntaxError, ...)
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return f"unreadable: {text}", channels
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        return (f"{width}x{height} pixels exceeds the decompression-bomb limit of {limit} "
                "(PIL.Image.MAX_IMAGE_PIXELS)"), channels
    return shape_problem(width, height), channels


def _judged(paths: Sequence[str]) -> list[tuple[str | None, int]]:
    return [judge_header(p) for p in paths]


def check_headers(paths: Sequence[str | os.PathLike[str]], *,
                  workers: int | None = None) -> list[tuple[str | None, int]]:
    """judge_header for every path, in order; large folders are checked by a process pool.

    60,000 files take about 7 s of CPU: a fraction of a second of waiting when spread over 16 cores.
    """
    names = [os.fspath(p) for p in paths]
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            workers = os.cpu_count() or 1
    if len(names) < PARALLEL_FROM or workers <= 1:
        return _judged(names)
    from concurrent.futures import ProcessPoolExecutor

    size = -(-len(names) // (workers * 4))  # a few chunks per worker: busy to the end, little IPC
    chunks = [names[i:i + size] for i in range(0, len(names), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [judged for chunk in pool.map(_judged, chunks) for judged in chunk]


def set_aside_unreadable(tree: ClassTree, *, workers: int | None = None) -> ClassTree:
    """`tree` with the files whose headers Pillow cannot read moved from `files` to `problems`, and the
    channels each kept file stores in `stored`.

    Files that passed before with the same size and modification time (as the scan saw them) are not
    read again (see _Passed).
    """
    passed = _Passed(tree.root)
    stored = [passed.channels(rel, stamp) for (rel, _), stamp in zip(tree.files, tree.stamps, strict=True)]
    todo = [i for i, channels in enumerate(stored) if channels is None]
    reasons: list[str | None] = [None] * len(tree.files)
    root = str(tree.root) + os.sep
    for i, (reason, channels) in zip(todo, check_headers([root + tree.files[i][0] for i in todo], workers=workers)):
        reasons[i], stored[i] = reason, channels
        if reason is None:
            passed.add(tree.files[i][0], tree.stamps[i], channels)
    if todo:
        passed.save()
    keep = [i for i, reason in enumerate(reasons) if reason is None]
    bad = [(tree.files[i][0], reason) for i, reason in enumerate(reasons) if reason is not None]
    return ClassTree(root=tree.root, classes=tree.classes, files=[tree.files[i] for i in keep],
                     problems=tree.problems + bad, ignored=tree.ignored, stamps=[tree.stamps[i] for i in keep],
                     stored=[stored[i] for i in keep])


def cache_home() -> Path:
    """$RESNETCLI_CACHE, else ~/.cache/resnetcli."""
    return Path(os.environ.get("RESNETCLI_CACHE") or "~/.cache/resnetcli").expanduser()


#: the layout of a _Passed file: [size, mtime, channels] per file (format 1 had no channels)
_PASSED_FORMAT = 2


class _Passed:
    """The files of one folder that passed the header check, each with the (size, mtime) it had then and
    the channels it stores."""

    def __init__(self, root: Path) -> None:
        self.root = str(root.resolve())
        key = hashlib.sha256(self.root.encode()).hexdigest()[:24]
        self.path = cache_home() / "checked" / f"{key}.json"
        self.files: dict[str, list[int]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            # another Pillow may judge differently, an older layout lacks the channels: both start over
            if (data.get("root") == self.root and data.get("pillow") == PIL.__version__
                    and data.get("format") == _PASSED_FORMAT):
                self.files = dict(data["files"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no cache or an unreadable one: check every file

    def channels(self, rel: str, stamp: tuple[int, int]) -> int | None:
        """The channels of a file that passed with this (size, mtime); None when it must be read again."""
        entry = self.files.get(rel)
        if not isinstance(entry, list) or len(entry) != 3 or entry[:2] != list(stamp) or entry[2] not in (1, 3):
            return None
        return entry[2]

    def add(self, rel: str, stamp: tuple[int, int], channels: int) -> None:
        self.files[rel] = [*stamp, channels]

    def save(self) -> None:
        from resnetcli.io import write_text

        try:
            write_text(self.path, json.dumps({"root": self.root, "pillow": PIL.__version__,
                                              "format": _PASSED_FORMAT, "files": self.files}))
        except OSError:
            pass  # a read-only home only costs the next run the same check again
