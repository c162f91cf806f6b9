"""The counterfactual test of a CSE 849 model: the same photo with a digit of another class.

For each test image the composite is drawn again by the converter's own code
(:meth:`~pipeline.data.common.composite.Layout.render`) at the dataset's layout, from the sources
the converter stored beside the images (``counterfactual_test.npz``: the CIFAR-10 test
images, the MNIST test digits, and per test row the digit of another class it drew with
``composite.seed``). Before that, the stored sources must redraw every test image exactly
as it was read, so the counterfactual differs from the original in the digit only.

The **flip rate** is the fraction of test images whose predicted class changes when only
the digit changes: 0 for a model that ignores the digit; a model that reads the label
off the digit flips about nine times in ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import DataError
from pipeline.core.io import rounded
from pipeline.data.common.composite import Layout, read_composite_metadata
from pipeline.data.common.formats import COUNTERFACTUAL

SOURCE_ARRAYS = ("cifar_images", "mnist_images", "mnist_labels", "digit_mnist_index")


@dataclass
class Counterfactuals:
    images: torch.Tensor  # uint8 (N, 3, H, W), in the order of the test files
    digit_labels: torch.Tensor  # int64 (N,): the class of the digit now on each image


def _render(cifar: np.ndarray, mnist: np.ndarray, cifar_index: np.ndarray, mnist_index: np.ndarray, layout: Layout):
    out = np.empty((len(cifar_index), *layout.canvas, 3), dtype=np.uint8)
    for i, (c, m) in enumerate(zip(cifar_index, mnist_index)):
        out[i] = layout.render(cifar[c], mnist[m])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def load_counterfactuals(root: Path, files: list[str], images: torch.Tensor, layout: Layout) -> Counterfactuals | None:
    """The counterfactual of each test image (``root``, ``files``, ``images``: the test split as
    read from its dataset folder), or None for a dataset without ``counterfactual_test.npz``
    (not one of our composites)."""
    path = root / COUNTERFACTUAL
    metadata = read_composite_metadata(root)
    if metadata is None or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        missing = [name for name in SOURCE_ARRAYS if name not in npz.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}")
        cifar, mnist, mnist_labels, replacement = (npz[name] for name in SOURCE_ARRAYS)
    rows = metadata[metadata["split"] == "test"].reset_index(drop=True)
    if len(replacement) != len(rows):
        raise DataError(f"{path}: {len(replacement)} counterfactual digits for {len(rows)} test rows of metadata.csv")
    position = {name: i for i, name in enumerate(rows["filename"].astype(str))}
    unknown = [f for f in files if f not in position]
    if unknown:
        raise DataError(f"{root / 'metadata.csv'}: no test row for {unknown[0]!r} ({len(unknown)} in all)")
    order = np.array([position[f] for f in files])
    cifar_index = rows["cifar_index"].to_numpy()[order]
    if cifar_index.max(initial=-1) >= len(cifar) or replacement.max(initial=-1) >= len(mnist):
        raise DataError(f"{path}: an index of metadata.csv is beyond the stored sources")

    original = _render(cifar, mnist, cifar_index, rows["mnist_index"].to_numpy()[order], layout)
    differ = (original != images).flatten(1).any(1)
    if bool(differ.any()):
        first = files[int(differ.nonzero()[0])]
        raise DataError(
            f"{path}: the stored sources do not redraw {int(differ.sum())} test image(s) (first: test/{first}); "
            f"the images changed after conversion, so a counterfactual would differ in more than the digit"
        )
    new_digits = replacement[order]
    return Counterfactuals(
        images=_render(cifar, mnist, cifar_index, new_digits, layout),
        digit_labels=torch.from_numpy(mnist_labels[new_digits].astype(np.int64)),
    )


def flip_metrics(
    predicted: torch.Tensor, counterfactual_predicted: torch.Tensor, labels: torch.Tensor, cf: Counterfactuals
) -> dict:
    """Flip rate, accuracy on the counterfactuals, and how often they are predicted as their new digit."""
    return {
        "flip_rate": rounded((predicted != counterfactual_predicted).double().mean()),
        "accuracy": rounded((counterfactual_predicted == labels).double().mean()),
        "predicted_digit_rate": rounded((counterfactual_predicted == cf.digit_labels).double().mean()),
        "images": len(labels),
    }
