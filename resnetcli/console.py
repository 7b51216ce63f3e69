"""Where output goes: results to stdout, progress, logs and errors to stderr."""

from __future__ import annotations

from rich.console import Console

#: results a script may parse (tables, JSON)
out = Console(highlight=False, soft_wrap=True)
#: everything else: errors, warnings, progress summaries
err = Console(stderr=True, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """One yellow line on stderr."""
    err.print(f"[yellow]warning:[/] {_escape(message)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
