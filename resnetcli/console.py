"""Where output goes: results to stdout, progress, logs and errors to stderr.

Any text a user controls (paths, file, class, run and plugin names) reaches the terminal through `escape`:
rich markup in it is shown, not applied (a name holding `[/]` would otherwise crash rich), and terminal
control characters are shown as `\\x1b`-style escapes, never sent raw.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console


def new_console(**options: Any) -> Console:
    """A console as every one the tool prints through: markup styles our own words, while highlighting and emoji
    codes are off (a file named `a:smile:b.png` is shown as named, not with a face in it)."""
    return Console(**{"highlight": False, "soft_wrap": True, "emoji": False, **options})


#: results a script may parse (tables, JSON)
out = new_console()
#: everything else: errors, warnings, progress summaries
err = new_console(stderr=True)

#: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder a line
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every terminal control character written as an escape (ESC -> '\\x1b')."""
    return _CONTROL.sub(lambda m: (f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                   else f"\\u{ord(m.group()):04x}"), text)


#: a `[` and the backslashes before it; the end of the text and the backslashes before it
_BRACKET = re.compile(r"(\\*)\[")
_TRAILING_BACKSLASHES = re.compile(r"(\\+)$")
#: an empty span: shows nothing, and ends a run of backslashes so that none of them escapes what follows
_STOP = "[i][/i]"


def _backslashes(run: str) -> str:
    """A run of backslashes as rich shows it before a tag: doubled, then stopped."""
    return run * 2 + _STOP if run else ""


def escape(text: str) -> str:
    """`text` safe to print through rich: shown exactly as written (markup, backslashes and emoji codes included),
    control characters neutralized, wherever it sits in a message and whatever text follows it.

    Every `[` is written `\\[`: rich shows that as `[` whether or not a tag would follow (a `]` may come from text
    printed after this one). Backslashes before a `[` or at the end are doubled and stopped with an empty span,
    so that they neither escape nor are eaten by what comes next."""
    escaped = _BRACKET.sub(lambda m: _backslashes(m.group(1)) + "\\[", printable(text))
    return _TRAILING_BACKSLASHES.sub(lambda m: _backslashes(m.group(1)), escaped)


def warn(message: str) -> None:
    """One yellow line on stderr."""
    err.print(f"[yellow]warning:[/] {escape(message)}")
