"""Where output goes: results to stdout, progress, logs and errors to stderr.

Any text a user controls (paths, file, class, run and plugin names) reaches the terminal through `escape`:
rich markup in it is shown, not applied (a name holding `[/]` would otherwise crash rich), and terminal
control characters are shown as `\\x1b`-style escapes, never sent raw.
"""

from __future__ import annotations

import re

from rich.console import Console

#: results a script may parse (tables, JSON)
out = Console(highlight=False, soft_wrap=True)
#: everything else: errors, warnings, progress summaries
err = Console(stderr=True, highlight=False, soft_wrap=True)

#: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder a line
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every terminal control character written as an escape (ESC -> '\\x1b')."""
    return _CONTROL.sub(lambda m: (f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                   else f"\\u{ord(m.group()):04x}"), text)


def escape(text: str) -> str:
    """`text` safe to print through rich: markup shown literally, control characters neutralized."""
    from rich.markup import escape as escape_markup

    return escape_markup(printable(text))


def warn(message: str) -> None:
    """One yellow line on stderr."""
    err.print(f"[yellow]warning:[/] {escape(message)}")
