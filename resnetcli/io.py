"""Atomic output: every file resnetcli writes appears whole or not at all.

Write to a temporary name in the same folder, flush to disk, then os.replace() into place, so a crash,
a full disk or Ctrl-C leaves either the previous file or none, never a half-written one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from io import StringIO
from pathlib import Path
from typing import Any

_UMASK: list[int] = []


def _umask() -> int:
    """The process umask (read once: reading it means setting it, briefly)."""
    if not _UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK.append(mask)
    return _UMASK[0]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: give the final file the mode open() would
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A header line and rows, comma-separated with csv's quoting and '\n' line ends: the one CSV dialect."""
    buffer = StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: str | os.PathLike[str], header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> None:
    """csv_text(header, rows) written atomically to `path`."""
    write_text(path, csv_text(header, rows))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def reclaim_partial_dirs(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary folders of `path` (`.NAME.PID.XXXX.partial`, `.NAME.old-PID`) that a process
    killed before it could clean up (kill -9, power loss) left behind; folders of live processes stay."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)\.[^/]*\.partial|old-(\d+))")
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _pid_alive(int(match.group(1) or match.group(2))):
            shutil.rmtree(path.parent / name, ignore_errors=True)
            removed.append(path.parent / name)
    return removed


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it is renamed to `path`.

    With replace=True an existing `path` is swapped out only after the new one is complete. The temporary
    name holds this process's id, so the next run reclaims what a killed one left (reclaim_partial_dirs).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    reclaim_partial_dirs(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: a dataset others cannot read
    try:
        yield tmp
        if path.exists():
            if not replace:
                raise FileExistsError(path)
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
