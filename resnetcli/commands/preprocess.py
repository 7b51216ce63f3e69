"""`resnetcli preprocess` (being built: see its issue)."""

from __future__ import annotations

from resnetcli.errors import UsageError


def preprocess_command() -> None:
    """Not yet available."""
    raise UsageError("'preprocess' is not available yet")
