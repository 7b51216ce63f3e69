"""`resnetcli doctor DATA`: duplicates, leakage between splits, conflicting labels, balance and shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def doctor_command(
    data: Annotated[
        str,
        typer.Argument(help="A dataset folder (raw class folders or preprocessed) or a dataset name "
                       "(fashion-mnist, cifar10, ...).", show_default=False),
    ],
    root: Annotated[
        Path | None,
        typer.Option(help="Where a named dataset's files are.", show_default=False),
    ] = None,
    threshold: Annotated[
        int, typer.Option(help="Near duplicates: difference hashes at most this many bits (of 64) apart.")
    ] = 5,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the findings to this JSON file.", show_default=False),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes decoding image files. Default: all cores.", show_default=False)
    ] = None,
) -> None:
    """Check a dataset: exact and near duplicates within and across classes and splits, balance, image shapes."""
    from resnetcli.console import escape, out
    from resnetcli.data import open_source
    from resnetcli.doctor import examine_source, public, summary_lines
    from resnetcli.errors import UsageError
    from resnetcli.io import write_json

    if not 0 <= threshold <= 32:
        raise UsageError(f"--threshold must be 0..32 bits, got {threshold}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    source = open_source(data, root)
    _, findings = examine_source(source, threshold=threshold, workers=workers)
    for line in summary_lines(findings):
        out.print(escape(line))
    for example in findings["examples"][:5]:
        a, b = example["a"], example["b"]
        out.print(escape(f"  {example['kind']} ({example['distance']} bits): {a['split']}/{a['class']} {a['image']}"
                         f"  ~  {b['split']}/{b['class']} {b['image']}"))
    if output is not None:
        write_json(output, public(findings))
        out.print(escape(f"wrote {output}"))
