"""Thumbnails inlined as data: URIs, from the evaluated data set's own images."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

#: longest side of a thumbnail in the report, in pixels
THUMB_SIDE = 96


class Thumbnails:
    """ident (a predictions.csv row's `ident`) -> a PNG data URI, or None when the image cannot be found.

    Folder data sets name files relative to their root (read directly, never outside the root); array
    data sets (CIFAR, MNIST) are opened once through resnetcli.data, with the run's --data-option values
    (`root=` among them), and indexed by ident.
    """

    def __init__(self, spec: str | None, root: Path | None, split: str | None,
                 options: dict[str, Any] | None = None) -> None:
        self.spec, self.root, self.split = spec, root, split
        self.options = dict(options or {})
        self._by_ident: dict[str, int] | None = None
        self._split_obj: Any = None

    def _array_image(self, ident: str) -> Any:
        import numpy as np
        from PIL import Image

        if self._by_ident is None:
            self._by_ident = {}
            try:
                from resnetcli.data import open_source

                source = (open_source(str(self.root)) if self.root is not None
                          else open_source(self.spec, **self.options))
                self._split_obj = source.split(self.split)
                self._by_ident = {self._split_obj.ident(k): k for k in range(len(self._split_obj))}
            except Exception:  # no thumbnails is a smaller loss than no report
                return None
        k = self._by_ident.get(ident)
        if k is None:
            return None
        arr = np.ascontiguousarray(self._split_obj.load(k)[0])
        return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)

    def _file_image(self, ident: str) -> Any:
        from resnetcli.data.images import BadImage, open_image

        if self.root is None:
            return None
        try:
            root = self.root.resolve()
            path = (root / ident).resolve()
        except (OSError, ValueError, RuntimeError):  # a crafted predictions.csv: a NUL byte, a link loop
            return None
        if not path.is_relative_to(root) or not path.is_file():
            return None
        try:
            return open_image(path, min_size=(THUMB_SIDE, THUMB_SIDE))
        except BadImage:
            return None

    def uri(self, ident: str) -> str | None:
        if self.spec is None:
            return None
        img = self._file_image(ident)
        if img is None:
            img = self._array_image(ident)
        if img is None:
            return None
        img = img.copy()
        scale = THUMB_SIDE / max(img.size)
        if scale < 1:
            img.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buf = io.BytesIO()
        img.save(buf, "PNG", optimize=True)
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
