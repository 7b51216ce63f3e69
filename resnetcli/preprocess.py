"""`resnetcli preprocess`: any dataset source -> the processed-folder layout, in parallel, atomically.

OUTPUT/
  train/<uuid>.jpg, val/<uuid>.jpg, test/<uuid>.jpg   resized images with fresh random names
  categories.csv   name,id
  train.csv, val.csv, test.csv   image,class_id   (image relative to OUTPUT)
  rgb_val.json     per-channel mean and std, 0-255 scale, measured on the resized train images
  report.json      what went in, what was written, every skipped file with its reason

Image folders go through resnetcli.data.images.load_resized (plain JPEGs decoded by OpenCV at 1/2, 1/4
or 1/8 scale when that stays above the target size, everything else by Pillow) and a process pool; array
datasets (CIFAR, MNIST) go through the same writer at their native size. The whole folder is built beside
OUTPUT and renamed into place at the end, so an interrupted run never leaves something that looks like a
finished dataset.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from resnetcli import __version__
from resnetcli.console import warn
from resnetcli.data import Source, SourceSpec, build_source, resolve_source
from resnetcli.data.images import (
    BadImage,
    adapt_channels,
    dataset_channels,
    encode_jpeg,
    load_resized,
    parse_channels,
    resize_array,
    stored_header,
)
from resnetcli.data.source import MIN_STD
from resnetcli.doctor import check_written, fingerprint
from resnetcli.errors import DataError, UsageError
from resnetcli.io import atomic_dir, write_csv, write_json, write_text
from resnetcli.signals import TERMINATION_SIGNALS, interrupt_on_termination

#: side of the smaller image edge for photo folders when --size is not given (the seed's choice)
DEFAULT_SIZE = 256
#: the largest side --size may ask for: beyond it one image takes gigabytes (and no ResNet input is this big)
MAX_SIZE = 4096
#: the file marking a folder preprocess wrote: the only kind of folder --force replaces
MARKER = ".resnetcli-dataset"
MARKER_TEXT = "resnetcli processed dataset, format 1\n"

Size = int | tuple[int, int]


def parse_size(text: str | int | None) -> Size | None:
    """'256' -> 256 (smaller side); '224x192' -> (224, 192) as (height, width); None stays None."""
    if text is None:
        return None
    if isinstance(text, tuple):
        if len(text) != 2:
            raise UsageError(f"--size must be N or (height, width) with positive sides, got {text}")
        return _bounded(text, str(text))
    if isinstance(text, int):
        return _bounded((text,), str(text))
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX,]\s*(\d+)\s*)?", str(text))
    if not match:
        raise UsageError(f"--size expects N (smaller side) or HxW (for example 224x224), got '{text}'")
    return _bounded(tuple(int(g) for g in match.groups() if g is not None), f"'{text}'")


def _bounded(sides: tuple[int, ...], shown: str) -> Size:
    if min(sides) <= 0:
        raise UsageError(f"--size must be positive, got {shown}")
    if max(sides) > MAX_SIZE:
        raise UsageError(f"--size allows sides up to {MAX_SIZE} pixels, got {shown}")
    return int(sides[0]) if len(sides) == 1 else (int(sides[0]), int(sides[1]))


# ---------------------------------------------------------------------------------------------------------
# the worker side: one image in, one JPEG out (plus its pixel sums for the train statistics)

_STATE: dict[str, Any] = {}
#: the source, for workers forked from the parent (they inherit it instead of reading the files again)
_INHERITED: Source | None = None


def _init_worker(settings: dict[str, Any], in_pool: bool = True) -> None:
    if in_pool:
        # Ctrl-C is the parent's to handle (it stops the pool); workers would only print tracebacks.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # a forked worker inherits the parent's SIGTERM/SIGHUP handler; the pool stops workers with SIGTERM,
        # which must end them quietly
        for sig in TERMINATION_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        # No cv2.setNumThreads(1) here: in a worker forked from a parent whose OpenCV thread pool already ran
        # (a test process, or any caller that resized before), it waits forever on the parent's pool threads.
    _STATE.clear()
    _STATE.update(settings)
    if settings.get("source_spec") is not None:
        if _INHERITED is not None:
            _STATE["source"] = _INHERITED
        else:  # spawned worker (macOS, Windows): rebuild the source from how it was built
            name, root, options = settings["source_spec"]
            _STATE["source"] = build_source(name, root, **options)


def _process(task: tuple) -> tuple:
    """task = (slot, path or None, source split, index, output split, want stats)."""
    import cv2

    slot, path, split, index, out_split, want_stats = task
    size, wanted = _STATE["size"], _STATE["channels"]
    try:
        if path is not None:
            # --channels auto: each file keeps what it stores (gray or colour); the parent decides the dataset's
            on_disk, stored = stored_header(path)
            channels = stored if wanted == "auto" else wanted
            arr = load_resized(path, size, center_crop=_STATE["center_crop"], channels=channels,
                               max_pixels=_STATE["max_pixels"])
        else:
            arr, _ = _STATE["source"].split(split).load(index)
            on_disk = (arr.shape[1], arr.shape[0])
            channels = arr.shape[2] if wanted == "auto" else wanted
            arr = resize_array(np.ascontiguousarray(adapt_channels(arr, channels)), size,
                               center_crop=_STATE["center_crop"])
    except BadImage as exc:
        return slot, None, str(exc), None, None, None
    name = f"{out_split}/{uuid.uuid4().hex}.jpg"
    data = encode_jpeg(arr, _STATE["quality"])
    target = os.path.join(_STATE["out_dir"], name)
    try:
        with open(target, "xb") as f:
            f.write(data)
            f.flush()
            # a file-size limit (ulimit -f) can cut a write short: that must fail, not leave a truncated JPEG
            if os.fstat(f.fileno()).st_size != len(data):
                raise OSError(errno.EFBIG, f"only {os.fstat(f.fileno()).st_size} of {len(data)} bytes written")
    except OSError as exc:
        Path(target).unlink(missing_ok=True)
        what = path if path is not None else f"{split} image {index}"
        raise DataError(f"cannot write {name} (from {what}) under {_STATE['out_dir']}: "
                        f"{exc.strerror or exc}") from None
    stats = None
    if want_stats:
        # per-channel sums and sums of squares, from OpenCV's double-precision mean and deviation
        mean, std = (v.ravel()[:channels] for v in cv2.meanStdDev(arr))
        pixels = arr.shape[0] * arr.shape[1]
        stats = (mean * pixels, (std ** 2 + mean ** 2) * pixels, pixels)
    # the doctor's fingerprint, from the pixels written (not a second decode)
    return slot, name, None, stats, fingerprint(arr, on_disk), channels


# ---------------------------------------------------------------------------------------------------------
# the parent side


def _gray_to_rgb(files: list[Path], quality: int) -> None:
    """Rewrite gray JPEGs as RGB ones (the gray on all three channels), so every file of an RGB dataset is RGB.

    Only the gray files of a folder that turned out to mix gray and colour (--channels auto); usually a few."""
    import cv2

    for file in files:
        gray = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
        file.write_bytes(encode_jpeg(adapt_channels(gray[:, :, None], 3), quality))  # inside the temporary folder


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_output(output: Path, force: bool) -> bool:
    """Refuse an output that holds something; returns whether an existing folder is to be replaced."""
    if not output.exists():
        return False
    if not output.is_dir():
        raise DataError(f"--output {output} is a file; give a folder")
    if not any(output.iterdir()):
        return True  # an empty folder: nothing to lose
    # only the marker preprocess writes proves the folder is ours: a report.json or categories.csv may be a user's
    if not (output / MARKER).is_file():
        raise DataError(
            f"--output {output} is not empty and is not a resnetcli dataset (no {MARKER} file in it); --force "
            "replaces only a folder `resnetcli preprocess` wrote: choose a new or empty folder"
        )
    if not force:
        raise DataError(f"--output {output} already holds a dataset; pass --force to replace it")
    return True


def _check_overlap(source_root: Path, output: Path) -> None:
    src_real, out_real = source_root.resolve(), output.resolve()
    if out_real.is_relative_to(src_real) or src_real.is_relative_to(out_real):
        raise UsageError(f"--output {output} and the input {source_root} overlap; write the dataset elsewhere")


def _source_spec(
    input: str | os.PathLike[str],
    root: str | os.PathLike[str] | None,
    folder_options: dict[str, Any],
    general_options: dict[str, Any],
) -> SourceSpec:
    """How to build the input's source (resnetcli.data.resolve_source), with the options its builder takes.

    folder_options: {option: (value, the flag that set it, or None)}; a flag the builder cannot take is
    refused, an unset one is left out. general_options go wherever they are taken.
    """
    from resnetcli.registry import registry

    spec = resolve_source(input, root)
    entry = registry("datasets").entry(spec.name)
    options: dict[str, Any] = {}
    for key, (value, flag) in folder_options.items():
        if entry.accepts(key):
            options[key] = value
        elif flag is not None:
            raise UsageError(f"{flag} applies to image folders; dataset '{spec.name}' does not take it")
    for key, value in general_options.items():
        if entry.accepts(key):
            options[key] = value
    return SourceSpec(spec.name, spec.root, options)


def preprocess(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    size: Size | str | None = None,
    center_crop: bool = False,
    val_split: float = 0.2,
    test_split: float = 0.0,
    test_input: str | os.PathLike[str] | None = None,
    seed: int = 0,
    label_pattern: str | None = None,
    exclude_classes: list[str] | tuple[str, ...] = (),
    workers: int | None = None,
    force: bool = False,
    quality: int = 95,
    root: str | os.PathLike[str] | None = None,
    source_options: dict[str, Any] | None = None,
    download: bool = True,
    progress: bool = True,
    max_pixels: int | None = None,
    dedupe: bool = False,
    channels: int | str = "auto",
) -> dict[str, Any]:
    """Write `input` (an image folder or any registered dataset) to `output` in the processed layout.

    size: smaller side (int), exact (height, width), or None for 256 on photo folders and the native
    size of fixed-size datasets. Returns the report also written to output/report.json.
    The data doctor's findings (resnetcli/doctor.py) go into the report; dedupe leaves out every exact
    or near duplicate of an image kept earlier (train, then val, then test), so no picture is in two splits.
    channels: 1 (gray), 3 (RGB) or auto: the dataset's own (1 for MNIST; for an image folder, 1 when every
    file is stored as a gray image, judged by its mode: L, LA, 1, I;16, I, F).
    """
    started = time.perf_counter()
    size = parse_size(size)
    if center_crop and size is None:
        size = DEFAULT_SIZE
    if not 1 <= quality <= 100:
        raise UsageError(f"--quality must be 1..100, got {quality}")
    wanted = parse_channels(channels)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    for flag, value in (("--val-split", val_split), ("--test-split", test_split)):
        if not 0.0 <= value < 1.0:
            raise UsageError(f"{flag} must be in [0, 1), got {value}")
    output = Path(output).expanduser()

    folder_options = {
        "label_pattern": (label_pattern, "--label-pattern" if label_pattern else None),
        "exclude_classes": (tuple(exclude_classes), "--exclude-class" if exclude_classes else None),
        "test_root": (Path(test_input) if test_input else None, "--test-input" if test_input else None),
        "test_split": (test_split, "--test-split" if test_split else None),
    }
    # check_images=False: the workers decode every file in full and report the bad ones themselves
    general = {"val_split": val_split, "seed": seed, "check_images": False, **({"download": True} if download else {})}
    spec = _source_spec(input, root, folder_options, general)
    name, where, options = spec.name, spec.root, {**spec.options, **(source_options or {})}
    if where is not None and root is None:
        _check_overlap(where, output)
    replace = _check_output(output, force)  # before reading anything: a refused run must be quick
    source = build_source(name, where, **options)
    _check_overlap(source.root, output)
    if size is None and source.image_size is None:
        size = DEFAULT_SIZE

    notes = source.notes
    skipped: list[dict[str, str]] = [
        {"file": str(source.root / rel) if not os.path.isabs(rel) else rel, "reason": reason}
        for rel, reason in notes.get("problems", [])
    ]
    tasks: list[tuple] = []
    origins: list[tuple[str, int, str]] = []  # slot -> (what it was, label, output split)
    uses_array = False
    for split_name in source.splits():
        split = source.split(split_name)
        for i in range(len(split)):
            path = split.path(i)
            uses_array |= path is None
            tasks.append((len(tasks), str(path) if path is not None else None, split_name, i, split_name,
                          split_name == "train"))
            origins.append((str(path) if path is not None else f"{split_name}:{split.ident(i)}",
                            split.labels[i], split_name))
    if not tasks:
        raise DataError(f"no images found in {input}")

    n_workers = min(workers or _default_workers(), len(tasks))
    rows: dict[str, list[tuple[str, int]]] = {s: [] for s in source.splits()}
    results: list[tuple[str | None, str | None]] = [(None, None)] * len(tasks)
    # train statistics by the channels each image was written with (auto mixes gray and colour files)
    sums = {c: np.zeros(c) for c in (1, 3)}
    sumsq = {c: np.zeros(c) for c in (1, 3)}
    count = 0
    written_channels: set[int] = set()
    gray_slots: list[int] = []

    global _INHERITED
    try:
        with interrupt_on_termination(), atomic_dir(output, replace=replace) as tmp:
            write_text(tmp / MARKER, MARKER_TEXT)
            for split_name in source.splits():
                (tmp / split_name).mkdir()
            settings = {
                "out_dir": str(tmp), "size": size, "center_crop": center_crop, "quality": quality,
                "channels": wanted,
                "max_pixels": Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels,
                "source_spec": (name, where, options) if uses_array else None,
            }
            _INHERITED = source if uses_array else None
            fingerprints: list[Any] = [None] * len(tasks)
            for slot, written, reason, stats, fp, image_channels in _run(tasks, settings, n_workers, progress):
                results[slot] = (written, reason)
                fingerprints[slot] = fp
                if image_channels is not None:
                    written_channels.add(image_channels)
                    gray_slots += [slot] if image_channels == 1 else []
                if stats is not None:
                    sums[image_channels] += stats[0]
                    sumsq[image_channels] += stats[1]
                    count += stats[2]
            doctor, dropped = check_written(fingerprints, origins, source.classes, dedupe=dedupe)
            for slot, (written, reason) in enumerate(results):
                what, label, split_name = origins[slot]
                if slot in dropped:
                    os.remove(tmp / written)  # --dedupe: a copy of an image kept in this or an earlier split
                elif written is not None:
                    rows[split_name].append((written, label))
                else:
                    skipped.append({"file": what, "reason": reason or "unknown"})
            for item in skipped:
                warn(f"skipped {item['file']}: {item['reason']}")
            if not rows.get("train"):
                raise DataError(
                    f"no readable training images in {input} ({len(skipped)} skipped); see the warnings above"
                )
            # the dataset has 3 channels unless every image written has one; a gray file among colour ones
            # (--channels auto) becomes RGB, the gray repeated, and so do its statistics
            out_channels = dataset_channels(written_channels)
            if out_channels == 3:
                sums[3] += sums[1].repeat(3)
                sumsq[3] += sumsq[1].repeat(3)
                _gray_to_rgb([tmp / results[slot][0] for slot in gray_slots if slot not in dropped], quality)
            report = _finish(tmp, source, rows, skipped, sums[out_channels], sumsq[out_channels], count, size,
                             center_crop, out_channels, {
                "input": str(input), "output": str(output), "dataset": name, "val_split": val_split,
                "test_split": test_split, "seed": seed, "quality": quality, "label_pattern": label_pattern,
                "exclude_classes": list(exclude_classes), "workers": n_workers,
            }, ignored=notes.get("ignored", []), started=started, doctor=doctor)
    except FileExistsError:
        raise DataError(f"--output {output} appeared while preprocessing; pass --force to replace it") from None
    finally:
        _INHERITED = None
    return report


def _run(tasks: list[tuple], settings: dict[str, Any], workers: int, progress: bool):
    """Yield _process results, in a process pool when workers > 1, with a tqdm bar on stderr."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), unit="img", desc="preprocess", file=sys.stderr, dynamic_ncols=True,
               disable=None if progress else True, smoothing=0.1)
    try:
        if workers <= 1:
            _init_worker(settings, in_pool=False)
            for task in tasks:
                yield _process(task)
                bar.update()
            return
        # Small chunks keep all workers busy to the end; large enough to make the IPC cost vanish.
        chunksize = max(1, min(32, len(tasks) // (workers * 8)))
        context = multiprocessing.get_context()
        import cv2  # noqa: F401  (imported once here, for forked workers to inherit, not once per worker)

        Image.preinit()  # Pillow's JPEG, PNG... readers, likewise

        with context.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
            for result in pool.imap_unordered(_process, tasks, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()
        _STATE.clear()


def _square_size(size: Size | None, center_crop: bool, native: int | None) -> int | None:
    """The side of every written image when they are all the same square, else None."""
    if size is None:
        return native
    if native is not None and isinstance(size, int):
        return size  # a square dataset (CIFAR, MNIST) resized by its smaller side stays square
    if isinstance(size, tuple):
        return size[0] if size[0] == size[1] else None
    return size if center_crop else None


def _smaller_side(size: Size | None, native: int | None) -> int | None:
    """The smaller side of every written image: what training caps its default input size at."""
    if size is None:
        return native
    return min(size) if isinstance(size, tuple) else size


def _finish(
    tmp: Path, source: Source, rows: dict[str, list[tuple[str, int]]], skipped: list[dict[str, str]],
    sums: np.ndarray, sumsq: np.ndarray, count: int, size: Size | None, center_crop: bool, channels: int,
    settings: dict[str, Any], *, ignored: list[str], started: float, doctor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the CSVs, rgb_val.json and report.json into the (still temporary) dataset folder."""
    write_csv(tmp / "categories.csv", ("name", "id"), [(c, i) for i, c in enumerate(source.classes)])
    for split_name, split_rows in rows.items():
        write_csv(tmp / f"{split_name}.csv", ("image", "class_id"), split_rows)

    mean = sums / max(count, 1)
    std = np.maximum(np.sqrt(np.maximum(sumsq / max(count, 1) - mean ** 2, 0.0)), MIN_STD * 255)
    keys = ("R", "G", "B") if channels == 3 else ("L",)
    stats = {k: round(float(m), 4) for k, m in zip(keys, mean)}
    stats.update({
        "mean": [round(float(m), 4) for m in mean], "std": [round(float(s), 4) for s in std],
        "scale": 255, "channels": channels, "split": "train",
        "images": len(rows["train"]), "pixels": int(count),
    })
    write_json(tmp / "rgb_val.json", stats)

    per_class: dict[str, dict[str, int]] = {c: {s: 0 for s in rows} for c in source.classes}
    for split_name, split_rows in rows.items():
        for _, label in split_rows:
            per_class[source.classes[label]][split_name] += 1
    for cls, counts in per_class.items():
        if not any(counts.values()):
            warn(f"class '{cls}' has no readable images; it stays in categories.csv but cannot be learned")
    written = {s: len(r) for s, r in rows.items()}
    seconds = time.perf_counter() - started
    total = sum(written.values())
    report = {
        "resnetcli": __version__,
        **settings,
        "size": list(size) if isinstance(size, tuple) else size,
        "center_crop": center_crop,
        "image_size": _square_size(size, center_crop, source.image_size),
        "smaller_side": _smaller_side(size, source.image_size),
        "channels": channels,
        "classes": len(source.classes),
        "images_in": total + len(skipped),
        "written": total,
        "written_per_split": written,
        "skipped_count": len(skipped),
        "skipped": skipped,
        "ignored": ignored,
        "per_class": per_class,
        "seconds": round(seconds, 3),
        "images_per_second": round(total / seconds, 1) if seconds > 0 else None,
        "doctor": doctor,
    }
    write_json(tmp / "report.json", report)
    return report
