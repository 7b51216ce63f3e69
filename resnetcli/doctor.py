"""The data doctor: duplicates, leakage between splits, conflicting labels, class balance, image shapes.

Every image gets a fingerprint from pixels already decoded (preprocess computes it in its worker, so
checking costs no second decode): a content hash of the decoded pixels (exact duplicates) and a 64-bit
difference hash (near duplicates: resized, re-encoded or slightly cropped copies are a few bits apart).
Near pairs are found with the pigeonhole principle: two hashes within `threshold` bits agree exactly on
at least one of `threshold + 1` bit blocks, so only images sharing a block are compared.
"""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

#: Hamming distance (of 64 bits) up to which two difference hashes count as the same picture
NEAR_THRESHOLD = 5
#: side of the grayscale thumbnail that confirms a near pair, and the mean absolute difference (0-255)
#: up to which two thumbnails show the same picture
THUMB = 16
NEAR_MAD = 8.0
#: a difference-hash block value shared by more images than this is not searched in that block (see near_pairs)
MAX_BUCKET = 512
#: images whose smaller side is below this are reported as very small
SMALL_SIDE = 32
#: a picture whose channels differ by at most this (0-255) after averaging is grayscale (JPEG noise)
GRAY_TOLERANCE = 3
#: how many example pairs report.json keeps
EXAMPLES = 20
#: split order: a copy in a later split of an image in an earlier one is a leak
SPLIT_RANK = {"train": 0, "val": 1, "test": 2}


class Fingerprint(NamedTuple):
    """What the doctor keeps of one image (picklable, so pool workers can return it)."""

    digest: int  # 64-bit checksum of the decoded pixels and their shape
    dhash: int  # 64-bit difference hash
    width: int
    height: int
    gray: bool
    thumb: bytes  # THUMB x THUMB grayscale, to confirm a near pair (dhash alone confuses flat backgrounds)


