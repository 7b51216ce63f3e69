"""`resnetcli summarize` (being built: see its issue)."""

from __future__ import annotations

from resnetcli.errors import UsageError


def summarize_command() -> None:
    """Not yet available."""
    raise UsageError("'summarize' is not available yet")
