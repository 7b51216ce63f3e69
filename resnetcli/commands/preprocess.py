"""`resnetcli preprocess`: an image folder or a named dataset -> a split, resized, processed folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_CHANNELS = {1: "1 channel (gray)", 3: "3 channels (RGB)"}


def preprocess_command(
    input: Annotated[
        str,
        typer.Option("--input", "-i", help="A folder with one sub-folder per class (Caltech-256 layout), "
                     "or a dataset name (fashion-mnist, cifar10, caltech256, ...; see `resnetcli list datasets`).",
                     show_default=False),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to create.", show_default=False)],
    size: Annotated[
        str | None,
        typer.Option(help="Smaller side in pixels (aspect kept), or exact HxW such as 224x224. "
                     "Default: 256 for photo folders, the native size for CIFAR/MNIST.", show_default=False),
    ] = None,
    center_crop: Annotated[
        bool, typer.Option("--center-crop", help="Resize to cover --size, then crop its center.")
    ] = False,
    val_split: Annotated[float, typer.Option(help="Fraction held out for validation (stratified).")] = 0.2,
    test_split: Annotated[float, typer.Option(help="Fraction held out for testing (image folders).")] = 0.0,
    test_input: Annotated[
        Path | None,
        typer.Option(help="A separate class-per-folder tree to write as the test split.", show_default=False),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the train/val/test split.")] = 0,
    label_pattern: Annotated[
        str | None,
        typer.Option(help="Regex turning a folder name into a class name (group 'name' or 1). "
                     r"Default: '^(?:\d+\.)?(?P<name>.+)$' ('001.ak47' -> 'ak47').", show_default=False),
    ] = None,
    exclude_class: Annotated[
        list[str] | None,
        typer.Option(help="Leave out this class folder or class name (repeatable), e.g. 257.clutter.",
                     show_default=False),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes to use. Default: all cores.", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing dataset at --output.")] = False,
    quality: Annotated[int, typer.Option(help="JPEG quality of the written images (1-100).")] = 95,
    root: Annotated[
        Path | None,
        typer.Option(help="Where a named dataset's files are (or are downloaded to).", show_default=False),
    ] = None,
    source_option: Annotated[
        list[str] | None,
        typer.Option("--source-option", help="KEY=VALUE passed to the dataset (e.g. label_type=coarse).",
                     show_default=False),
    ] = None,
    channels: Annotated[
        str, typer.Option("--channels", metavar="1|3|auto", help="Channels to write: 1 (gray), 3 (RGB), or auto: the "
                          "dataset's own; for an image folder 1 when every file is stored gray (mode L, LA, I;16: "
                          "an RGB file with equal channels counts as colour).")
    ] = "auto",
    dedupe: Annotated[
        bool, typer.Option("--dedupe", help="Leave out exact and near duplicates (the data doctor's), keeping the "
                           "first copy in train, val, test order, so no image is in two splits.")
    ] = False,
) -> None:
    """Split, resize and measure a dataset into train/val(/test) JPEG folders with CSVs and rgb_val.json."""
    from resnetcli.console import escape, out
    from resnetcli.options import parse_key_values
    from resnetcli.preprocess import preprocess

    report = preprocess(
        input, output, size=size, center_crop=center_crop, val_split=val_split, test_split=test_split,
        test_input=test_input, seed=seed, label_pattern=label_pattern, exclude_classes=exclude_class or [],
        workers=workers, force=force, quality=quality, root=root,
        source_options=parse_key_values(source_option, "--source-option"), dedupe=dedupe, channels=channels,
    )
    splits = ", ".join(f"{name} {n}" for name, n in report["written_per_split"].items())
    out.print(escape(
        f"wrote {report['written']} images ({splits}; {report['classes']} classes, "
        f"{_CHANNELS[report['channels']]}) to {output} "
        f"in {report['seconds']:.1f} s ({report['images_per_second']} images/s); "
        f"skipped {report['skipped_count']} (see {output / 'report.json'})"
    ))
    from resnetcli.doctor import summary_lines

    doctor = report.get("doctor")
    if doctor:
        # the duplicates and the class balance (imbalance ratio); `resnetcli doctor` prints the rest
        for line in list(summary_lines(doctor))[1:4]:
            out.print(escape(f"doctor: {line}"))
        if dedupe:
            out.print(f"doctor: --dedupe left out {doctor['dropped']} duplicates")
