"""`resnetcli predict` (being built: see its issue)."""

from __future__ import annotations

from resnetcli.errors import UsageError


def predict_command() -> None:
    """Not yet available."""
    raise UsageError("'predict' is not available yet")
