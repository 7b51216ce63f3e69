"""Reading a class-per-folder image tree (Caltech-256's `256_ObjectCategories/001.ak47/001_0001.jpg`).

Scanning only lists and stats files; decoding is left to whoever loads them. Files that cannot be
images (zero bytes, broken links, symlink loops) are set aside here with their reason, so both
`preprocess` (which reports them) and training on the raw folder (which must not trip on them) agree.
`check_headers` goes one step further for training: it opens every file lazily (Pillow reads the header
only, no pixels), so a file that is not an image is set aside before the first epoch, not in the middle.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from resnetcli.data.images import is_image_name
from resnetcli.errors import DataError, UsageError

#: Caltech's 'NNN.name' becomes 'name'; any other folder name is the class name as it stands
DEFAULT_LABEL_PATTERN = r"^(?:\d+\.)?(?P<name>.+)$"

#: folders that are never classes, whatever their content (besides any hidden '.name' folder)
NOT_CLASSES = frozenset({"__MACOSX", "__pycache__", ".ipynb_checkpoints"})


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in NOT_CLASSES


def label_parser(pattern: str | None):
    """A function folder-name -> class name (or None when the folder does not match the pattern).

    The class name is the pattern's group 'name' if it has one, else its first group, else the match.
    """
    try:
        regex = re.compile(pattern or DEFAULT_LABEL_PATTERN)
    except re.error as exc:
        raise UsageError(f"--label-pattern '{pattern}' is not a valid regular expression: {exc}") from None

    def parse(folder: str) -> str | None:
        match = regex.search(folder)
        if match is None:
            return None
        if "name" in regex.groupindex:
            label = match.group("name")
        elif regex.groups:
            label = match.group(1)
        else:
            label = match.group(0)
        return label.strip() or None

    return parse


@dataclass
class ClassTree:
    """What a scan found: class names in id order, image files with their class id, and the rest."""

    root: Path
    classes: list[str]
    #: (path relative to root, class id) for every file that may be an image
    files: list[tuple[str, int]] = field(default_factory=list)
    #: (path relative to root, reason): files named like images that cannot be read
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: paths relative to root of files and folders that are not images or not classes
    ignored: list[str] = field(default_factory=list)


def _walk_files(folder: Path, seen: set[tuple[int, int]]) -> list[Path]:
    """Every non-hidden file under `folder` (sorted), following folder symlinks once (no loops)."""
    try:
        info = folder.stat()
    except OSError:
        return []
    key = (info.st_dev, info.st_ino)
    if key in seen:
        return []
    seen.add(key)
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        if is_hidden(entry.name):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            found.extend(_walk_files(Path(entry.path), seen))
        else:
            found.append(Path(entry.path))
    return found


def _class_folders(root: Path, parse, exclude: set[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """[(class name, folder)] in folder-name order, and the root's entries that are not classes."""
    folders: list[tuple[str, Path]] = []
    ignored: list[str] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if is_hidden(entry.name):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            ignored.append(entry.name)
            continue
        label = parse(entry.name)
        if label is None:
            ignored.append(entry.name + "/")
            continue
        if entry.name in exclude or label in exclude:
            ignored.append(entry.name + "/")
            continue
        folders.append((label, Path(entry.path)))
    return folders, ignored


def scan_class_tree(
    root: str | os.PathLike[str],
    *,
    label_pattern: str | None = None,
    exclude_classes: tuple[str, ...] | list[str] = (),
    classes: list[str] | None = None,
) -> ClassTree:
    """List a class-per-folder tree. Folders whose names give the same class are merged.

    With `classes` (for a second tree such as a test folder) class ids follow that list, and a class
    that is not in it is an error. Raises DataError for a missing root, an empty class folder and
    (without `classes`) fewer than two classes.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"input folder {root} does not exist" if not root.exists() else f"{root} is not a folder")
    parse = label_parser(label_pattern)
    folders, ignored = _class_folders(root, parse, set(exclude_classes))
    names: list[str] = list(classes) if classes is not None else []
    for label, folder in folders:
        if label not in names:
            if classes is not None:
                raise DataError(
                    f"class folder {folder} gives class '{label}', which is not among the training classes "
                    f"({', '.join(classes[:10])}{', ...' if len(classes) > 10 else ''})"
                )
            names.append(label)
    if classes is None and len(names) < 2:
        found = ", ".join(names) or "none"
        raise DataError(
            f"{root} holds {len(names)} class folder(s) ({found}); a classifier needs at least two: "
            "put each class's images in its own sub-folder"
        )
    tree = ClassTree(root=root, classes=names, ignored=ignored)
    for label, folder in folders:
        class_id = names.index(label)
        count = 0
        for path in _walk_files(folder, set()):
            rel = path.relative_to(root).as_posix()
            if not is_image_name(path.name):
                tree.ignored.append(rel)
                continue
            count += 1
            try:
                info = path.stat()
            except OSError as exc:
                tree.problems.append((rel, f"unreadable: {exc.strerror or exc}"))
                continue
            if not stat.S_ISREG(info.st_mode):
                tree.problems.append((rel, "not a regular file"))
            elif info.st_size == 0:
                tree.problems.append((rel, "empty file (0 bytes)"))
            else:
                tree.files.append((rel, class_id))
        if count == 0:
            raise DataError(
                f"class folder {folder} has no images; add some, delete the folder, "
                f"or pass --exclude-class {folder.name}"
            )
    return tree


#: below this many files the header check runs in this process (a pool costs more than it saves)
PARALLEL_FROM = 4096


#: end-of-image markers, looked for near the end of the file: a download cut short has none
_TRAILERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}
#: how far from the end a marker may sit (some cameras pad JPEGs after the marker)
_TRAILER_WINDOW = 4096


def header_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the file at `path` cannot be an image, judged without decoding it; None when it looks fine.

    Image.open is lazy: it identifies the format and reads the size, no pixel data. JPEG and PNG files
    must also end with their end-of-image marker, which catches files cut short. About 70 us a file;
    the reasons read like resnetcli.data.images.open_image's, which decodes in full.
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
    if width < 1 or height < 1:
        return f"{width}x{height} pixels: no image"
    return None


def _problems(paths: Sequence[str]) -> list[str | None]:
    return [header_problem(p) for p in paths]


def check_headers(paths: Sequence[str | os.PathLike[str]], *, workers: int | None = None) -> list[str | None]:
    """header_problem for every path, in order; large folders are checked by a process pool.

    60,000 files take about 4 s in one process, a fraction of that spread over all cores.
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
    """`tree` with the files whose headers Pillow cannot read moved from `files` to `problems`."""
    reasons = check_headers([tree.root / rel for rel, _ in tree.files], workers=workers)
    kept = [item for item, reason in zip(tree.files, reasons) if reason is None]
    bad = [(rel, reason) for (rel, _), reason in zip(tree.files, reasons) if reason is not None]
    return ClassTree(root=tree.root, classes=tree.classes, files=kept, problems=tree.problems + bad,
                     ignored=tree.ignored)
