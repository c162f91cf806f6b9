"""The composite dataset (CSE 849) in one place: where each source image sits on the canvas, and
the ``metadata.csv`` that says what each sample was made of (:func:`read_composite_metadata`).

The geometry is one block of params (``composite.layout`` in params.yaml)::

    canvas: [64, 64]          # height, width of the RGB canvas (black background)
    cifar: [0, 0, 32, 32]     # [top, left, height, width] of the CIFAR-10 image
    digit: [36, 36, 28, 28]   # [top, left, height, width] of the MNIST digit

The converter renders every composite with it and writes it into the dataset's
``dataset.json`` (key ``layout``). Everything that needs a region afterwards (the
training augmentations that move or blank the digit, the occlusion test, the
counterfactual re-rendering) names it (``digit``, ``cifar``) and reads its box from the
dataset it works on, so the numbers are written once and travel with the data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError, PipelineError
from pipeline.data.common.formats import COMPOSITE_SPLITS, METADATA, METADATA_COLUMNS

#: The regions a composite has and the size of what is pasted there (CIFAR-10 32x32, MNIST 28x28).
SOURCE_SIZES = {"cifar": (32, 32), "digit": (28, 28)}
DATASET_JSON = "dataset.json"

Box = tuple[int, int, int, int]  # top, left, height, width


class LayoutError(PipelineError):
    """A layout block (params or dataset.json) that cannot describe a composite; names the key."""


def _ints(value: Any, n: int, key: str, what: str) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and len(value) == n
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    if not ok:
        raise LayoutError(f"{key}: expected {what} (non-negative integers), got {value!r}")
    return tuple(value)


def check_box(box: Any, height: int, width: int, key: str) -> Box:
    """``box`` as ``(top, left, height, width)``: integers, positive size, inside ``height`` x ``width``."""
    top, left, h, w = _ints(box, 4, key, "[top, left, height, width]")
    if h == 0 or w == 0:
        raise LayoutError(f"{key}: height and width must be positive, got {list(box)!r}")
    if top + h > height or left + w > width:
        raise LayoutError(
            f"{key}: {list(box)!r} reaches beyond the {height}x{width} canvas "
            f"(rows {top}-{top + h - 1}, columns {left}-{left + w - 1})"
        )
    return (top, left, h, w)


@dataclass(frozen=True)
class Layout:
    canvas: tuple[int, int]  # height, width
    regions: dict[str, Box]  # "cifar", "digit" -> [top, left, height, width]

    @classmethod
    def from_mapping(cls, node: Any, key: str = "composite.layout") -> Layout:
        """Validate a layout block: the canvas, one box per source, each the size of its source,
        inside the canvas, not overlapping (an overlap would paste the digit over the photo)."""
        if not isinstance(node, Mapping):
            raise LayoutError(f"{key}: expected a mapping with canvas, {', '.join(SOURCE_SIZES)}")
        expected = {"canvas", *SOURCE_SIZES}
        unknown = sorted(set(node) - expected)
        if unknown:
            raise LayoutError(f"{key}.{unknown[0]}: unknown key; allowed keys: {', '.join(sorted(expected))}")
        missing = sorted(expected - set(node))
        if missing:
            raise LayoutError(f"{key}.{missing[0]}: missing key")
        height, width = _ints(node["canvas"], 2, f"{key}.canvas", "[height, width]")
        regions = {}
        for name, (src_h, src_w) in SOURCE_SIZES.items():
            box = check_box(node[name], height, width, f"{key}.{name}")
            if box[2:] != (src_h, src_w):
                raise LayoutError(
                    f"{key}.{name}: a {name} image is {src_h}x{src_w}, the box is {box[2]}x{box[3]} "
                    f"(images are pasted, not resized)"
                )
            regions[name] = box
        (t1, l1, h1, w1), (t2, l2, h2, w2) = regions.values()
        if t1 < t2 + h2 and t2 < t1 + h1 and l1 < l2 + w2 and l2 < l1 + w1:
            raise LayoutError(f"{key}: the {' and '.join(regions)} boxes overlap")
        return cls(canvas=(height, width), regions=regions)

    def to_json(self) -> dict[str, list[int]]:
        """The params block's shape, as written into ``dataset.json``."""
        return {"canvas": list(self.canvas), **{name: list(box) for name, box in self.regions.items()}}

    def render(self, cifar_image: np.ndarray, digit: np.ndarray) -> np.ndarray:
        """One ``(H, W, 3)`` uint8 composite: black canvas, the CIFAR image (32x32x3) and the digit
        (28x28 gray, copied to the three channels) each pasted at its box.

        The only place a composite is drawn: the converter and the counterfactual test
        (:mod:`pipeline.inference.counterfactual`) both call it."""
        canvas = np.zeros((*self.canvas, 3), dtype=np.uint8)
        top, left, height, width = self.regions["cifar"]
        canvas[top : top + height, left : left + width] = cifar_image
        top, left, height, width = self.regions["digit"]
        canvas[top : top + height, left : left + width] = digit[:, :, None]
        return canvas

    def box(self, name: str, key: str) -> Box:
        """The region ``name`` (a params value at ``key``), or an error listing the regions."""
        if name not in self.regions:
            raise LayoutError(f"{key}: unknown region {name!r}; the composite layout has {', '.join(self.regions)}")
        return self.regions[name]


def read_layout(root: str | os.PathLike[str]) -> Layout | None:
    """The layout the converter wrote into ``<root>/dataset.json``; None for a dataset without one
    (the course's own zip), so region-based tests are skipped there rather than guessed."""
    file = Path(root) / DATASET_JSON
    if not file.is_file():
        return None
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(info, Mapping) or "layout" not in info:
        return None
    try:
        return Layout.from_mapping(info["layout"], f"{file}: layout")
    except LayoutError as exc:
        raise DataError(str(exc)) from None


# --------------------------------------------------------------------------- metadata.csv
# One row per sample. Read by the image-folder reader (digit labels), the statistics stage and the
# counterfactual test; written by pipeline.data.convert.


def read_composite_metadata(path: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The composite dataset's ``metadata.csv`` (``path``: the dataset folder or the file); None if absent.

    Columns: split, filename (relative to the split folder), label, digit_label,
    cifar_index, mnist_index.
    """
    path = Path(path)
    file = path / METADATA if path.is_dir() else path
    if not file.is_file():
        return None
    try:
        frame = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot read: {exc}") from None
    missing = [c for c in METADATA_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{file}: missing column(s) {', '.join(missing)}")
    for column in METADATA_COLUMNS[2:]:
        if not pd.api.types.is_integer_dtype(frame[column]):
            raise DataError(f"{file}: column {column!r} must hold integers")
    unknown = sorted(set(frame["split"]) - set(COMPOSITE_SPLITS))
    if unknown:
        raise DataError(f"{file}: unknown split {unknown[0]!r}")
    return frame
