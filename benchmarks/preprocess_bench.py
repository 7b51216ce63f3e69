"""Benchmark: `resnetcli preprocess` against a naive one-image-after-another Pillow loop.

    .venv/bin/python benchmarks/preprocess_bench.py                 # makes 150 photo-sized JPEGs first
    .venv/bin/python benchmarks/preprocess_bench.py --images DIR    # a class-per-folder tree of your own

The naive loop is what a first script does: open, convert to RGB, resize the smaller side to 256,
save as JPEG, accumulate the mean. `preprocess` does the same work plus the split, CSVs and std, using
JPEG draft decoding and all cores. Both write to a temporary folder that is removed afterwards.
This is a benchmark, not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 256


def make_photos(root: Path, count: int, classes: int = 3, seed: int = 0) -> None:
    """Photo-like JPEGs (smooth gradients, soft blobs, sensor noise), 800x600 up to 2600x2000."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        width, height = int(rng.integers(800, 2601)), int(rng.integers(600, 2001))
        if rng.random() < 0.3:
            width, height = height, width  # some portrait shots
        yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        xx = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
        a, b, c = (rng.uniform(40, 215, 3).astype(np.float32) for _ in range(3))
        img = a + (b - a) * xx + (c - a) * yy * (1 - xx)
        # low-frequency structure: a small random field upscaled smoothly
        field = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((width, height),
                                                                                      Image.Resampling.BICUBIC)
        img = 0.7 * img + 0.3 * np.asarray(field, dtype=np.float32)
        img += rng.normal(0.0, 6.0, (height, width, 1)).astype(np.float32)
        folder = root / f"{i % classes:03d}.class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"photo_{i:04d}.jpg", quality=90)


def naive(root: Path, out: Path) -> tuple[int, float]:
    """One image after another: open, RGB, resize smaller side to 256, save, accumulate the mean."""
    out.mkdir(parents=True, exist_ok=True)
    total = np.zeros(3)
    n = 0
    start = time.perf_counter()
    for path in sorted(root.rglob("*.jpg")):
        img = Image.open(path).convert("RGB")
        scale = SIZE / min(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
        img.save(out / f"{n:06d}.jpg", quality=95)
        total += np.asarray(img, dtype=np.float64).mean(axis=(0, 1))
        n += 1
    return n, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, help="class-per-folder tree to use (default: generate one)")
    parser.add_argument("--count", type=int, default=150, help="images to generate (default 150)")
    parser.add_argument("--workers", type=int, default=None, help="preprocess workers (default: all cores)")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from resnetcli.preprocess import _default_workers, preprocess

    work = Path(tempfile.mkdtemp(prefix="resnetcli-bench-"))
    try:
        images = args.images
        if images is None:
            images = work / "photos"
            t = time.perf_counter()
            make_photos(images, args.count)
            print(f"generated {args.count} photos (800x600 .. 2600x2000) in {time.perf_counter() - t:.1f} s")
        n_naive, t_naive = naive(images, work / "naive")
        workers = args.workers or _default_workers()
        t = time.perf_counter()
        report = preprocess(images, work / "fast1", workers=1, progress=False)
        t_one = time.perf_counter() - t
        t = time.perf_counter()
        report = preprocess(images, work / "fast", workers=workers, progress=False)
        t_fast = time.perf_counter() - t
        n_fast = report["written"]
        naive_rate, one_rate, fast_rate = n_naive / t_naive, n_fast / t_one, n_fast / t_fast
        print(f"machine: {os.cpu_count()} cores; {n_naive} images")
        print(f"naive loop            : {naive_rate:7.1f} images/s ({t_naive:.1f} s)")
        print(f"preprocess, 1 worker  : {one_rate:7.1f} images/s ({t_one:.1f} s)  x{one_rate / naive_rate:.1f}")
        print(f"preprocess, {workers} workers : {fast_rate:7.1f} images/s ({t_fast:.1f} s)  "
              f"x{fast_rate / naive_rate:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
