"""Every registered augmentation runs on real images; cifar's reflection padding; YAML pipeline files."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
import yaml
from helpers_train import write_images
from PIL import Image

from resnetcli.augment import build_pipeline, load_pipeline_file
from resnetcli.errors import UsageError
from resnetcli.registry import registry

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    root = write_images(tmp_path_factory.mktemp("aug") / "img", classes=2, per_class=2, size=40)
    # one non-square image too: pipelines must bring any size to image_size
    Image.fromarray(np.full((30, 52, 3), 120, np.uint8)).save(root / "c0" / "wide.png")
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(root.rglob("*.png"))]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", registry("augmentations").names())
def test_each_pipeline_turns_real_images_into_normalized_tensors(name: str, train: bool,
                                                                  photos: list[np.ndarray]) -> None:
    t = build_pipeline(name, train=train, image_size=24, mean=MEAN, std=STD)
    for image in photos:
        out = t(image=image)["image"]
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (3, 24, 24)
        assert -4 < float(out.mean()) < 4  # normalized, not 0-255


def test_eval_pipelines_are_deterministic_and_training_ones_are_not(photos: list[np.ndarray]) -> None:
    image = photos[0]
    for name in ("cifar", "caltech", "imagenet"):
        ev = build_pipeline(name, train=False, image_size=32, mean=MEAN, std=STD)
        assert torch.equal(ev(image=image)["image"], ev(image=image)["image"])
        tr = build_pipeline(name, train=True, image_size=32, mean=MEAN, std=STD)
        tr.set_random_seed(0)
        outs = [tr(image=image)["image"] for _ in range(6)]
        assert any(not torch.equal(outs[0], o) for o in outs[1:]), name


def test_grayscale_images_keep_one_channel() -> None:
    gray = np.random.default_rng(0).integers(0, 255, (28, 28, 1), dtype=np.uint8)
    for name in registry("augmentations").names():
        out = build_pipeline(name, train=True, image_size=28, mean=(0.5,), std=(0.25,))(image=gray)["image"]
        assert out.shape == (1, 28, 28), name


def test_cifar_reflection_padding_replaces_zero_padding(photos: list[np.ndarray]) -> None:
    image = np.full((32, 32, 3), 200, np.uint8)  # a flat image: any zero in the output came from padding
    zero_value = torch.tensor([(0 - m) / s for m, s in zip(MEAN, STD)])[:, None, None]
    zeros = build_pipeline("cifar", train=True, image_size=32, mean=MEAN, std=STD)
    reflect = build_pipeline("cifar", train=True, image_size=32, mean=MEAN, std=STD, options={"reflect": True})
    zeros.set_random_seed(1)
    reflect.set_random_seed(1)
    padded_zero = padded_reflect = 0
    for _ in range(10):
        z, r = zeros(image=image)["image"], reflect(image=image)["image"]
        padded_zero += int(torch.isclose(z, zero_value.expand_as(z)).all(dim=0).sum())
        padded_reflect += int(torch.isclose(r, zero_value.expand_as(r)).all(dim=0).sum())
    assert padded_zero > 0 and padded_reflect == 0


def test_pipeline_from_albumentations_yaml_file(tmp_path: Path, photos: list[np.ndarray]) -> None:
    spec = A.to_dict(A.Compose([A.Resize(height=16, width=16), A.HorizontalFlip(p=1.0)]))
    path = tmp_path / "flip.yaml"
    path.write_text(yaml.safe_dump(spec))
    t = build_pipeline(str(path), train=True, image_size=16, mean=MEAN, std=STD)
    image = photos[0]
    expected = A.Compose([A.Resize(height=16, width=16), A.HorizontalFlip(p=1.0), A.Normalize(mean=MEAN, std=STD)])(
        image=image)["image"]
    assert torch.allclose(t(image=image)["image"], torch.from_numpy(expected).permute(2, 0, 1))
    # a single pipeline is for training; evaluation falls back to resize + normalize
    ev = load_pipeline_file(path, train=False, image_size=16, mean=MEAN, std=STD)
    assert ev(image=image)["image"].shape == (3, 16, 16)

    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump({"train": spec, "eval": A.to_dict(A.Compose([A.Resize(height=8, width=8)]))}))
    assert load_pipeline_file(both, train=False, image_size=16, mean=MEAN, std=STD)(image=image)["image"].shape \
        == (3, 8, 8)


def test_bad_pipeline_files_and_names_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("transform: {__class_fullname__: NoSuchTransform}\n")
    with pytest.raises(UsageError, match="bad.yaml is not a valid albumentations pipeline"):
        build_pipeline(str(bad), train=True, image_size=16, mean=MEAN, std=STD)
    with pytest.raises(UsageError, match="does not exist"):
        build_pipeline(str(tmp_path / "missing.yaml"), train=True, image_size=16, mean=MEAN, std=STD)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(UsageError, match="binary.yaml is not a UTF-8 text file"):
        build_pipeline(str(binary), train=True, image_size=16, mean=MEAN, std=STD)
    with pytest.raises(UsageError, match=r"unknown augmentation 'cifarr'; did you mean cifar"):
        build_pipeline("cifarr", train=True, image_size=16, mean=MEAN, std=STD)
    with pytest.raises(UsageError, match=r"does not take option\(s\) reflection; it takes: padding, reflect, flip"):
        build_pipeline("cifar", train=True, image_size=16, mean=MEAN, std=STD, options={"reflection": True})


def test_normalization_uses_the_given_mean_and_std(photos: list[np.ndarray]) -> None:
    image = next(p for p in photos if p.shape[:2] == (40, 40))  # native size: no resampling
    out = build_pipeline("none", train=False, image_size=40, mean=MEAN, std=STD)(image=image)["image"]
    pixels = torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255
    expected = (pixels - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
