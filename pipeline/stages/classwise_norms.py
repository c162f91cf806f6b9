"""Stage ``classwise_norms``: class-wise average feature-map norms (CSE 849 section 2.2).

    python -m pipeline.stages.classwise_norms [--model PATH] [--data PATH] [--out DIR]

Reads ``analysis.classwise_norms`` (``variant``, ``layers``, ``cv_threshold``),
``models/<variant>.pt`` and the validation split of the data it was trained on
(no augmentation, the checkpoint's normalizer). For each conv block in ``layers``:
``torch.norm`` of every channel over height and width (``b x c``), averaged per
class (``10 x c``). Writes the folder ``reports/<variant>/classwise_norms/`` (atomically:
on an error the previous folder, if any, is left as it was):

``classwise_norms.json``            DVC metrics: per layer (``conv1``, ``conv5``) a ``summary``
                                    (mean / median / max coefficient of variation across
                                    classes, number of class-specific filters: CV > threshold,
                                    dead filters) and ``per_filter`` (``filter_00``: cv,
                                    argmax_class, mean_norm)
``classwise_norms.csv``             the matrices: layer, filter, class, class_name, mean_norm
``classwise_norms_conv<k>.png``     one small bar plot (10 classes) per filter; class-specific
                                    filters framed in red
``classwise_norms_heatmap.png``     each matrix divided by the filter's mean over classes

The first-layer kernels are drawn by ``analyze@<variant>`` (``reports/<variant>/analysis/filters.png``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from pipeline import classwise
from pipeline.cli import PARAMS, path_arg, stage_main
from pipeline.config import load_params
from pipeline.data.common.errors import DataError
from pipeline.data.readers import read_split
from pipeline.datasets import load_splits
from pipeline.io import atomic_path, write_json
from pipeline.plots import bar_grid, save_figure
from pipeline.predictor import Predictor
from pipeline.reporting import write_csv

log = logging.getLogger("pipeline.stages.classwise_norms")


def read_validation(variant, data_path: Path):
    """The validation split: the ``val`` folder of image-folder data, else the held-out ``val_fraction``."""
    data = variant.data
    if data.format == "image_folder":
        return read_split(data.format, data_path, "val")
    if data_path != Path(data.path):
        data = dataclasses.replace(data, path=str(data_path))
    val = load_splits(data, variant.seed).val
    if val is None:
        raise DataError(f"variant {variant.name}: no validation split (data.val_fraction is 0)")
    return val


def run(params_path: Path, model: Path | None, data: Path | None, out: Path | None) -> dict:
    start = time.perf_counter()
    cfg = classwise.load_classwise(load_params(params_path))
    model_path = model or Path("models") / f"{cfg.variant}.pt"
    out = out or Path("reports") / cfg.variant / "classwise_norms"
    # the params' variant's own checkpoint must hold that variant; an explicit --model is the caller's choice
    predictor = Predictor.load(model_path, variant=cfg.variant if model is None else None)
    variant = predictor.spec
    val = read_validation(variant, data or Path(variant.data.path))
    classes = predictor.loaded.classes
    matrices = classwise.classwise_feature_norms(
        predictor.model,
        val.images,
        val.labels,
        len(classes),
        cfg.layers,
        predictor.prepare,
        variant.train.eval_batch_size,
    )

    result, rows, plotted, figures = {}, [], {}, {}
    for layer in cfg.layers:
        name = f"conv{layer}"
        m = matrices[layer].numpy()
        s = classwise.cv_summary(m, cfg.cv_threshold)
        result[name] = {"summary": s["summary"], "per_filter": s["per_filter"]}
        plotted[name] = m
        for f in range(m.shape[1]):
            for c in range(m.shape[0]):
                rows.append(
                    {
                        "layer": name,
                        "filter": f,
                        "class": c,
                        "class_name": classes[c],
                        "mean_norm": round(float(m[c, f]), 6),
                    }
                )
        n_filters = m.shape[1]
        title = (
            f"{cfg.variant} {name}: class-wise mean of ||feature map||_2 per filter on the validation split "
            f"(n={len(val)}); red frame: CV across classes > {cfg.cv_threshold} "
            f"({s['summary']['class_specific_filters']}/{n_filters})\nbars: "
            + ", ".join(f"{i}={c}" for i, c in enumerate(classes))
        )
        fig = bar_grid(
            m,
            classwise.classwise_bar_titles(s, classes),
            [str(i) for i in range(len(classes))],
            cols=8 if n_filters <= 16 else 10,
            title=title,
            highlight=list(s["cv"] > cfg.cv_threshold),
        )
        figures[name] = fig
        log.info(
            "%s: %d filters, mean CV %.3f, median %.3f, class-specific %d",
            name,
            n_filters,
            s["summary"]["mean_cv"],
            s["summary"]["median_cv"],
            s["summary"]["class_specific_filters"],
        )

    with atomic_path(out) as tmp:
        tmp.mkdir()
        for name, fig in figures.items():
            save_figure(fig, tmp / f"classwise_norms_{name}.png")
        write_json(tmp / "classwise_norms.json", result)
        write_csv(tmp / "classwise_norms.csv", rows)
        save_figure(classwise.plot_classwise_heatmap(plotted, classes), tmp / "classwise_norms_heatmap.png")
    log.info("wrote %s in %.1f s", out, time.perf_counter() - start)
    return result


main = stage_main(
    __doc__,
    [
        PARAMS,
        path_arg("--model", None, "checkpoint (default: models/<analysis.classwise_norms.variant>.pt)"),
        path_arg("--data", None, "dataset folder (default: the one stored in the checkpoint)"),
        path_arg("--out", None, "output folder (default: reports/<variant>/classwise_norms)"),
    ],
    lambda args: run(args.params, args.model, args.data, args.out),
)


if __name__ == "__main__":
    main()
