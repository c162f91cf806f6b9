"""Stage ``analyze``: filters, shapes, parameter counts, loss curves and comparisons of every variant.

    python -m pipeline.stages.analyze [--variants a,b] [--model VARIANT=PATH ...] [--out reports/analysis]

Reads ``models/<variant>.pt``, ``reports/<variant>/metrics.json`` and
``reports/<variant>/plots/{steps,epochs}.csv`` of every variant, the first training row
of ``data/mnist_csv/mnist_train.csv`` and the params ``analysis.comparisons`` and
``analysis.padding``. Writes to ``reports/analysis/``:

``filters/<variant>.png``        first-convolution kernels of every convolutional variant
``padding_shapes.{json,md}``     TDM Q6: measured conv output shapes vs the formula
``shape_traces.{json,md}``       Practical 5 Fig. 6: the shape after every layer
``param_counts.json``            DS 5220 Q3.3: parameters per variant (DVC metrics)
``layer_summaries.md``           torchsummary-like table per variant
``loss_curves/<variant>.png``    DS 5220 Part 4.1: loss vs training examples seen
``comparisons.{json,md}``        the measured comparisons listed in params (DVC metrics)

``--variants`` and ``--model`` are for development (a subset, a checkpoint elsewhere);
comparisons whose variants are not selected are skipped with a warning.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import pandas as pd
import torch

from pipeline import analysis
from pipeline.checkpoint import load_checkpoint
from pipeline.cli import run_stage
from pipeline.config import ConfigError, VariantConfig, load_params, variant_names
from pipeline.data.errors import DataError
from pipeline.data.formats import CSV_NAMES, csv_columns
from pipeline.datasets import load_splits
from pipeline.evaluation import variant_from_checkpoint
from pipeline.io import atomic_path, read_json, write_json, write_text
from pipeline.plots import save_figure

log = logging.getLogger("pipeline.stages.analyze")


def first_mnist_image(csv_dir: Path) -> tuple[torch.Tensor, int]:
    """The first training row of the Kaggle MNIST CSV as ``(1, 1, 28, 28)`` in [0, 1] (the seed's ``train_dataset[0]``)."""
    file = csv_dir / CSV_NAMES["train"]
    try:
        frame = pd.read_csv(file, nrows=1)
    except FileNotFoundError:
        raise DataError(f"{file}: file not found") from None
    if list(frame.columns) != csv_columns() or len(frame) != 1:
        raise DataError(f"{file}: expected a header label,1x1,...,28x28 and at least one data row")
    row = frame.to_numpy()[0]
    image = torch.tensor(row[1:], dtype=torch.float32).view(1, 1, 28, 28) / 255.0
    return image, int(row[0])


_TRAIN_SIZES: dict[tuple, int] = {}  # (format, path, val_fraction, seed) -> size, shared by variants on the same data


def train_examples(metrics: dict, variant: VariantConfig) -> int:
    """Training-set size (for the per-epoch test-loss points): from metrics.json, else counted from the data."""
    if "train_examples" in metrics:
        return int(metrics["train_examples"])
    data = variant.data
    key = (data.format, data.path, data.val_fraction, variant.seed if data.val_fraction else None)
    if key not in _TRAIN_SIZES:
        log.info("%s: metrics.json has no train_examples; counting the training split of %s", variant.name, data.path)
        if data.format == "image_folder":  # count the files; decoding 45,000 images is not needed for a count
            root = Path(data.path) / "train"
            if not root.is_dir():
                raise DataError(f"{root}: folder not found (needed to count the training examples)")
            _TRAIN_SIZES[key] = sum(1 for _, _, files in os.walk(root) for f in files if not f.startswith("."))
        else:  # the training code's own split (val_fraction held out with the variant's seed)
            _TRAIN_SIZES[key] = len(load_splits(data, variant.seed).train)
    return _TRAIN_SIZES[key]


def read_table(path: Path) -> pd.DataFrame:
    """A CSV written by the train stage; an empty one (no logged rows) gives an empty frame."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found (run the train stage first: `dvc repro`)") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["epoch", "examples_seen", "train_loss", "test_loss"])


def analyze(params_path: Path, models_dir: Path, reports_dir: Path, out: Path, mnist_csv: Path,
            only: list[str] | None = None, model_paths: dict[str, Path] | None = None) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    names = variant_names(params)
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ConfigError(f"--variants: unknown variant {unknown[0]!r}; allowed: {', '.join(names)}")
        names = only
    comparisons = analysis.load_comparisons(params)
    padding_cfg = analysis.load_padding(params)
    model_paths = {n: (model_paths or {}).get(n, models_dir / f"{n}.pt") for n in names}

    # TDM Q6: padding and output shapes on a real MNIST training image.
    image, label = first_mnist_image(mnist_csv)
    rows = analysis.padding_table(image, padding_cfg.kernel_size, padding_cfg.paddings, padding_cfg.strides)
    source = f"first training image of {mnist_csv / CSV_NAMES['train']} (label {label})"
    write_json(out / "padding_shapes.json", {
        "source": source, "input_shape": list(image.shape), "kernel_size": padding_cfg.kernel_size,
        "formula": "floor((H - k + 2p) / s) + 1", "all_agree": all(r["agree"] for r in rows), "rows": rows,
    })
    write_text(out / "padding_shapes.md", analysis.padding_markdown(rows, source))

    traces, counts, summaries, metrics = {}, {}, [], {}
    with atomic_path(out / "filters") as filters_dir, atomic_path(out / "loss_curves") as curves_dir:
        filters_dir.mkdir()
        curves_dir.mkdir()
        for name in names:
            t0 = time.perf_counter()
            loaded = load_checkpoint(model_paths[name])
            variant = variant_from_checkpoint(loaded, str(model_paths[name]))
            model = loaded.model.cpu().eval()

            fig = analysis.plot_first_conv(model, name)
            if fig is not None:
                save_figure(fig, filters_dir / f"{name}.png")

            x = analysis.example_input(loaded.input_shape, variant.data.format)
            traces[name] = analysis.shape_trace(model, x)
            counts[name] = analysis.param_counts(model)
            batched = x if x.dim() == 4 else x.unsqueeze(0)  # the summary shows a batch of one
            summaries.append(analysis.summary_markdown(name, variant.model.name, batched,
                                                       analysis.layer_summary(model, batched), counts[name]))

            run_dir = reports_dir / name
            metrics[name] = read_json(run_dir / "metrics.json")
            steps = read_table(run_dir / "plots" / "steps.csv")
            epochs = read_table(run_dir / "plots" / "epochs.csv")
            n_train = train_examples(metrics[name], variant)
            m = metrics[name]
            final = (int(m.get("checkpoint_epoch", variant.train.epochs)), float(m["test_loss"])) if "test_loss" in m else None
            fig = analysis.plot_loss_curve(steps, epochs, n_train, f"{name}: loss curve", variant.train.loss, final)
            save_figure(fig, curves_dir / f"{name}.png")
            log.info("%s: %d parameters, trace %s (%.1f s)", name, counts[name]["total"], traces[name]["chain"], time.perf_counter() - t0)

    write_json(out / "shape_traces.json", traces)
    write_text(out / "shape_traces.md", analysis.trace_markdown(traces))
    write_json(out / "param_counts.json", counts)
    write_text(out / "layer_summaries.md", "# Layer summaries (torchsummary-like, batch of one)\n\n" + "\n".join(summaries))

    selected = {}
    for key, cmp in comparisons.items():
        if cmp.a in metrics and cmp.b in metrics:
            selected[key] = cmp
        else:
            log.warning("comparison %s skipped: %s / %s not analysed", key, cmp.a, cmp.b)
    results = analysis.compare(selected, metrics, counts)
    write_json(out / "comparisons.json", results)
    write_text(out / "comparisons.md", analysis.comparisons_markdown(results))
    log.info("wrote %s (%d variants, %d comparisons) in %.1f s", out, len(names), len(results), time.perf_counter() - start)


def _model_override(text: str) -> tuple[str, Path]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected VARIANT=PATH, got {text!r}")
    name, path = text.split("=", 1)
    return name, Path(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Analyse every trained variant.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: %(default)s")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="default: %(default)s")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), help="default: %(default)s")
    parser.add_argument("--mnist-csv", type=Path, default=Path("data/mnist_csv"), help="default: %(default)s")
    parser.add_argument("--out", type=Path, default=Path("reports/analysis"), help="default: %(default)s")
    parser.add_argument("--variants", help="comma-separated subset (development; default: all)")
    parser.add_argument("--model", type=_model_override, action="append", default=[], metavar="VARIANT=PATH",
                        help="checkpoint of one variant elsewhere (development)")
    args = parser.parse_args(argv)
    only = [v for v in args.variants.split(",") if v] if args.variants else None
    run_stage(lambda: analyze(args.params, args.models_dir, args.reports_dir, args.out, args.mnist_csv, only, dict(args.model)))


if __name__ == "__main__":
    main()
