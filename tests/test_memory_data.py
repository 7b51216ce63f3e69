"""The in-memory data path (engine/memory.py): which data takes it, what its batches hold, and that they
depend only on (seed, epoch)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers_train import run_engine, write_images

from resnetcli.augment import build_pipeline
from resnetcli.data.source import ArraySplit
from resnetcli.engine import distributed as D
from resnetcli.engine.config import resolve_light
from resnetcli.engine.data import EpochSampler, open_training_data
from resnetcli.engine.memory import BatchAugment, MemoryBatches, augment_batch, batch_augment_for
from resnetcli.engine.trainer import build_loaders
from resnetcli.errors import UsageError


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("mem") / "images", classes=2, per_class=6, size=8)


def _loaders(images: Path, **flags: object) -> dict[str, object]:
    config = resolve_light(None, {"data": str(images), "arch": "cifar_resnet", "image_size": 8, "augment": "cifar",
                                  "batch_size": 4, "seed": 5, "lr": 0.1, **flags})
    data = open_training_data(config.data or "", {}, "auto")
    return build_loaders(config, data, D.DistInfo(), torch.device("cpu"))


def _epoch(loaders: dict[str, object], epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loaders["sampler"].set_epoch(epoch)  # type: ignore[attr-defined]
    return [(x.clone(), y.clone()) for x, y in loaders["train"]]  # type: ignore[attr-defined]


def test_small_cifar_data_takes_the_memory_path_and_batches_depend_only_on_seed_and_epoch(images: Path) -> None:
    none, two = _loaders(images, workers=0), _loaders(images, workers=2)
    assert none["in_memory"] and none["path"].startswith("data in memory, 10x3x8x8 uint8")
    first, again, other = _epoch(none, 3), _epoch(two, 3), _epoch(none, 4)
    assert len(first) == 2 and all(x.dtype == torch.float32 and x.shape == (4, 3, 8, 8) for x, _ in first)
    for (x, y), (x2, y2) in zip(first, again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not all(torch.equal(x, x2) for (x, _), (x2, _) in zip(first, other, strict=True))


def test_no_in_memory_and_other_pipelines_keep_the_data_loader(images: Path) -> None:
    off = _loaders(images, workers=0, in_memory=False)
    assert not off["in_memory"] and off["path"].startswith("data through a DataLoader")
    other = _loaders(images, workers=0, augment="caltech")
    assert not other["in_memory"] and "only the none and cifar pipelines" in other["path"]
    with pytest.raises(UsageError, match="--in-memory: only the none and cifar"):
        _loaders(images, workers=0, augment="caltech", in_memory=True)


def _crops(image: torch.Tensor, padding: int, reflect: bool) -> list[torch.Tensor]:
    """Every crop (and its mirror) of `image` padded as the cifar pipeline pads it."""
    size = image.shape[-1]
    padded = F.pad(image[None].float(), [padding] * 4, mode="reflect" if reflect else "constant")[0]
    found = []
    for dy, dx in itertools.product(range(2 * padding + 1), repeat=2):
        crop = padded[:, dy:dy + size, dx:dx + size]
        found += [crop, crop.flip(-1)]
    return found


@pytest.mark.parametrize("reflect", [False, True])
def test_every_augmented_image_is_a_padded_crop_or_its_mirror(reflect: bool) -> None:
    images = torch.randint(1, 256, (64, 3, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = augment_batch(images, BatchAugment(padding=2, reflect=reflect, flip=True), torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    seen_shift = seen_flip = False
    for image, result in zip(images, out, strict=True):
        crops = _crops(image, 2, reflect)
        matches = [k for k, crop in enumerate(crops) if torch.equal(crop, result.float())]
        assert matches, "not a crop of the padded image"
        seen_flip |= any(k % 2 == 1 for k in matches)
        seen_shift |= not torch.equal(result, image) and not torch.equal(result, image.flip(-1))
    assert seen_shift and seen_flip  # 64 images: offsets and flips are drawn per image


def test_batches_are_normalized_as_the_pipeline_normalizes() -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    mean, std = (0.2, 0.4, 0.6), (0.25, 0.2, 0.3)
    sampler = EpochSampler(6, rank=0, world=1, seed=0, shuffle=False)
    batches = MemoryBatches(torch.from_numpy(array).permute(0, 3, 1, 2), torch.arange(6), sampler=sampler,
                            batch_size=6, drop_last=False, augment=BatchAugment(), mean=mean, std=std, seed=0)
    (x, y), = list(batches)
    pipeline = build_pipeline("none", train=False, image_size=8, mean=mean, std=std)
    expected = torch.stack([pipeline(image=ArraySplit(array, [0] * 6).load(i)[0])["image"] for i in range(6)])
    torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(y, torch.arange(6))


def test_cifar_options_map_to_the_batch_form_and_unknown_ones_do_not() -> None:
    assert batch_augment_for("cifar", {}, train=True) == BatchAugment(padding=4, reflect=False, flip=True)
    assert batch_augment_for("cifar", {"padding": 2, "reflect": True}, train=True) == BatchAugment(2, True, True)
    assert batch_augment_for("cifar", {"padding": 2}, train=False) == BatchAugment()
    assert batch_augment_for("cifar", {"scale": 2}, train=True) is None
    assert batch_augment_for("imagenet", {}, train=True) is None


def test_first_line_and_config_record_the_data_path_and_precision(images: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from resnetcli.engine import device as device_module

    native = device_module.Precision(torch.bfloat16, True, "bf16 autocast + channels_last: native (test)")
    monkeypatch.setattr(device_module, "default_precision", lambda device: native)
    run_engine(images, tmp_path / "auto", arch="cifar_resnet", arch_options={"depth": 8, "width": 2},
               image_size=8, augment="cifar", epochs=1, log_level="INFO")
    run_engine(images, tmp_path / "off", arch="cifar_resnet", arch_options={"depth": 8, "width": 2},
               image_size=8, augment="cifar", epochs=1, log_level="INFO", amp=False, in_memory=False)
    auto = yaml.safe_load((tmp_path / "auto" / "config.yaml").read_text())
    off = yaml.safe_load((tmp_path / "off" / "config.yaml").read_text())
    assert (auto["amp"], auto["amp_dtype"], auto["channels_last"], auto["in_memory"]) == (True, "bf16", True, True)
    assert (off["amp"], off["channels_last"], off["in_memory"]) == (False, True, False)
    first = (tmp_path / "auto" / "train.log").read_text().splitlines()[0]
    assert "bf16 autocast + channels_last: native (test)" in first and "data in memory, 10x3x8x8 uint8" in first
    first = (tmp_path / "off" / "train.log").read_text().splitlines()[0]
    assert "fp32 + channels_last: as set (--amp/--no-amp; auto would be bf16 autocast + channels_last)" in first
    assert "data through a DataLoader, 0 workers" in first
