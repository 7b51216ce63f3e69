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
import resource
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


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (the pool's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


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
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; the best of each is reported, as timeit does (default 3)")
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
        workers = args.workers or _default_workers()
        rates: dict[str, list[float]] = {"naive": [], "one": [], "all": []}
        cpu: dict[str, list[float]] = {"naive": [], "one": [], "all": []}  # CPU ms per image, all processes
        for r in range(args.rounds):
            # Interleaved, so that load from other processes hits every contender alike.
            c = cpu_seconds()
            n, seconds = naive(images, work / f"naive{r}")
            rates["naive"].append(n / seconds)
            cpu["naive"].append((cpu_seconds() - c) / n * 1000)
            for key, w in (("one", 1), ("all", workers)):
                c = cpu_seconds()
                t = time.perf_counter()
                report = preprocess(images, work / f"{key}{r}", workers=w, progress=False)
                rates[key].append(report["written"] / (time.perf_counter() - t))
                cpu[key].append((cpu_seconds() - c) / report["written"] * 1000)
            shutil.rmtree(work / f"naive{r}"), shutil.rmtree(work / f"one{r}"), shutil.rmtree(work / f"all{r}")
        best = {k: max(v) for k, v in rates.items()}
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {n} images; "
              f"best of {args.rounds} interleaved rounds")
        print(f"naive loop              : {best['naive']:7.1f} images/s")
        print(f"preprocess, 1 worker    : {best['one']:7.1f} images/s  x{best['one'] / best['naive']:.1f}")
        print(f"preprocess, {workers} workers{' ' if workers < 10 else ''}  : {best['all']:7.1f} images/s  "
              f"x{best['all'] / best['naive']:.1f}")
        print("all rounds (images/s): " + "; ".join(
            f"{k} " + ", ".join(f"{v:.1f}" for v in vs) for k, vs in rates.items()))
        # CPU time is what other processes on a shared machine cannot steal: it gives the speed-up on
        # idle cores (the naive loop can use one core, preprocess all of them).
        c_naive, c_all = min(cpu["naive"]), min(cpu["all"])
        print(f"CPU per image: naive {c_naive:.1f} ms, preprocess {min(cpu['one']):.1f} ms (1 worker), "
              f"{c_all:.1f} ms ({workers} workers); on {workers} idle cores: "
              f"x{c_naive / c_all * workers:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
