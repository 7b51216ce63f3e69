"""Options several commands share: one set of flags each, so a short flag means the same in every command.

`-o` is always --output, `-c` always --checkpoint, `-b` --batch-size, `-j` --workers, `-f` --format,
`-a` --arch. What the option is for differs by command (a run folder, a report folder, a file), so each
command gives its own help through `option(name, help)`; options whose help is the same everywhere are
ready-made Annotated aliases.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from resnetcli.engine.config import FIELDS

#: option -> its flags, the same in every command (tests/test_cli.py checks no short flag has two meanings)
FLAGS: dict[str, tuple[str, ...]] = {
    "output": ("--output", "-o"),
    "checkpoint": ("--checkpoint", "-c"),
    "batch_size": ("--batch-size", "-b"),
    "workers": ("--workers", "-j"),
    "device": ("--device",),
    "format": ("--format", "-f"),
    "arch": ("--arch", "-a"),
    "arch_option": ("--arch-option",),
    "seed": ("--seed",),
}

ARCH_HELP = str(FIELDS["arch"].description)
ARCH_OPTION_HELP = "Architecture option KEY=VALUE (repeatable), e.g. shortcut=B, depth=74."


def option(name: str, help: str, **settings: Any) -> Any:
    """The typer.Option of shared option `name` with this command's help (and panel, metavar...)."""
    return typer.Option(*FLAGS[name], help=help, **settings)


#: the device rule is the training config's (resnetcli/engine/config.py); test and predict take the same values
Device = Annotated[str, option("device", str(FIELDS["device"].description))]
Arch = Annotated[str, option("arch", ARCH_HELP)]
ArchOption = Annotated[list[str] | None, option("arch_option", ARCH_OPTION_HELP, metavar="K=V")]
