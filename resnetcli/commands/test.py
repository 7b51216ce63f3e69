"""`resnetcli test` (being built: see its issue)."""

from __future__ import annotations

from resnetcli.errors import UsageError


def test_command() -> None:
    """Not yet available."""
    raise UsageError("'test' is not available yet")
