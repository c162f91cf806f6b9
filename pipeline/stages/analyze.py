"""Stage ``analyze@<variant>``: filters, shapes, parameter counts and loss curve of one variant.

    python -m pipeline.stages.analyze VARIANT [--models-dir models] [--reports-dir reports]
                                              [--out reports/VARIANT/analysis]

Reads ``models/<variant>.pt`` (the model and the variant config it was trained with),
``reports/<variant>/{metrics,training}.json`` and ``reports/<variant>/plots/{steps,epochs}.csv``;
nothing else (no params, no data). Writes the folder ``reports/<variant>/analysis/``
(atomically: on an error the previous folder, if any, is left as it was):

``filters.png``        the first convolution's kernels (absent for a model without one, e.g. an MLP)
``filters.json``       what each of those kernels responds to: colour, brightness blob or edge/texture
``loss_curve.png``     DS 5220 Part 4.1: training loss vs training examples seen, test loss per epoch
``shape_trace.json``   Practical 5 Fig. 6: the tensor shape after every layer for one input
``shape_trace.md``     the same as a table
``layer_summary.md``   torchsummary-like table (batch of one)
``layer_summary.json`` the same rows (``input_shape``, ``layers`` [{layer, module, output_shape, params}])
``param_counts.json``  DS 5220 Q3.3: ``total``, ``trainable``, ``non_trainable`` (DVC metrics)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from pipeline import analysis
from pipeline.checkpoint import load_checkpoint
from pipeline.cli import MODELS_DIR, REPORTS_DIR, VARIANT, path_arg, stage_main
from pipeline.io import atomic_path, read_json, require_keys, write_json, write_text
from pipeline.plots import save_figure

log = logging.getLogger("pipeline.stages.analyze")

OUTPUTS = (
    "filters.png",
    "filters.json",
    "loss_curve.png",
    "shape_trace.json",
    "shape_trace.md",
    "layer_summary.md",
    "layer_summary.json",
    "param_counts.json",
)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV written by the train stage; an empty one (no logged rows) gives an empty frame."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found (run the train stage first: `dvc repro`)") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["epoch", "examples_seen", "train_loss", "test_loss"])


def analyze(variant_name: str, models_dir: Path, reports_dir: Path, out: Path | None = None) -> Path:
    start = time.perf_counter()
    out = out or reports_dir / variant_name / "analysis"
    model_path = models_dir / f"{variant_name}.pt"
    run_dir = reports_dir / variant_name
    training_path = run_dir / "training.json"

    loaded = load_checkpoint(model_path, variant=variant_name)
    variant = loaded.spec
    metrics = read_json(run_dir / "metrics.json")
    training = read_json(training_path)
    n_train = int(require_keys(training, ("train_examples",), training_path)["train_examples"])
    steps = read_table(run_dir / "plots" / "steps.csv")
    epochs = read_table(run_dir / "plots" / "epochs.csv")
    model = loaded.model.cpu().eval()

    x = analysis.example_input(loaded.input_shape, variant.data.format)
    trace = analysis.shape_trace(model, x)
    counts = analysis.param_counts(model)
    batched = x if x.dim() == 4 else x.unsqueeze(0)  # the summary shows a batch of one
    layers = analysis.layer_summary(model, batched)
    summary = analysis.summary_markdown(variant_name, variant.model.name, batched, layers, counts)
    final = (
        (int(training.get("checkpoint_epoch", variant.train.epochs)), float(metrics["test_loss"]))
        if "test_loss" in metrics
        else None
    )

    with atomic_path(out) as tmp:
        tmp.mkdir()
        fig = analysis.plot_first_conv(model, variant_name)
        if fig is not None:
            save_figure(fig, tmp / "filters.png")
            write_json(tmp / "filters.json", analysis.first_conv_filter_stats(model))
        fig = analysis.plot_loss_curve(steps, epochs, n_train, f"{variant_name}: loss curve", variant.train.loss, final)
        save_figure(fig, tmp / "loss_curve.png")
        write_json(tmp / "shape_trace.json", trace)
        write_text(tmp / "shape_trace.md", analysis.trace_markdown(variant_name, trace))
        write_text(tmp / "layer_summary.md", summary)
        write_json(tmp / "layer_summary.json", {"input_shape": list(batched.shape), "layers": layers})
        write_json(tmp / "param_counts.json", counts)
    log.info(
        "%s: %d parameters, trace %s; wrote %s in %.1f s",
        variant_name,
        counts["total"],
        trace["chain"],
        out,
        time.perf_counter() - start,
    )
    return out


main = stage_main(
    __doc__,
    [
        VARIANT,
        MODELS_DIR,
        REPORTS_DIR,
        path_arg("--out", None, "output folder (default: <reports-dir>/VARIANT/analysis)"),
    ],
    lambda args: analyze(args.variant, args.models_dir, args.reports_dir, args.out),
)


if __name__ == "__main__":
    main()
