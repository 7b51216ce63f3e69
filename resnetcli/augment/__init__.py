"""Augmentation pipelines (albumentations 2.x), registered under `resnetcli.augmentations`.

A pipeline entry is `build(*, train, image_size, mean, std, **options) -> albumentations.Compose`; the
Compose turns an HxWxC uint8 image into a CxHxW float32 tensor. `load_pipeline` also accepts a YAML file in
albumentations' own serialized form (A.to_dict), the semi-declarative pipeline seed 002 asked for.
"""

from resnetcli.augment.pipelines import build_pipeline, load_pipeline_file

__all__ = ["build_pipeline", "load_pipeline_file"]
