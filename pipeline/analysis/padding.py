"""TDM 40200 Q6: measured convolution output shapes against ``floor((H - k + 2p) / s) + 1``.

:func:`padding` is the ``padding`` stage's work (:mod:`pipeline.stages.padding`), on the first
training image of the Kaggle MNIST CSV (the TDM handout's ``train_dataset[0]``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from pipeline.core.errors import DataError
from pipeline.core.io import write_json, write_text
from pipeline.core.params import load_all
from pipeline.data.common.formats import CSV_NAMES, csv_columns

log = logging.getLogger(__name__)

FORMULA = "floor((H - k + 2p) / s) + 1"


def first_mnist_image(csv_dir: Path) -> tuple[torch.Tensor, int]:
    """The first training row of the Kaggle MNIST CSV as ``(1, 1, 28, 28)`` in [0, 1] (the handout's ``train_dataset[0]``)."""
    file = Path(csv_dir) / CSV_NAMES["train"]
    try:
        frame = pd.read_csv(file, nrows=1)
    except FileNotFoundError:
        raise DataError(f"{file}: file not found") from None
    if list(frame.columns) != csv_columns() or len(frame) != 1:
        raise DataError(f"{file}: expected a header label,1x1,...,28x28 and at least one data row")
    row = frame.to_numpy()[0]
    image = torch.tensor(row[1:], dtype=torch.float32).view(1, 1, 28, 28) / 255.0
    return image, int(row[0])


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """``floor((size - kernel + 2 * padding) / stride) + 1``. The HKU layers file computes the same
    with the same argument order; it keeps its own copy because it is a student's self-contained file."""
    return (size - kernel + 2 * padding) // stride + 1


def padding_table(
    image: torch.Tensor,
    kernel_size: int = 3,
    paddings: Sequence[int] = (0, 1, 2),
    strides: Sequence[int] = (1, 2),
    formula: Callable[[int, int, int, int], int] = conv_output_size,
) -> list[dict]:
    """Measured ``Conv2d(C, 1, k, stride, padding)`` output shapes of ``image`` ``(1, C, H, W)``
    for every padding x stride, next to ``formula(size, k, s, p)`` per spatial side."""
    if image.dim() != 4:
        raise ValueError(f"expected one image as (1, C, H, W), got shape {tuple(image.shape)}")
    _, channels, height, width = image.shape
    rows = []
    with torch.no_grad():
        for pad in paddings:
            for stride in strides:
                conv = nn.Conv2d(channels, 1, kernel_size=kernel_size, stride=stride, padding=pad)
                measured = list(conv(image.float()).shape)
                expected = [formula(height, kernel_size, stride, pad), formula(width, kernel_size, stride, pad)]
                rows.append(
                    {
                        "padding": pad,
                        "stride": stride,
                        "kernel_size": kernel_size,
                        "input_shape": list(image.shape),
                        "measured_shape": measured,
                        "formula_hw": expected,
                        "agree": measured[2:] == expected,
                    }
                )
    return rows


def padding_result(image: torch.Tensor, rows: Sequence[dict], kernel_size: int, source: str) -> dict:
    """The content of ``padding_shapes.json``."""
    return {
        "source": source,
        "input_shape": list(image.shape),
        "kernel_size": kernel_size,
        "formula": FORMULA,
        "all_agree": all(r["agree"] for r in rows),
        "rows": list(rows),
    }


def padding_markdown(rows: Sequence[dict], source: str) -> str:
    first = rows[0]
    k = first["kernel_size"]
    lines = [
        "# Padding and output shapes (TDM 40200 Q6)",
        "",
        f"Input: {source}, shape {first['input_shape']}. Each row: `nn.Conv2d(1, 1, kernel_size={k}, "
        "stride=s, padding=p)` applied to it; the formula is `floor((H - k + 2p) / s) + 1`.",
        "",
    ]
    plain = next((r for r in rows if r["padding"] == 0 and r["stride"] == 1), None)
    if plain is not None:
        h = first["input_shape"][2]
        lines += [
            f"The handout's example (padding 0, stride 1) gives {plain['measured_shape']}: {h} - {k} + 1 = "
            f"{h - k + 1} valid positions per side, so the border is lost; padding (k - 1) / 2 keeps {h} x {h} "
            "at stride 1.",
            "",
        ]
    lines += ["| padding | stride | measured output shape | formula (H, W) | agree |", "|---:|---:|---|---|:---:|"]
    for r in rows:
        lines.append(
            f"| {r['padding']} | {r['stride']} | {r['measured_shape']} | {r['formula_hw']} | {'yes' if r['agree'] else 'NO'} |"
        )
    lines.append("")
    return "\n".join(lines)


def padding(params_path: Path, mnist_csv: Path, out: Path) -> dict:
    """The padding table for the first MNIST training image; write ``padding_shapes.json`` and ``.md`` to ``out``."""
    cfg = load_all(params_path).analysis.padding
    image, label = first_mnist_image(mnist_csv)
    rows = padding_table(image, cfg.kernel_size, cfg.paddings, cfg.strides)
    source = f"first training image of {mnist_csv / CSV_NAMES['train']} (label {label})"
    result = padding_result(image, rows, cfg.kernel_size, source)
    write_json(out / "padding_shapes.json", result)
    write_text(out / "padding_shapes.md", padding_markdown(rows, source))
    log.info("%d padding x stride cases, all agree with the formula: %s; wrote %s", len(rows), result["all_agree"], out)
    return result
