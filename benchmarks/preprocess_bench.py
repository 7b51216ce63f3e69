"""Benchmark: `resnetcli preprocess` against a naive one-image-after-another Pillow loop, whole processes.

    .venv/bin/python benchmarks/preprocess_bench.py                  # 1000 photo-sized JPEGs (300-500 px)
    .venv/bin/python benchmarks/preprocess_bench.py --large          # 800x600 .. 2600x2000 instead
    .venv/bin/python benchmarks/preprocess_bench.py --images DIR     # a class-per-folder tree of your own

Both contenders run as whole processes reading the same JPEG files from disk: the naive loop is a
`python` script (open, convert to RGB, resize the smaller side to 256, save a JPEG, accumulate the mean:
what a first script does), `preprocess` is the `resnetcli preprocess` command with its default workers
(all cores), interpreter start-up, imports, split, CSVs and std included. Rounds are interleaved so that
other load on the machine hits both alike; the best round of each is reported, as timeit does.

Photo-sized is the typical case: most photos of Caltech-256 and ImageNet have a smaller side under 512 px,
where JPEG draft (DCT-scaled) decoding cannot help; the images are crops of a real photograph (matplotlib's
sample, when installed) at random zoom, size, colour and JPEG quality, else generated ones.
This is a benchmark, not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

SIZE = 256

NAIVE = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
root, out, size = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
total, n = np.zeros(3), 0
for path in sorted(root.rglob("*.jpg")):
    img = Image.open(path).convert("RGB")
    scale = size / min(img.size)
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
    img.save(out / f"{n:06d}.jpg", quality=95)
    total += np.asarray(img, dtype=np.float64).mean(axis=(0, 1))
    n += 1
print(n)
"""


def _sample_photo() -> Image.Image | None:
    try:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).convert("RGB")
    except Exception:  # matplotlib is optional: generate instead
        return None


def _generated(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Smooth gradients, soft blobs and sensor noise."""
    yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    xx = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    a, b, c = (rng.uniform(40, 215, 3).astype(np.float32) for _ in range(3))
    img = a + (b - a) * xx + (c - a) * yy * (1 - xx)
    field = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((width, height),
                                                                                  Image.Resampling.BICUBIC)
    img = 0.7 * img + 0.3 * np.asarray(field, dtype=np.float32)
    img += rng.normal(0.0, 6.0, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_photos(root: Path, count: int, *, large: bool, classes: int = 4, seed: int = 0) -> str:
    """Write `count` JPEGs in class folders; returns what they are, for the printout."""
    rng = np.random.default_rng(seed)
    photo = None if large else _sample_photo()
    for i in range(count):
        if large:
            width, height = int(rng.integers(800, 2601)), int(rng.integers(600, 2001))
        else:
            width, height = int(rng.integers(300, 501)), int(rng.integers(300, 501))
        if photo is not None:
            # a random crop of the real photograph at a random zoom, resampled to the target size
            pw, ph = photo.size
            cw = int(rng.integers(pw // 3, pw + 1))
            ch = min(ph, max(1, round(cw * height / width)))
            x, y = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
            img = photo.crop((x, y, x + cw, y + ch)).resize((width, height), Image.Resampling.LANCZOS)
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            img = ImageEnhance.Color(img).enhance(float(rng.uniform(0.5, 1.5)))
        else:
            img = _generated(rng, width, height)
        folder = root / f"{i % classes:03d}.class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"photo_{i:05d}.jpg", quality=int(rng.integers(80, 96)))
    what = "generated" if photo is None else "crops of a real photograph"
    sizes = "800x600 .. 2600x2000" if large else "300 .. 500 px a side"
    return f"{count} {what}, {sizes}"


def _children_cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and all its children) of one whole process."""
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - start, _children_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, help="class-per-folder tree to use (default: generate one)")
    parser.add_argument("--count", type=int, default=1000, help="images to generate (default 1000)")
    parser.add_argument("--large", action="store_true", help="generate 800x600 .. 2600x2000 photos instead")
    parser.add_argument("--workers", type=int, default=None, help="preprocess workers (default: all cores)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()

    resnetcli = str(Path(sys.executable).parent / "resnetcli")
    work = Path(tempfile.mkdtemp(prefix="resnetcli-bench-"))
    try:
        images = args.images
        if images is None:
            images = work / "photos"
            t = time.perf_counter()
            what = make_photos(images, args.count, large=args.large)
            print(f"generated {what} in {time.perf_counter() - t:.1f} s")
        n = sum(1 for _ in images.rglob("*.jpg"))
        workers = args.workers or len(os.sched_getaffinity(0))
        contenders = {
            "naive Pillow loop": lambda out: [sys.executable, "-c", NAIVE, str(images), str(out), str(SIZE)],
            f"preprocess, {workers} workers": lambda out: [
                resnetcli, "preprocess", "-i", str(images), "-o", str(out), "--workers", str(workers),
                "--size", str(SIZE)],
        }
        wall: dict[str, list[float]] = {k: [] for k in contenders}
        cpu: dict[str, list[float]] = {k: [] for k in contenders}
        for r in range(args.rounds):
            for name, argv in contenders.items():
                out = work / f"out{r}"
                w, c = timed(argv(out))
                wall[name].append(w)
                cpu[name].append(c)
                shutil.rmtree(out)
        print(f"{n} images, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; whole processes, "
              f"best of {args.rounds} interleaved rounds")
        naive_wall, naive_cpu = min(wall["naive Pillow loop"]), min(cpu["naive Pillow loop"])
        print(f"{'':28s} {'images/s':>9s} {'vs naive':>8s} {'CPU ms/image':>13s}")
        for name in contenders:
            best = min(wall[name])
            print(f"{name:28s} {n / best:9.1f} {naive_wall / best:7.2f}x {min(cpu[name]) / n * 1000:13.2f}")
        print("all rounds (s): " + "; ".join(f"{k} " + ", ".join(f"{v:.2f}" for v in vs) for k, vs in wall.items()))
        # CPU time is what other processes cannot steal: it gives the speed-up on idle cores
        name = f"preprocess, {workers} workers"
        print(f"on {workers} idle cores (CPU time): x{naive_cpu / min(cpu[name]) * workers:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
