"""Where named datasets live on disk, and fetching them with torchvision when asked (never by default).

Named datasets look for their files under `root`, by default $RESNETCLI_DATA or
~/.cache/resnetcli/datasets. Nothing downloads unless asked (`download=True`, or `resnetcli preprocess
--input NAME`); a failed download is one clear line saying where to put the files by hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from resnetcli.errors import DataError

#: seconds a download may wait on a silent connection before giving up
DOWNLOAD_TIMEOUT = 60.0


def data_home() -> Path:
    """Default root for named datasets: $RESNETCLI_DATA, else ~/.cache/resnetcli/datasets."""
    return Path(os.environ.get("RESNETCLI_DATA") or "~/.cache/resnetcli/datasets").expanduser()


def dataset_root(root: str | os.PathLike[str] | None) -> Path:
    """`root` (user-expanded), or data_home() when None."""
    return Path(root).expanduser() if root is not None else data_home()


def fetch(what: str, root: Path, run: Callable[[], object], hint: str) -> None:
    """Run a torchvision download; any failure (no network, bad checksum) becomes one clear line."""
    import socket

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # a firewalled network must fail, not hang forever
    try:
        run()
    except Exception as exc:  # urllib, ssl, checksum, disk: all mean "could not get the files"
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise DataError(
            f"{what} was not found under {root} and downloading it failed ({reason}); "
            f"without a network, {hint}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
