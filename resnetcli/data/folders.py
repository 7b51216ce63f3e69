"""Reading a class-per-folder image tree (Caltech-256's `256_ObjectCategories/001.ak47/001_0001.jpg`).

Scanning only lists and stats files; decoding is left to whoever loads them. Files that cannot be
images (zero bytes, broken links, symlink loops) are set aside here with their reason, so both
`preprocess` (which reports them) and training on the raw folder (which must not trip on them) agree.
resnetcli.data.headers goes one step further for training: it reads every file's header, so a file that
is not an image is set aside before the first epoch, not in the middle of one.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

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
        # DOTALL: a folder name may hold a newline, and its images must not vanish because of it
        regex = re.compile(pattern or DEFAULT_LABEL_PATTERN, re.DOTALL)
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
    #: (size, modification time in ns) of each of `files` when scanned
    stamps: list[tuple[int, int]] = field(default_factory=list)
    #: the channels each of `files` stores (images.stored_channels), once its header was read (headers.py)
    stored: list[int] | None = None


def escapes(link: str, root: str) -> str | None:
    """Why the folder symlink `link` must not be followed from the tree at `root` (both real paths compared):
    it points outside the tree, or at a folder holding `link` itself (every image would be counted again)."""
    target = os.path.realpath(link)
    real_root = os.path.realpath(root)
    if os.path.commonpath([target, real_root]) != real_root:
        return f"a folder link to {target}, outside {root} (not followed)"
    here = os.path.realpath(os.path.dirname(os.path.abspath(link)))
    if os.path.commonpath([target, here]) == target:
        return f"a folder link to {target}, which holds it (not followed)"
    return None


def _walk_files(
    folder: str, prefix: str, seen: set[tuple[int, int]], root: str | None = None,
    problems: list[tuple[str, str]] | None = None,
) -> list[tuple[str, os.DirEntry]]:
    """(prefix + relative path, entry) of every non-hidden file under `folder`, sorted.

    Folder symlinks are followed once (no loops), and only within `root` (see `escapes`; each one refused
    goes to `problems`). Strings and DirEntry rather than pathlib: this walk visits every file of the tree,
    and pathlib's parsing was most of a 60,000-file scan.
    """
    try:
        info = os.stat(folder)
    except OSError:
        return []
    key = (info.st_dev, info.st_ino)
    if key in seen:
        return []
    seen.add(key)
    found: list[tuple[str, os.DirEntry]] = []
    try:
        entries = _listing(folder)
    except OSError:
        return []
    for entry, is_dir in entries:
        if is_dir:
            reason = escapes(entry.path, root) if root is not None and entry.is_symlink() else None
            if reason is not None:
                if problems is not None:
                    problems.append((prefix + entry.name + "/", reason))
                continue
            found.extend(_walk_files(entry.path, prefix + entry.name + "/", seen, root, problems))
        else:
            found.append((prefix + entry.name, entry))
    return found


def _listing(folder: str | os.PathLike[str]) -> list[tuple[os.DirEntry, bool]]:
    """The folder's non-hidden entries in name order, each with whether it is a folder (unreadable: no)."""
    listed = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if is_hidden(entry.name):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        listed.append((entry, is_dir))
    return listed


def _class_folders(
    root: Path, parse, exclude: set[str], problems: list[tuple[str, str]]
) -> tuple[list[tuple[str, Path]], list[str]]:
    """[(class name, folder)] in folder-name order, and the root's entries that are not classes; folder links
    that lead outside the tree or to a folder holding it go to `problems`."""
    folders: list[tuple[str, Path]] = []
    ignored: list[str] = []
    for entry, is_dir in _listing(root):
        if not is_dir:
            ignored.append(entry.name)
            continue
        reason = escapes(entry.path, str(root)) if entry.is_symlink() else None
        if reason is not None:
            problems.append((entry.name + "/", reason))
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
    problems: list[tuple[str, str]] = []
    folders, ignored = _class_folders(root, parse, set(exclude_classes), problems)
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
    tree = ClassTree(root=root, classes=names, ignored=ignored, problems=problems)
    for label, folder in folders:
        class_id = names.index(label)
        count = 0
        for rel, entry in _walk_files(str(folder), folder.name + "/", set(), str(root), tree.problems):
            if not is_image_name(entry.name):
                tree.ignored.append(rel)
                continue
            count += 1
            try:
                info = entry.stat()
            except OSError as exc:
                tree.problems.append((rel, f"unreadable: {exc.strerror or exc}"))
                continue
            if not stat.S_ISREG(info.st_mode):
                tree.problems.append((rel, "not a regular file"))
            elif info.st_size == 0:
                tree.problems.append((rel, "empty file (0 bytes)"))
            else:
                tree.files.append((rel, class_id))
                tree.stamps.append((info.st_size, info.st_mtime_ns))
        if count == 0:
            raise DataError(
                f"class folder {folder} has no images; add some, delete the folder, "
                f"or pass --exclude-class {folder.name}"
            )
    return tree
