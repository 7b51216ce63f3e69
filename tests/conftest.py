"""Shared fixtures: real image folders written with Pillow, small enough for a 2-core machine."""

from __future__ import annotations

import colorsys
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:
    from helpers_forker import Forker

# One terminal width however the suite is run (a terminal, a pipe, a pytest-xdist worker, whose environment
# held COLUMNS=80): rich fixes a console's width for good if COLUMNS is set when the console is created, which
# also made the width depend on the test that first imported resnetcli.console inside CliRunner(env=...). So
# the consoles are created here without it and then follow COLUMNS: 80 unless a test passes its own.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)
import resnetcli.console  # noqa: F401

os.environ["COLUMNS"] = "80"

# pytest-xdist workers share the cores: each gets its part for torch's threads (and the commands it starts), as
# threads that outnumber the cores spin against each other. Set before anything imports torch.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // _WORKERS)))


def class_image(class_index: int, num_classes: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """An HxWx3 uint8 image a net can tell apart by class: a class colour, a class stripe pattern, noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    hue = class_index / max(num_classes, 1)
    colour = np.array(colorsys.hsv_to_rgb(hue, 0.8, 0.9)) * 255.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = 4 + 3 * (class_index % 4)
    stripes = (((xx if class_index % 2 else yy) // period) % 2)[..., None]
    img = colour * (0.6 + 0.4 * stripes) + rng.normal(0.0, 12.0, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_image_folder(
    root: Path,
    classes: int | Sequence[str] = 3,
    n_per_class: int = 4,
    size: int | tuple[int, int] | Sequence[tuple[int, int]] = 32,
    *,
    ext: str = "jpg",
    seed: int = 0,
) -> dict[str, list[Path]]:
    """Write root/<class>/<class>_<i>.<ext> real images; returns {class folder: [paths]}.

    `classes` is a count (folders 'class0', 'class1', ...) or folder names (for example '001.ak47').
    `size` is a side, a (w, h), or a list of (w, h) cycled through the images.
    """
    names = [f"class{i}" for i in range(classes)] if isinstance(classes, int) else list(classes)
    if isinstance(size, int):
        sizes = [(size, size)]
    elif isinstance(size, tuple):
        sizes = [size]
    else:
        sizes = list(size)
    written: dict[str, list[Path]] = {}
    for k, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(n_per_class):
            arr = class_image(k, len(names), sizes[(k + i) % len(sizes)], seed * 100_003 + k * 1000 + i)
            path = folder / f"{Path(name).name}_{i:04d}.{ext}"
            Image.fromarray(arr).save(path, quality=95) if ext in ("jpg", "jpeg") else Image.fromarray(arr).save(path)
            paths.append(path)
        written[name] = paths
    return written


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A 3-class, 6-per-class folder of 24x20 JPEGs at tmp_path/images."""
    root = tmp_path / "images"
    make_image_folder(root, classes=3, n_per_class=6, size=(24, 20))
    return root


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What resnetcli remembers between runs (files that passed the header check) goes to a temporary folder."""
    os.environ["RESNETCLI_CACHE"] = str(tmp_path_factory.mktemp("resnetcli-cache"))


@pytest.fixture(scope="session")
def forker() -> Forker:
    """The fork server of the tests that run `resnetcli` as real child processes (tests/helpers_forker.py)."""
    from helpers_forker import shared_forker  # imports torch: only for the tests that ask for it

    return shared_forker()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """torch on one thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`): deep nets on tiny
    inputs are dominated by thread start-up; one thread is much faster on a busy 2-core box."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def baseline(forker: Forker, setup: dict[str, Any]) -> dict[str, Any]:
    """The uninterrupted run a kill -9 test module compares its killed runs with: the argv of the module's `setup`
    fixture run to its end (tests/helpers_kill.py)."""
    from helpers_kill import straight_run

    return straight_run(forker, setup)
