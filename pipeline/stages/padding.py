"""Stage ``padding``: TDM 40200 Q6, convolution output shapes vs ``floor((H - k + 2p) / s) + 1``.

    python -m pipeline.stages.padding [--params params.yaml] [--mnist-csv data/mnist_csv] [--out reports/analysis]

Reads the params ``analysis.padding`` (``kernel_size``, ``paddings``, ``strides``) and the
first training row of ``data/mnist_csv/mnist_train.csv`` (the TDM handout's ``train_dataset[0]``).
Writes to ``reports/analysis/``:

``padding_shapes.json``   every padding x stride: measured shape, formula, agree (DVC metrics)
``padding_shapes.md``     the same as a table
"""

from __future__ import annotations

from pipeline.analysis.padding import padding
from pipeline.core.cli import PARAMS, path_arg, stage_main

main = stage_main(
    __doc__,
    [
        PARAMS,
        path_arg("--mnist-csv", "data/mnist_csv", "folder of the MNIST CSVs"),
        path_arg("--out", "reports/analysis", "output folder"),
    ],
    lambda args: padding(args.params, args.mnist_csv, args.out),
)


if __name__ == "__main__":
    main()
