"""Judging image files by their headers, cheaply, before training: what a raw folder sets aside up front.

Pillow's Image.open is lazy: it identifies the format and reads the size, no pixel data. JPEG and PNG
files must also end with their end-of-image marker (a download cut short has none). That costs about
0.1 ms of CPU a file, so large folders are checked by a process pool, and the files that passed are
remembered (by size and modification time) under $RESNETCLI_CACHE or ~/.cache/resnetcli, so the next run
on the same folder only stats them. A full decode is `preprocess`'s job.
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
from resnetcli.data.images import shape_problem

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
    try:
        with open(path, "rb") as fh:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(fh) as img:
                    width, height, kind = img.width, img.height, img.format
            marker = _TRAILERS.get(kind or "")
            if marker is not None:
                end = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, end - _TRAILER_WINDOW))
                if marker not in fh.read():
                    return f"truncated: the {kind} data ends before its end-of-image marker"
    except Image.DecompressionBombError as exc:
        return f"decompression-bomb limit: {exc}"
    except Image.UnidentifiedImageError:
        return "not an image Pillow can identify"
    except Exception as exc:  # unreadable files, symlink loops, truncated headers (OSError, SyntaxError, ...)
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return f"unreadable: {text}"
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        return f"{width}x{height} pixels exceeds the decompression-bomb limit of {limit} (PIL.Image.MAX_IMAGE_PIXELS)"
    return shape_problem(width, height)


def _problems(paths: Sequence[str]) -> list[str | None]:
    return [header_problem(p) for p in paths]


def check_headers(paths: Sequence[str | os.PathLike[str]], *, workers: int | None = None) -> list[str | None]:
    """header_problem for every path, in order; large folders are checked by a process pool.

    60,000 files take about 7 s of CPU: a fraction of a second of waiting when spread over 16 cores.
    """
    names = [os.fspath(p) for p in paths]
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            workers = os.cpu_count() or 1
    if len(names) < PARALLEL_FROM or workers <= 1:
        return _problems(names)
    from concurrent.futures import ProcessPoolExecutor

    size = -(-len(names) // (workers * 4))  # a few chunks per worker: busy to the end, little IPC
    chunks = [names[i:i + size] for i in range(0, len(names), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [reason for chunk in pool.map(_problems, chunks) for reason in chunk]


def set_aside_unreadable(tree: ClassTree, *, workers: int | None = None) -> ClassTree:
    """`tree` with the files whose headers Pillow cannot read moved from `files` to `problems`.

    Files that passed before with the same size and modification time (as the scan saw them) are not
    read again (see _Passed).
    """
    passed = _Passed(tree.root)
    todo = [i for i, ((rel, _), stamp) in enumerate(zip(tree.files, tree.stamps, strict=True))
            if not passed.has(rel, stamp)]
    reasons: list[str | None] = [None] * len(tree.files)
    root = str(tree.root) + os.sep
    for i, reason in zip(todo, check_headers([root + tree.files[i][0] for i in todo], workers=workers)):
        reasons[i] = reason
        if reason is None:
            passed.add(tree.files[i][0], tree.stamps[i])
    if todo:
        passed.save()
    keep = [i for i, reason in enumerate(reasons) if reason is None]
    bad = [(tree.files[i][0], reason) for i, reason in enumerate(reasons) if reason is not None]
    return ClassTree(root=tree.root, classes=tree.classes, files=[tree.files[i] for i in keep],
                     problems=tree.problems + bad, ignored=tree.ignored, stamps=[tree.stamps[i] for i in keep])


def cache_home() -> Path:
    """$RESNETCLI_CACHE, else ~/.cache/resnetcli."""
    return Path(os.environ.get("RESNETCLI_CACHE") or "~/.cache/resnetcli").expanduser()


class _Passed:
    """The files of one folder that passed the header check, each with the (size, mtime) it had then."""

    def __init__(self, root: Path) -> None:
        self.root = str(root.resolve())
        key = hashlib.sha256(self.root.encode()).hexdigest()[:24]
        self.path = cache_home() / "checked" / f"{key}.json"
        self.files: dict[str, list[int]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            # another Pillow may judge differently: its verdicts start over
            if data.get("root") == self.root and data.get("pillow") == PIL.__version__:
                self.files = dict(data["files"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no cache or an unreadable one: check every file

    def has(self, rel: str, stamp: tuple[int, int]) -> bool:
        return self.files.get(rel) == list(stamp)

    def add(self, rel: str, stamp: tuple[int, int]) -> None:
        self.files[rel] = list(stamp)

    def save(self) -> None:
        from resnetcli.io import write_text

        try:
            write_text(self.path, json.dumps({"root": self.root, "pillow": PIL.__version__, "files": self.files}))
        except OSError:
            pass  # a read-only home only costs the next run the same check again
