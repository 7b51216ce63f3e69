"""README.md as a contract: its command lines are ones the CLI accepts, and the tests it names exist.

The README is what a new user copies from; a renamed flag or a test that no longer exists must fail here rather
than in a user's terminal or in a promise nobody checks any more.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from resnetcli.cli import COMMANDS, app

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
GLOBAL = {"--verbose", "-v"}


def _code_lines() -> list[str]:
    """Every `resnetcli ...` line inside a fenced block (a `$ ` prompt and a trailing `  # comment` dropped)."""
    found, fenced = [], False
    for line in README.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced and (m := re.match(r"^(?:\$ )?(resnetcli\s.*)$", line)):
            found.append(re.split(r"\s{2,}#", m.group(1))[0].strip())
    return found


def _inline() -> list[str]:
    return sorted(set(re.findall(r"`(resnetcli [^`]*)`", README)))


def _placeholder(args: list[str]) -> bool:
    """A synopsis (`[--top-k 5]`, `IMAGES...`, `DATA`) rather than a line to run as it stands."""
    return any("..." in a or "[" in a or "|" in a or re.fullmatch(r"[A-Z_]{3,}", a) for a in args)


def _split(line: str) -> tuple[str | None, list[str]]:
    args = [a for a in shlex.split(line)[1:] if a not in GLOBAL]
    return (args[0], args[1:]) if args and not args[0].startswith("-") else (None, args)


LINES = _code_lines() + _inline()
CODE_LINES = _code_lines()


def test_the_readme_shows_every_command() -> None:
    shown = {_split(line)[0] for line in LINES}
    assert set(COMMANDS) <= shown, set(COMMANDS) - shown
    assert len(CODE_LINES) > 30  # the scan found the examples


@pytest.mark.parametrize("line", LINES)
def test_every_flag_the_readme_shows_exists(line: str) -> None:
    root = typer.main.get_command(app)
    name, args = _split(line)
    command = root if name is None else root.commands[name]  # type: ignore[attr-defined]
    known = {flag for param in command.params for flag in (*param.opts, *param.secondary_opts)}
    known |= {"--help", "-h"} | ({"--install-completion", "--show-completion"} if name is None else set())
    flags = {a.strip("[]").split("=")[0] for a in args if a.strip("[").startswith("-")}
    assert flags <= known, (line, flags - known)


@pytest.mark.parametrize("line", [line for line in CODE_LINES if not _placeholder(_split(line)[1])])
def test_every_command_line_in_the_readme_parses(line: str) -> None:
    """Types, counts and choices too: `--top-k 3`, `--format csv`, `--compare A B` as the command reads them."""
    root = typer.main.get_command(app)
    name, args = _split(line)
    assert name is not None, line
    root.commands[name].make_context(name, args)  # type: ignore[attr-defined]


def test_every_test_the_readme_names_exists() -> None:
    named = re.findall(r"`?(test_\w+\.py)(?:::(\w+))?", README)
    assert len(named) > 20
    missing = []
    for file, function in named:
        path = ROOT / "tests" / file
        if not path.is_file() or (function and not re.search(rf"^def {function}\(", path.read_text(), re.M)):
            missing.append(f"{file}::{function}" if function else file)
    assert not missing, missing
