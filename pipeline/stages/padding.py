"""Stage ``padding``: TDM 40200 Q6, convolution output shapes vs ``floor((H - k + 2p) / s) + 1``.

    python -m pipeline.stages.padding [--params params.yaml] [--mnist-csv data/mnist_csv] [--out reports/analysis]

Reads the params ``analysis.padding`` (``kernel_size``, ``paddings``, ``strides``) and the
first training row of ``data/mnist_csv/mnist_train.csv`` (the seed's ``train_dataset[0]``).
Writes to ``reports/analysis/``:

``padding_shapes.json``   every padding x stride: measured shape, formula, agree (DVC metrics)
``padding_shapes.md``     the same as a table
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.cli import PARAMS, path_arg, stage_main
from pipeline.config import load_params
from pipeline.data.common.formats import CSV_NAMES
from pipeline.io import write_json, write_text
from pipeline.padding import first_mnist_image, load_padding, padding_markdown, padding_result, padding_table

log = logging.getLogger("pipeline.stages.padding")


def run(params_path: Path, mnist_csv: Path, out: Path) -> dict:
    cfg = load_padding(load_params(params_path))
    image, label = first_mnist_image(mnist_csv)
    rows = padding_table(image, cfg.kernel_size, cfg.paddings, cfg.strides)
    source = f"first training image of {mnist_csv / CSV_NAMES['train']} (label {label})"
    result = padding_result(image, rows, cfg.kernel_size, source)
    write_json(out / "padding_shapes.json", result)
    write_text(out / "padding_shapes.md", padding_markdown(rows, source))
    log.info("%d padding x stride cases, all agree with the formula: %s; wrote %s", len(rows), result["all_agree"], out)
    return result


main = stage_main(
    __doc__,
    [
        PARAMS,
        path_arg("--mnist-csv", "data/mnist_csv", "folder of the MNIST CSVs"),
        path_arg("--out", "reports/analysis", "output folder"),
    ],
    lambda args: run(args.params, args.mnist_csv, args.out),
)


if __name__ == "__main__":
    main()
