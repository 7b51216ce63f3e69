"""`resnetcli train` (being built: see its issue)."""

from __future__ import annotations

from resnetcli.errors import UsageError


def train_command() -> None:
    """Not yet available."""
    raise UsageError("'train' is not available yet")
