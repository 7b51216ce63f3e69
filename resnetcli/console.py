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


#: a `[` and the backslashes before it; group 2 is set where rich would read a tag (rich.markup.RE_TAGS)
_BRACKET = re.compile(r"(\\*)\[(?=([a-z#/@][^[]*?\])?)")
_TRAILING_BACKSLASHES = re.compile(r"(\\+)$")


def _escape_bracket(match: re.Match[str]) -> str:
    backslashes = match.group(1)
    if match.group(2):  # would open a tag: escaped, each backslash before it doubled (as rich.markup.escape)
        return backslashes * 2 + "\\["
    # not a tag, but rich still shows `\[` as `[`: one more backslash keeps those before it
    return backslashes + ("\\" if backslashes else "") + "["


def escape(text: str) -> str:
    """`text` safe to print through rich: shown exactly as written (markup, `\\[` and emoji codes included), control
    characters neutralized, wherever it sits in a message. Trailing backslashes are doubled and closed with an empty
    span, which shows nothing: before a closing tag they would escape it, at the end of a message they show as
    typed."""
    escaped = _BRACKET.sub(_escape_bracket, printable(text))
    return _TRAILING_BACKSLASHES.sub(lambda m: m.group(1) * 2 + "[i][/i]", escaped)


def warn(message: str) -> None:
    """One yellow line on stderr."""
    err.print(f"[yellow]warning:[/] {escape(message)}")
