"""Stronger augmentation: torchvision's policies and random erasing as registered pipelines, and CutMix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resnetcli.augment import build_pipeline
from resnetcli.engine.loop import Stepper, cutmix_batch, mix_batch
from resnetcli.engine.rng import seed_transform

STRONG = ["randaugment", "trivialaugment", "autoaugment", "erasing"]
MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def _run(name: str, seed: int, **options: object) -> torch.Tensor:
    pipeline = build_pipeline(name, train=True, image_size=16, mean=MEAN, std=STD, options=options)
    seed_transform(pipeline, seed)
    return pipeline(image=_image())["image"]


@pytest.mark.parametrize("name", STRONG)
def test_a_strong_preset_changes_images_beyond_crop_and_flip_and_repeats_under_its_seed(name: str) -> None:
    options = {"p": 1.0} if name == "erasing" else {}
    changed = 0
    for seed in range(6):
        image = _run(name, seed, **options)
        assert image.shape == (3, 16, 16) and image.dtype == torch.float32
        assert torch.equal(image, _run(name, seed, **options))  # the same seed: the same image
        # cifar with the same seed draws the same crop and flip: what differs is the policy's doing
        changed += not torch.equal(image, _run("cifar", seed))
    assert changed >= 4
    assert not torch.equal(_run(name, 0, **options), _run(name, 1, **options))


def test_the_policy_leaves_torchs_global_generator_alone() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    _run("randaugment", 0)
    assert torch.equal(torch.rand(3), expected)


def test_random_erasing_fills_a_box_with_the_mean_colour() -> None:
    image = _run("erasing", 3, p=1.0)
    zeros = (image == 0).all(dim=0)  # normalized 0 in every channel: the dataset's mean colour
    assert zeros.sum() >= 4
    rows, cols = zeros.nonzero(as_tuple=True)
    box = zeros[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    assert box.all()  # one rectangle


def test_evaluation_is_not_augmented() -> None:
    for name in STRONG:
        evaluation = build_pipeline(name, train=False, image_size=16, mean=MEAN, std=STD)
        plain = build_pipeline("cifar", train=False, image_size=16, mean=MEAN, std=STD)
        assert torch.equal(evaluation(image=_image())["image"], plain(image=_image())["image"])


def test_a_bad_autoaugment_policy_is_a_usage_error() -> None:
    from resnetcli.errors import UsageError

    with pytest.raises(UsageError, match="imagenet"):
        build_pipeline("autoaugment", train=True, image_size=16, mean=MEAN, std=STD, options={"policy": "mnist"})


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_label_weight_is_the_pasted_area_fraction(seed: int) -> None:
    images = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 3, 10, 14).clone()
    targets = torch.arange(6)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    mixed, targets_a, targets_b, lam = cutmix_batch(images, targets, 1.0, rng, gen)
    assert torch.equal(targets_a, targets)
    for i in range(6):
        pasted = int((mixed[i, 0] != images[i, 0]).sum()) / (10 * 14)
        if targets_b[i] != i:  # pixels came from another image: exactly the weight of its label
            assert pasted == pytest.approx(1.0 - lam, abs=1e-12)
            assert set(mixed[i, 0].unique().tolist()) <= {float(i), float(targets_b[i])}


def test_with_mixup_and_cutmix_both_on_each_batch_uses_one_of_them() -> None:
    stepper = Stepper(model=torch.nn.Identity(), optimizer=None, schedule=None,  # type: ignore[arg-type]
                      device=torch.device("cpu"), mixup=0.4, cutmix=1.0)
    images = torch.rand(4, 3, 8, 8)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    kinds = []
    for _ in range(40):
        mixed, _, targets_b, _lam = mix_batch(stepper, images, torch.arange(4), rng, gen)
        boxed = bool(((mixed == images) | (mixed == images[targets_b])).all())  # cutmix copies pixels whole
        kinds.append("cutmix" if boxed else "mixup")
    assert 10 <= kinds.count("cutmix") <= 30


def test_training_with_cutmix_runs_and_is_reproducible(tmp_path) -> None:
    import json

    from helpers_train import run_engine, write_images

    data = write_images(tmp_path / "data")
    rows = []
    for name in ("a", "b"):
        run_engine(data, tmp_path / name, cutmix=1.0, augment="trivialaugment", epochs=1)
        rows.append(json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0]))
    assert rows[0]["train_loss"] == rows[1]["train_loss"]