def fingerprint(pixels: np.ndarray, size: tuple[int, int] | None = None) -> Fingerprint:
    """Fingerprint decoded pixels (HxW or HxWxC uint8, RGB or gray).

    `size` (w, h) is the image's size on disk when the pixels were already resized: preprocess
    fingerprints what it writes rather than decoding a second time.
    """
    import cv2

    arr = np.ascontiguousarray(pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    data = memoryview(arr).cast("B")
    # CRC-32 and Adler-32 side by side: 64 bits at several times BLAKE2's speed; a chance collision would
    # also need equal difference hashes and thumbnails to count as a pair
    digest = zlib.crc32(data, zlib.crc32(str(arr.shape).encode())) << 32 | zlib.adler32(data)
    # One tiny area-averaged copy serves the hash, the confirming thumbnail and the grayscale test;
    # a bilinear step to 4x its size first, as area averaging at odd ratios is slow (10x for 256 px)
    if min(arr.shape[:2]) > 4 * THUMB:
        arr = cv2.resize(arr, (4 * THUMB, 4 * THUMB), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(arr, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        gray = int(np.abs(small.astype(np.int16) - small[..., :1]).max()) <= GRAY_TOLERANCE
        small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    else:
        gray = True
    lum = cv2.resize(small, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = np.packbits((lum[:, 1:] > lum[:, :-1]).ravel())
    width, height = size or (pixels.shape[1], pixels.shape[0])
    return Fingerprint(digest, int.from_bytes(bits.tobytes(), "big"),
                       int(width), int(height), gray, small.tobytes())


def near_pairs(
    hashes: Sequence[int] | np.ndarray, threshold: int = NEAR_THRESHOLD, thumbs: np.ndarray | None = None,
    max_mad: float = NEAR_MAD,
) -> np.ndarray:
    """(P, 3) array of (i, j, distance), i < j, for every pair of hashes at most `threshold` bits apart.

    With thumbs ((N, k) uint8), a pair must also have thumbnails within `max_mad` mean absolute difference.
    Exact (pigeonhole) except for pairs that agree only on block values shared by over MAX_BUCKET images.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    if not 0 <= threshold < 64:
        raise ValueError(f"threshold must be 0..63 bits, got {threshold}")
    found: list[np.ndarray] = [np.zeros((0, 3), dtype=np.int64)]
    if h.size < 2:
        return found[0]
    edges = np.linspace(0, 64, threshold + 2).astype(int)
    for lo, hi in itertools.pairwise(edges):
        keys = (h >> np.uint64(lo)) & np.uint64((1 << int(hi - lo)) - 1)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        # Images sharing a key form a run in sorted order: pair each with the member d places on, for
        # d = 1, 2, ...; only positions still inside a run stay active, so the work is the pair count.
        # A key shared by very many images is a flat region (a plain background), not a picture: such runs
        # are left to the other blocks, or one block of Fashion-MNIST would cost C(50000, 2) comparisons.
        counts = np.unique(sorted_keys, return_counts=True)[1]
        crowded = np.repeat(counts > MAX_BUCKET, counts)
        active = np.flatnonzero(~crowded[:-1])
        d = 1
        while active.size:
            active = active[active + d < len(order)]
            active = active[sorted_keys[active] == sorted_keys[active + d]]
            for chunk in np.array_split(active, max(1, active.size // 1_000_000)):
                i, j = order[chunk], order[chunk + d]
                dist = np.bitwise_count(h[i] ^ h[j])
                keep = dist <= threshold
                i, j, dist = i[keep], j[keep], dist[keep]
                if thumbs is not None and i.size:
                    mad = np.abs(thumbs[i].astype(np.int16) - thumbs[j]).mean(1)
                    keep = mad <= max_mad
                    i, j, dist = i[keep], j[keep], dist[keep]
                found.append(np.stack([np.minimum(i, j), np.maximum(i, j), dist], 1).astype(np.int64))
            d += 1
    return np.unique(np.concatenate(found), axis=0)  # a pair agreeing on several blocks is found several times


class Item(NamedTuple):
    """One image as the doctor sees it: where it is, its split and class, and its fingerprint."""

    ident: str
    split: str
    label: int
    fp: Fingerprint


def examine(items: Sequence[Item], classes: Sequence[str], *, threshold: int = NEAR_THRESHOLD) -> dict[str, Any]:
    """The findings (JSON-ready) on a whole dataset: duplicates and leaks, balance, shapes."""
    n = len(items)
    findings: dict[str, Any] = {"images": n, "near_threshold": threshold, "hash": "dhash-64"}
    findings.update(_duplicates(items, classes, threshold))
    findings["balance"] = _balance(items, classes)
    findings["shapes"] = _shapes(items)
    return findings


def _duplicates(items: Sequence[Item], classes: Sequence[str], threshold: int) -> dict[str, Any]:
    n = len(items)
    digests = np.array([it.fp.digest for it in items], dtype=np.uint64)
    thumbs = np.frombuffer(b"".join(it.fp.thumb for it in items), dtype=np.uint8).reshape(n, -1) if n else None
    pairs = near_pairs([it.fp.dhash for it in items], threshold, thumbs)
    i, j, dist = (pairs[:, 0], pairs[:, 1], pairs[:, 2]) if len(pairs) else (np.zeros(0, int),) * 3
    exact = digests[i] == digests[j] if len(pairs) else np.zeros(0, bool)
    split_rank = np.array([SPLIT_RANK.get(it.split, 3) for it in items])
    labels = np.array([it.label for it in items])
    cross_split = split_rank[i] != split_rank[j]
    cross_class = labels[i] != labels[j]

    def count(select: np.ndarray) -> dict[str, Any]:
        """Images involved in the selected pairs, by what makes them a problem."""
        copies = np.zeros(n, bool)  # the later image of each pair: the one --dedupe drops
        copies[np.maximum(i, j)[select]] = True
        conflicting = np.zeros(n, bool)
        conflicting[i[select & cross_class]] = True
        conflicting[j[select & cross_class]] = True
        leaks: dict[str, int] = {}
        for split in sorted({it.split for it in items}, key=lambda s: SPLIT_RANK.get(s, 3)):
            rank = SPLIT_RANK.get(split, 3)
            if rank == 0:
                continue
            leaked = np.zeros(n, bool)
            a_earlier = select & (split_rank[i] < split_rank[j]) & (split_rank[j] == rank)
            b_earlier = select & (split_rank[j] < split_rank[i]) & (split_rank[i] == rank)
            leaked[j[a_earlier]] = True
            leaked[i[b_earlier]] = True
            leaks[split] = int(leaked.sum())
        return {"pairs": int(select.sum()), "duplicate_images": int(copies.sum()),
                "across_classes": int(conflicting.sum()), "across_splits": int((select & cross_split).sum()),
                "leaks": leaks}

    groups = np.unique(digests, return_counts=True)[1]
    exact_summary = count(exact)
    exact_summary["groups"] = int((groups > 1).sum())
    examples = []
    # the pairs a reader most needs to see first: leaks, then conflicting labels, then the rest
    order = np.lexsort((dist, ~exact, ~cross_class, ~cross_split)) if len(pairs) else []
    for k in list(order)[:EXAMPLES]:
        a, b = items[i[k]], items[j[k]]
        examples.append({
            "kind": "exact" if exact[k] else "near", "distance": int(dist[k]),
            "a": {"split": a.split, "class": classes[a.label], "image": a.ident},
            "b": {"split": b.split, "class": classes[b.label], "image": b.ident},
        })
    return {"exact": exact_summary, "near": count(~exact), "examples": examples,
            "_pairs": pairs}


def duplicates_to_drop(items: Sequence[Item], pairs: np.ndarray) -> list[int]:
    """Indices --dedupe drops: keep the first image of each duplicate cluster in train, val, test order."""
    rank = sorted(range(len(items)), key=lambda k: (SPLIT_RANK.get(items[k].split, 3), k))
    position = {k: p for p, k in enumerate(rank)}
    neighbours: dict[int, list[int]] = {}
    for a, b in pairs[:, :2].tolist():
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    dropped: set[int] = set()
    for k in sorted(neighbours, key=position.__getitem__):
        # greedy: an image goes when it duplicates one already kept (earlier split, or earlier in its split)
        if any(position[m] < position[k] and m not in dropped for m in neighbours[k]):
            dropped.add(k)
    return sorted(dropped)


def _balance(items: Sequence[Item], classes: Sequence[str]) -> dict[str, Any]:
    counts = np.bincount([it.label for it in items], minlength=len(classes))
    present = counts[counts > 0]
    smallest = np.argsort(counts, kind="stable")[:5]
    return {
        "per_class": {c: int(k) for c, k in zip(classes, counts)},
        "ratio": round(float(present.max() / present.min()), 2) if present.size else None,
        "smallest": [{"class": classes[k], "images": int(counts[k])} for k in smallest],
        "empty": [classes[k] for k in np.flatnonzero(counts == 0)],
    }


def _stats(values: np.ndarray) -> dict[str, float]:
    q = np.percentile(values, [0, 5, 50, 95, 100])
    return dict(zip(("min", "p5", "median", "p95", "max"), (round(float(v), 3) for v in q)))


#: aspect-ratio (width / height) histogram edges
ASPECT_EDGES = (0.0, 0.5, 0.75, 0.95, 1.05, 1.33, 2.0, float("inf"))


def _shapes(items: Sequence[Item]) -> dict[str, Any]:
    if not items:
        return {}
    w = np.array([it.fp.width for it in items], dtype=np.float64)
    h = np.array([it.fp.height for it in items], dtype=np.float64)
    aspect = w / h
    hist = np.histogram(aspect, bins=np.array(ASPECT_EDGES))[0]
    labels = [f"{lo:g}-{hi:g}" if hi != float("inf") else f">{lo:g}"
              for lo, hi in itertools.pairwise(ASPECT_EDGES)]
    small = np.minimum(w, h) < SMALL_SIDE
    return {
        "width": _stats(w), "height": _stats(h), "aspect_ratio": _stats(aspect),
        "aspect_histogram": dict(zip(labels, (int(v) for v in hist))),
        "grayscale": int(sum(it.fp.gray for it in items)),
        "grayscale_share": round(sum(it.fp.gray for it in items) / len(items), 4),
        "small_side_below": SMALL_SIDE, "small": int(small.sum()),
    }


def public(findings: dict[str, Any]) -> dict[str, Any]:
    """The findings without the internal pair array (what goes into report.json)."""
    return {k: v for k, v in findings.items() if not k.startswith("_")}


def examine_source(
    source: Any, *, threshold: int = NEAR_THRESHOLD, workers: int | None = None, progress: bool = True,
) -> tuple[list[Item], dict[str, Any]]:
    """Fingerprint every image of a resnetcli.data.Source (files in a process pool) and examine them."""
    items: list[Item] = []
    for split_name in source.splits():
        split = source.split(split_name)
        fps = _fingerprint_split(split, workers, progress, split_name)
        items.extend(Item(split.ident(k), split_name, split.labels[k], fp)
                     for k, fp in enumerate(fps) if fp is not None)
    return items, examine(items, source.classes, threshold=threshold)


def _fingerprint_item(task: tuple[Any, int]) -> Fingerprint | None:
    from resnetcli.errors import DataError

    split, k = task
    try:
        return fingerprint(split.load(k)[0])
    except DataError:
        return None  # an unreadable file is preprocess's to report, not a duplicate


def _fingerprint_split(split: Any, workers: int | None, progress: bool, name: str) -> list[Fingerprint | None]:
    import multiprocessing
    import sys

    from tqdm import tqdm

    bar = tqdm(total=len(split), unit="img", desc=f"doctor {name}", file=sys.stderr, dynamic_ncols=True,
               disable=None if progress else True)
    tasks = ((split, k) for k in range(len(split)))
    try:
        n = workers or os.cpu_count() or 1
        if n <= 1 or len(split) < 256 or split.path(0) is None:  # arrays: a copy to decode, hashing is all
            return [_tick(bar, _fingerprint_item(t)) for t in tasks]
        with multiprocessing.get_context().Pool(n) as pool:
            return [_tick(bar, fp) for fp in pool.imap(_fingerprint_item, tasks, chunksize=16)]
    finally:
        bar.close()


def _tick(bar: Any, value: Any) -> Any:
    bar.update()
    return value


def summary_lines(findings: dict[str, Any]) -> Iterable[str]:
    """Plain-text lines for the terminal (the command prints them; the HTML report renders the same data)."""
    ex, near = findings["exact"], findings["near"]
    yield f"{findings['images']} images"
    for name, part, what in (("exact duplicates", ex, "identical pixels"),
                             (f"near duplicates (dhash <= {findings['near_threshold']} bits)", near, "similar")):
        leaks = ", ".join(f"{n} {s} images have a copy in an earlier split" for s, n in part["leaks"].items())
        yield (f"{name}: {part['pairs']} pairs ({what}), {part['duplicate_images']} redundant images, "
               f"{part['across_classes']} images with a conflicting label" + (f"; {leaks}" if leaks else ""))
    bal = findings["balance"]
    smallest = ", ".join(f"{s['class']} ({s['images']})" for s in bal["smallest"][:3])
    yield f"class balance: largest/smallest {bal['ratio']}; smallest classes {smallest}"
    shapes = findings["shapes"]
    if shapes:
        yield (f"image size: width {shapes['width']['min']:g}-{shapes['width']['max']:g} "
               f"(median {shapes['width']['median']:g}), height {shapes['height']['min']:g}-"
               f"{shapes['height']['max']:g} (median {shapes['height']['median']:g}); "
               f"grayscale {shapes['grayscale_share']:.1%}; smaller side < {shapes['small_side_below']}px: "
               f"{shapes['small']}")


def check_written(
    fingerprints: Sequence[Fingerprint | None], origins: Sequence[tuple[str, int, str]], classes: Sequence[str],
    *, dedupe: bool = False, threshold: int = NEAR_THRESHOLD,
) -> tuple[dict[str, Any], set[int]]:
    """Preprocess's doctor: findings on the images written (slot -> fingerprint, origin (what, label, split))
    and, with dedupe, the slots to leave out (every copy after the first in train, val, test order)."""
    slots = [s for s, fp in enumerate(fingerprints) if fp is not None]
    items = [Item(origins[s][0], origins[s][2], origins[s][1], fingerprints[s]) for s in slots]
    findings = examine(items, classes, threshold=threshold)
    dropped: set[int] = set()
    if dedupe:
        dropped = {slots[k] for k in duplicates_to_drop(items, findings["_pairs"])}
        findings["dropped"] = len(dropped)
        findings["dropped_files"] = sorted(origins[s][0] for s in dropped)
    return public(findings), dropped
