"""Dataset sources: each reads files written here in its own format; image decoding handles every mode."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image_folder
from PIL import Image

from resnetcli.data import ArraySplit, open_source, stratified_split
from resnetcli.data import arrays as S
from resnetcli.data.folders import scan_class_tree
from resnetcli.data.images import BadImage, open_image, to_rgb
from resnetcli.errors import DataError, UsageError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def random_images(n: int, side: int, channels: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, channels), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------- CIFAR python


def write_cifar10_py(root: Path, per_batch: int = 4) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        images = random_images(per_batch, 32, 3, k)
        labels = [(k + i) % 10 for i in range(per_batch)]
        data = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # channel-major rows, as CIFAR stores
        # the original batches use bytes keys (Python 2 pickles)
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, fh, protocol=2)
        written[name] = (images, labels)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": CIFAR10_NAMES, "num_vis": 3072}, fh)
    return written


def test_cifar10_python_format(tmp_path: Path) -> None:
    written = write_cifar10_py(tmp_path)
    source = open_source("cifar10", root=tmp_path)
    assert source.classes == CIFAR10_NAMES
    assert source.splits() == ["train", "test"]
    assert len(source.split("train")) == 20 and len(source.split("test")) == 4
    assert (source.channels, source.image_size) == (3, 32)
    image, label = source.split("train").load(5)  # second image of data_batch_2
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, written["data_batch_2"][0][1])
    assert label == written["data_batch_2"][1][1]
    np.testing.assert_array_equal(source.split("test").load(3)[0], written["test_batch"][0][3])
    train = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_allclose(source.mean, train.reshape(-1, 3).mean(0) / 255, atol=1e-9)
    np.testing.assert_allclose(source.std, train.reshape(-1, 3).std(0) / 255, atol=1e-9)
    assert source.split("test").ident(2) == "index:2"


def test_cifar10_val_split_is_stratified_and_seeded(tmp_path: Path) -> None:
    write_cifar10_py(tmp_path, per_batch=10)
    a = open_source(tmp_path / "cifar-10-batches-py", val_split=0.2, seed=1)
    b = open_source("cifar10", root=tmp_path, val_split=0.2, seed=1)
    assert a.splits() == ["train", "val", "test"]
    assert len(a.split("train")) + len(a.split("val")) == 50
    assert a.split("val").labels == b.split("val").labels
    assert [a.split("val").ident(i) for i in range(3)] == [b.split("val").ident(i) for i in range(3)]


def test_cifar100_python_format_fine_and_coarse(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    fine_names = [f"fine{i}" for i in range(100)]
    coarse_names = [f"coarse{i}" for i in range(20)]
    for name, n in (("train", 6), ("test", 3)):
        images = random_images(n, 32, 3, n)
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": images.transpose(0, 3, 1, 2).reshape(n, -1),
                         "fine_labels": [99 - i for i in range(n)], "coarse_labels": [19 - i for i in range(n)]}, fh)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": fine_names, "coarse_label_names": coarse_names}, fh)
    fine = open_source(tmp_path)  # detected from the folder's content
    assert fine.name == "cifar100" and fine.classes == fine_names
    assert (len(fine.split("train")), len(fine.split("test"))) == (6, 3)
    assert fine.split("train").labels[:2] == [99, 98]
    coarse = open_source("cifar100", root=tmp_path, label_type="coarse")
    assert coarse.classes == coarse_names and coarse.split("test").labels == [19, 18, 17]


def test_cifar_pickle_refuses_anything_but_arrays(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    for name in ("train", "test", "meta"):
        (folder / name).write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(DataError, match="refusing to load"):
        open_source("cifar100", root=tmp_path)


@pytest.mark.parametrize("data", [[[300] * 3072], np.full((1, 3072), -1), np.full((1, 3072), 0.5), [[1, 2], [3]],
                                  [["x"] * 3072]])
def test_cifar_batches_with_pixels_that_are_not_bytes_are_one_data_error(tmp_path: Path, data: object) -> None:
    write_cifar10_py(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": data, b"labels": [0]}, fh, protocol=2)
    with pytest.raises(DataError, match="data_batch_1: CIFAR"):
        open_source("cifar10", root=tmp_path).split("train")


def test_cifar_missing_files_and_failed_download_give_one_clear_line(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        open_source("cifar10", root=tmp_path)
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError, match="downloading it failed .*without a network, put cifar-10-batches-py"):
        open_source("cifar10", root=tmp_path, download=True)


# ----------------------------------------------------------------------------------------------- CIFAR binary


def write_cifar10_bin(root: Path, per_batch: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    written = {}
    for k, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        images = random_images(per_batch, 32, 3, 10 + k)
        labels = np.array([(3 * k + i) % 10 for i in range(per_batch)], dtype=np.uint8)
        records = np.concatenate([labels[:, None], images.transpose(0, 3, 1, 2).reshape(per_batch, -1)], axis=1)
        records.astype(np.uint8).tofile(folder / name)
        written[name] = (images, labels)
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n\n")
    return written


def test_cifar10_binary_format(tmp_path: Path) -> None:
    written = write_cifar10_bin(tmp_path)
    source = open_source(tmp_path)  # a folder holding cifar-10-batches-bin
    assert source.name == "cifar10-bin" and source.classes == CIFAR10_NAMES
    assert (len(source.split("train")), len(source.split("test"))) == (15, 3)
    image, label = source.split("train").load(4)  # data_batch_2, record 1
    np.testing.assert_array_equal(image, written["data_batch_2.bin"][0][1])
    assert label == int(written["data_batch_2.bin"][1][1])
    np.testing.assert_array_equal(source.split("test").load(2)[0], written["test_batch.bin"][0][2])


def test_cifar10_binary_truncated_file_is_named(tmp_path: Path) -> None:
    write_cifar10_bin(tmp_path)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="data_batch_3.bin.*not a whole number"):
        open_source("cifar10-bin", root=tmp_path)


# ----------------------------------------------------------------------------------------------- idx (MNIST)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = True) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as fh:
                fh.write(data)
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_in_torchvision_layout(tmp_path: Path, gz: bool) -> None:
    arrays = write_idx(tmp_path / "FashionMNIST" / "raw", gz=gz)
    source = open_source("fashion-mnist", root=tmp_path)
    assert source.classes == S.FASHION_MNIST_CLASSES
    assert (source.channels, source.image_size) == (1, 28)
    assert (len(source.split("train")), len(source.split("test"))) == (12, 5)
    image, label = source.split("train").load(7)
    assert image.shape == (28, 28, 1)
    np.testing.assert_array_equal(image[..., 0], arrays["train-images-idx3-ubyte"][7])
    assert label == 7 and source.split("test").labels == [0, 3, 6, 9, 2]
    assert source.mean[0] == pytest.approx(arrays["train-images-idx3-ubyte"].mean() / 255)


def test_fashion_mnist_default_root_is_debians(tmp_path: Path, monkeypatch) -> None:
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    write_idx(debian)  # Debian's file names: train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, ...
    monkeypatch.setattr(S, "DEBIAN_FASHION_MNIST", debian)
    monkeypatch.setenv("RESNETCLI_DATA", str(tmp_path / "empty"))
    source = open_source("fashion-mnist")
    assert source.root == debian and len(source.split("train")) == 12


def test_mnist_idx_plain_and_bad_header(tmp_path: Path) -> None:
    write_idx(tmp_path / "digits", n_train=10, n_test=4, gz=False)
    source = open_source("mnist", root=tmp_path / "digits")
    assert source.classes == [str(d) for d in range(10)] and len(source.split("test")) == 4
    labels = tmp_path / "digits" / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-2])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: idx header says"):
        open_source("mnist", root=tmp_path / "digits")


# ----------------------------------------------------------------------------------------------- folders


def test_folder_source_caltech_names_split_and_load(tmp_path: Path) -> None:
    root = tmp_path / "256_ObjectCategories"
    make_image_folder(root, ["001.ak47", "002.american-flag", "003.backpack", "257.clutter"], 10, (20, 16))
    (root / "__MACOSX").mkdir()
    (root / ".ipynb_checkpoints").mkdir()
    (root / "002.american-flag" / "._002_0001.jpg").write_bytes(b"AppleDouble")  # hidden: never an image
    source = open_source(root, exclude_classes=["257.clutter"], val_split=0.3, seed=4)
    assert source.name == "folder" and source.classes == ["ak47", "american-flag", "backpack"]
    train, val = source.split("train"), source.split("val")
    assert (len(train), len(val)) == (21, 9)
    assert [val.labels.count(c) for c in range(3)] == [3, 3, 3]  # stratified
    assert {train.ident(i) for i in range(len(train))}.isdisjoint(val.ident(i) for i in range(len(val)))
    image, _ = val.load(0)
    assert image.shape == (16, 20, 3) and image.dtype == np.uint8
    assert val.ident(0).startswith(("001.ak47/", "002.american-flag/", "003.backpack/"))
    again = open_source(root, exclude_classes=["clutter"], val_split=0.3, seed=4)
    assert [again.split("val").ident(i) for i in range(9)] == [val.ident(i) for i in range(9)]
    other = open_source(root, exclude_classes=["clutter"], val_split=0.3, seed=5)
    assert [other.split("val").ident(i) for i in range(9)] != [val.ident(i) for i in range(9)]


def test_folder_source_uses_existing_train_val_folders(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "data" / "train", ["cat", "dog"], 3, 12)
    make_image_folder(tmp_path / "data" / "val", ["cat", "dog"], 2, 12, seed=1)
    source = open_source(tmp_path / "data")
    assert source.classes == ["cat", "dog"] and source.splits() == ["train", "val"]
    assert (len(source.split("train")), len(source.split("val"))) == (6, 4)
    assert source.split("val").ident(0).startswith("val/cat/")


def test_folder_decode_size_uses_jpeg_draft(tmp_path: Path) -> None:
    make_image_folder(tmp_path, ["a", "b"], 2, (200, 160))
    full = open_source(tmp_path, val_split=0.0)
    reduced = open_source(tmp_path, val_split=0.0, decode_size=50)
    assert full.split("train").load(0)[0].shape == (160, 200, 3)
    assert reduced.split("train").load(0)[0].shape == (80, 100, 3)  # 1/2 scale: 1/4 would go below 50


@pytest.mark.parametrize("bad", [0, -3, 1e400, float("nan"), 12.5, "abc", True])
def test_folder_decode_size_must_be_a_positive_whole_number(tmp_path: Path, bad: object) -> None:
    # 1e400 (inf) escaped as an OverflowError traceback
    make_image_folder(tmp_path, ["a", "b"], 2, 8)
    with pytest.raises(UsageError, match="decode_size must be a positive whole number of pixels"):
        open_source(tmp_path, decode_size=bad)


def test_label_pattern_and_folder_errors(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "a", ["n01_tench", "n02_goldfish"], 2, 8)
    tree = scan_class_tree(tmp_path / "a", label_pattern=r"^n\d+_(\w+)$")
    assert tree.classes == ["tench", "goldfish"] and len(tree.files) == 4
    make_image_folder(tmp_path / "one", ["only"], 2, 8)
    with pytest.raises(DataError, match="at least two"):
        open_source(tmp_path / "one")
    make_image_folder(tmp_path / "b", ["x", "y"], 2, 8)
    (tmp_path / "b" / "z").mkdir()
    with pytest.raises(DataError, match=r"class folder .*z has no images"):
        open_source(tmp_path / "b")
    with pytest.raises(DataError, match="no dataset named 'cifar1'; did you mean cifar10"):
        open_source("cifar1")
    with pytest.raises(UsageError, match="does not take option.*colour"):
        open_source("cifar10", root=tmp_path, colour=True)
    with pytest.raises(UsageError, match="invalid|not a valid regular expression"):
        scan_class_tree(tmp_path / "a", label_pattern="(")


def test_scan_sets_aside_empty_files_and_symlink_loops(tmp_path: Path) -> None:
    make_image_folder(tmp_path, ["a", "b"], 2, 8)
    (tmp_path / "a" / "empty.jpg").write_bytes(b"")
    os.symlink("loop.jpg", tmp_path / "b" / "loop.jpg")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    os.symlink(tmp_path / "b", tmp_path / "b" / "again")  # a folder loop: must not recurse forever
    tree = scan_class_tree(tmp_path)
    reasons = dict(tree.problems)
    assert reasons["a/empty.jpg"] == "empty file (0 bytes)"
    assert "unreadable" in reasons["b/loop.jpg"]
    assert "b/notes.txt" in tree.ignored and len(tree.files) == 4


def test_caltech256_missing_and_download_failed(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets

    calls = []

    def offline(root, download=False, **kwargs):
        calls.append(root)
        raise RuntimeError("<urlopen error [Errno 101] Network is unreachable>")

    monkeypatch.setattr(torchvision.datasets, "Caltech256", offline)
    with pytest.raises(DataError, match="Caltech-256 was not found .*downloading it failed.*256_ObjectCategories"):
        open_source("caltech256", root=tmp_path, download=True)
    assert calls == [str(tmp_path)]
    with pytest.raises(DataError, match="Caltech-256 not found"):
        open_source("caltech256", root=tmp_path)


def test_caltech256_layout_excludes_clutter(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "caltech256" / "256_ObjectCategories", ["001.ak47", "002.bat", "257.clutter"], 3, 8)
    source = open_source("caltech256", root=tmp_path)
    assert source.classes == ["ak47", "bat"] and len(source.split("train")) + len(source.split("val")) == 6
    assert len(open_source("caltech256", root=tmp_path, include_clutter=True).classes) == 3


# ----------------------------------------------------------------------------------------------- processed


def write_processed(root: Path, rows: list[str], stats: str | None = None) -> None:
    (root / "train").mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (10, 8), (200, 10 * i, 0)).save(root / "train" / f"img{i}.jpg")
    (root / "categories.csv").write_text("name,id\ncat,0\ndog,1\n")
    (root / "train.csv").write_text("image,class_id\n" + "".join(r + "\n" for r in rows))
    if stats:
        (root / "rgb_val.json").write_text(stats)


def test_processed_source_reads_csvs_and_stats(tmp_path: Path) -> None:
    write_processed(tmp_path / "p", ["train/img0.jpg,0", "img1.jpg,1"],  # the seed's CSVs name the file only
                    '{"mean": [127.5, 51, 0], "std": [25.5, 51, 76.5]}')
    source = open_source(tmp_path / "p")
    assert source.name == "processed" and source.classes == ["cat", "dog"] and source.splits() == ["train"]
    assert source.mean == pytest.approx((0.5, 0.2, 0.0)) and source.std == pytest.approx((0.1, 0.2, 0.3))
    split = source.split("train")
    assert [split.ident(i) for i in range(2)] == ["train/img0.jpg", "train/img1.jpg"] and split.labels == [0, 1]
    assert split.load(1)[0].shape == (8, 10, 3)
    write_processed(tmp_path / "q", ["train/img0.jpg,0", "train/img1.jpg,1"] * 2)
    carved = open_source(tmp_path / "q", val_split=0.5)  # no val.csv: hold out part of train
    assert carved.splits() == ["train", "val"] and carved.split("val").labels == [0, 1]


@pytest.mark.parametrize("bad", ["../outside.jpg", "/etc/passwd", "train/../../outside.jpg"])
def test_processed_csv_paths_must_stay_inside_the_root(tmp_path: Path, bad: str) -> None:
    (tmp_path / "outside.jpg").write_bytes(b"x")
    write_processed(tmp_path / "p", ["train/img0.jpg,0", f"{bad},1"])
    with pytest.raises(DataError, match=r"train\.csv, row 3: .* points outside the dataset folder"):
        open_source(tmp_path / "p")


def test_processed_csv_bad_class_id(tmp_path: Path) -> None:
    write_processed(tmp_path / "p", ["train/img0.jpg,7"])
    with pytest.raises(DataError, match=r"train\.csv, row 2: class id 7"):
        open_source(tmp_path / "p")


@pytest.mark.parametrize("stats, pattern", [
    ('{"mean": [], "std": []}', "0 values; expected 1"),
    ('{"mean": [1, 2], "std": [1, 2]}', "2 values; expected 1"),
    ('{"mean": [1, 2, 3], "std": [0, 1, 1]}', "finite and positive"),
    ('{"mean": [1, 2, 3], "std": [-1, 1, 1]}', "finite and positive"),
    ('{"mean": [1, 2, 3], "std": [1e400, 1, 1]}', "finite and positive"),
    ('{"mean": [NaN, 2, 3], "std": [1, 1, 1]}', "finite and positive"),
])
def test_processed_stats_that_cannot_normalize_are_one_data_error(tmp_path: Path, stats: str, pattern: str) -> None:
    # were a ValueError traceback (wrong count) or training on inf/NaN inputs (zero, negative or infinite std)
    write_processed(tmp_path / "p", ["train/img0.jpg,0", "train/img1.jpg,1"], stats)
    with pytest.raises(DataError, match=rf"rgb_val\.json: .*{pattern}"):
        open_source(tmp_path / "p")


def test_processed_symlink_escaping_the_root_is_refused(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.jpg")
    write_processed(tmp_path / "p", ["train/link.jpg,0"])
    os.symlink(tmp_path / "secret.jpg", tmp_path / "p" / "train" / "link.jpg")
    with pytest.raises(DataError, match="points outside"):
        open_source(tmp_path / "p")


# ----------------------------------------------------------------------------------------------- images


def test_every_mode_becomes_8bit_rgb() -> None:
    gray = Image.new("L", (4, 4), 100)
    assert to_rgb(gray).getpixel((0, 0)) == (100, 100, 100)
    assert to_rgb(Image.new("1", (2, 2), 1)).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (2, 2), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    assert to_rgb(pal).getpixel((0, 0)) == (10, 20, 30)
    pal.info["transparency"] = 1
    assert to_rgb(pal).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white background
    rgba = Image.new("RGBA", (2, 2), (0, 0, 200, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("RGBA", (2, 2), (0, 0, 200, 255))).getpixel((0, 0)) == (0, 0, 200)
    half = to_rgb(Image.new("LA", (2, 2), (0, 128))).getpixel((0, 0))
    assert all(126 <= v <= 128 for v in half)
    assert to_rgb(Image.new("CMYK", (2, 2), (0, 255, 255, 0))).getpixel((0, 0)) == (255, 0, 0)
    deep = Image.fromarray(np.array([[0, 32896, 65535, 1000]], dtype=np.uint16))
    assert deep.mode.startswith("I;16")
    assert [to_rgb(deep).getpixel((x, 0))[0] for x in range(4)] == [0, 128, 255, 4]  # scaled, not clipped
    wide = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert [to_rgb(wide).getpixel((x, 0))[0] for x in range(2)] == [0, 255]
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert [to_rgb(unit).getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    for img in (gray, pal, rgba, deep, wide, unit):
        assert to_rgb(img).mode == "RGB"


def test_open_image_exif_draft_and_bad_files(tmp_path: Path) -> None:
    photo = Image.fromarray(np.tile(np.linspace(0, 255, 800, dtype=np.uint8), (600, 1)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    photo.convert("RGB").save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    full = open_image(tmp_path / "rotated.jpg")
    assert full.size == (600, 800) and full.mode == "RGB"
    small = open_image(tmp_path / "rotated.jpg", min_size=(150, 150))  # JPEG draft: decoded at 1/4 scale
    assert small.size == (150, 200)
    assert open_image(tmp_path / "rotated.jpg", min_size=(160, 160)).size == (300, 400)  # never below 160
    assert open_image(tmp_path / "rotated.jpg", channels=1).mode == "L"

    data = (tmp_path / "rotated.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    cases = {"truncated.jpg": "unreadable", "text.jpg": "not an image", "empty.png": "empty file"}
    for name, reason in cases.items():
        with pytest.raises(BadImage, match=reason):
            open_image(tmp_path / name)
    with pytest.raises(BadImage, match="decompression-bomb limit"):
        open_image(tmp_path / "rotated.jpg", max_pixels=1000)


def test_array_split_and_stratified_split() -> None:
    split = ArraySplit(np.zeros((4, 2, 2), dtype=np.uint8), [0, 1, 0, 1])
    assert split.load(2)[0].shape == (2, 2, 1) and len(split) == 4
    labels = [0] * 10 + [1] * 5 + [2]
    train, val, test = stratified_split(labels, [0.2, 0.2], seed=0)
    assert sorted(train + val + test) == list(range(16))
    assert [labels[i] for i in val].count(0) == 2 and [labels[i] for i in val].count(1) == 1
    assert 15 in train  # a class with one image keeps it for training
    assert stratified_split(labels, [0.2, 0.2], seed=0) == [train, val, test]
    # small classes: the total still comes out right (round(20 * 0.2) = 4), spread by the seed
    parts = stratified_split([c for c in range(10) for _ in range(2)], [0.2], seed=1)
    assert len(parts[1]) == 4 and len({i // 2 for i in parts[1]}) == 4


def test_pick_split_is_one_rule_with_the_preference_as_a_parameter() -> None:
    from resnetcli.data.source import ArraySplit, Source
    from resnetcli.errors import UsageError

    def split() -> ArraySplit:
        return ArraySplit(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]))

    source = Source(name="t", root="/d", classes=["a", "b"], splits={"train": split(), "val": split(),
                                                                     "test": split()})
    assert source.pick_split(None, ("val", "test"), "--val-split") == "val"  # training validates on val
    assert source.pick_split(None, ("test", "val"), "--split") == "test"  # `test` scores test first
    assert source.pick_split("train", ("test", "val"), "--split") == "train"
    assert Source(name="t", root="/d", classes=["a"], splits={"train": split()}).pick_split(
        None, ("val", "test"), "--val-split") is None
    with pytest.raises(UsageError, match=r"--split 'holdout' is not a split of the data at /d; "
                                         r"it has: train, val, test"):
        source.pick_split("holdout", ("test", "val"), "--split")
