"""`resnetcli summarize`: the layer table of any registered architecture (work in resnetcli/summary.py)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from resnetcli.commands.common import Arch, ArchOption, option


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


def summarize_command(
    arch: Arch,
    num_classes: Annotated[
        int | None,
        typer.Option(help="Classes of the head. Default: 1000 for ImageNet-style networks, 10 for CIFAR-style.",
                     show_default=False),
    ] = None,
    input_size: Annotated[
        int | None,
        typer.Option(help="Square input side in pixels. Default: the network's own (224 ImageNet, 32 CIFAR).",
                     show_default=False),
    ] = None,
    in_channels: Annotated[int, typer.Option(help="Input channels (1 for grayscale).")] = 3,
    output_format: Annotated[Format, option("format", "table, json or markdown.")] = Format.table,
    depth: Annotated[int, typer.Option(help="Nesting shown: 1 = stem, blocks and head; 2 = blocks' inner layers.")] = 1,
    arch_option: ArchOption = None,
) -> None:
    """Print a network's layers: output sizes, kernels, strides, parameters, MACs and activation memory."""
    from resnetcli.console import out
    from resnetcli.options import parse_key_values
    from resnetcli.summary import render_json, render_markdown, render_table, summarize_arch

    options = parse_key_values(arch_option, "--arch-option")
    summary = summarize_arch(arch, num_classes=num_classes, input_size=input_size, in_channels=in_channels,
                             depth=depth, options=options)
    if output_format is Format.json:
        # plain print: rich would wrap or highlight what a script parses
        typer.echo(render_json(summary))
    elif output_format is Format.markdown:
        typer.echo(render_markdown(summary), nl=False)
    else:
        out.print(render_table(summary))
