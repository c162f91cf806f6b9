"""Class-wise average feature-map norms (CSE 849 section 2.2), for the ``classwise_norms`` stage.

:func:`classwise_feature_norms` runs a model over uint8 images (batched, through the
checkpoint's :class:`~pipeline.training.setup.InputPipeline`) and averages, per class, the L2
norm over height and width of every channel after the chosen conv blocks;
:func:`cv_summary` measures how class-specific each filter is; :func:`classwise_norms` is the
stage's work (params, checkpoint and validation split in, the folder of JSON, CSV and figures
out). A module of its own so that the per-variant ``analyze`` stage
(:mod:`pipeline.analysis.analyze`) does not import the training engine or the datasets.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from torch import nn

from pipeline.analysis.schemas import LayerNorms
from pipeline.core.errors import DataError, PipelineError
from pipeline.core.io import atomic_path, rounded, write_csv, write_json
from pipeline.core.params import load_all, require
from pipeline.core.schemas import check
from pipeline.data.readers import read_split
from pipeline.inference.predictor import Predictor
from pipeline.plots import bar_grid, save_figure
from pipeline.training.datasets import batches, load_splits
from pipeline.training.setup import InputPipeline

log = logging.getLogger(__name__)


@torch.no_grad()
def classwise_feature_norms(
    model: nn.Module,
    images_u8: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    layers: Sequence[int],
    prepare: InputPipeline,
    batch_size: int = 500,
) -> dict[int, torch.Tensor]:
    """Per class, the mean over its images of ``torch.norm(F, dim=(2, 3))`` (the L2 norm over height
    and width of each channel) of the feature map after conv block ``layer`` (1-based).

    ``model(x, intermediate_outputs=True)`` must return ``(logits, [feature maps])``.
    Returns ``{layer: (n_classes, channels)`` float64 tensor``}``; a class without images gets NaN.
    """
    if "intermediate_outputs" not in inspect.signature(model.forward).parameters:
        raise PipelineError(
            f"{type(model).__name__} does not return intermediate outputs (forward(x, intermediate_outputs=True))"
        )
    model.eval()
    sums: dict[int, torch.Tensor] = {}
    counts = torch.zeros(n_classes, dtype=torch.float64)
    for batch_images, batch_labels in batches(images_u8, labels, batch_size):
        _, features = model(prepare(batch_images), intermediate_outputs=True)
        for layer in layers:
            if not 1 <= layer <= len(features):
                raise PipelineError(f"conv block {layer} requested; the model has {len(features)}")
            norms = torch.norm(features[layer - 1].float(), dim=(2, 3)).double().cpu()  # (b, c)
            if layer not in sums:
                sums[layer] = torch.zeros(n_classes, norms.shape[1], dtype=torch.float64)
            sums[layer].index_add_(0, batch_labels, norms)
        counts += torch.bincount(batch_labels, minlength=n_classes).double()
    return {layer: s / counts[:, None] for layer, s in sums.items()}


def cv_summary(matrix: torch.Tensor | np.ndarray, threshold: float) -> dict:
    """Coefficient of variation across classes (population std / mean) of each filter's class-wise norm.

    A filter with CV > ``threshold`` is counted as class-specific; a filter that is zero
    for every class (dead) gets CV 0 and is counted separately.
    """
    m = np.asarray(matrix, dtype=np.float64)  # (classes, filters)
    mean = np.nanmean(m, axis=0)
    std = np.nanstd(m, axis=0)
    dead = mean <= 1e-12
    cv = np.where(dead, 0.0, std / np.where(dead, 1.0, mean))
    argmax = np.nanargmax(np.where(np.isnan(m), -np.inf, m), axis=0)
    filters = {
        f"filter_{i:02d}": {
            "cv": rounded(cv[i]),
            "argmax_class": int(argmax[i]),
            "mean_norm": rounded(mean[i]),
        }
        for i in range(m.shape[1])
    }
    summary = {
        "filters": int(m.shape[1]),
        "mean_cv": rounded(cv.mean()),
        "median_cv": rounded(np.median(cv)),
        "max_cv": rounded(cv.max()),
        "cv_threshold": rounded(threshold),
        "class_specific_filters": int((cv > threshold).sum()),
        "dead_filters": int(dead.sum()),
    }
    return {"summary": summary, "per_filter": filters, "cv": cv, "argmax": argmax}


def classwise_bar_titles(summary: Mapping[str, Any]) -> list[str]:
    """``f07 cv 0.57``: the filter and its CV; the bars' colours (one legend) name the classes."""
    return [f"f{i:02d} cv {v['cv']:.2f}" for i, v in enumerate(summary["per_filter"].values())]


def plot_classwise_bars(
    m: np.ndarray, s: Mapping[str, Any], classes: Sequence[str], what: str, images: int, threshold: float
) -> Figure:
    """One bar panel per filter of ``m`` (``(classes, filters)``), bars coloured by class and
    named once in a legend; red frame: the filter's CV across classes is above ``threshold``.
    Sized to print legibly at a page's width (7.5 in: 10.5 pt here prints at about 8 pt)."""
    title = (
        f"{what}: class-wise mean of ||feature map||_2 per filter, validation split (n={images})\n"
        f"red frame: CV across classes > {threshold} ({s['summary']['class_specific_filters']}/{m.shape[1]})"
    )
    return bar_grid(
        m,
        classwise_bar_titles(s),
        classes,
        cols=8,
        title=title,
        panel_size=(1.2, 0.75),
        highlight=list(s["cv"] > threshold),
        fontsize=10.5,
        legend=True,
    )


HEATMAP_WIDTH = 7.5  # inches: a printed page's text width, so 8 pt labels print at 8 pt
ROW_INCHES = 0.115  # one filter per row: room for an 8 pt label


def plot_classwise_heatmap(matrices: Mapping[str, np.ndarray], classes: Sequence[str]) -> Figure:
    """Each layer's class-wise mean norms divided by the filter's mean over classes (1 = uniform),
    one panel per layer side by side: a row per filter, a column per class.

    Rows are grouped by the class each filter responds to most (then by how strongly), so a
    layer of class-specific filters shows as a staircase of red blocks, one per class, and a
    layer of generic ones as a pale band; the row labels keep each filter's own index.
    """
    rows = max(np.asarray(m).shape[1] for m in matrices.values())
    fig = Figure(figsize=(HEATMAP_WIDTH, 2.0 + ROW_INCHES * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(matrices), squeeze=False).ravel())
    for ax, (name, m) in zip(axes, matrices.items()):
        m = np.asarray(m, dtype=np.float64)
        mean = m.mean(axis=0, keepdims=True)
        rel = np.divide(m, mean, out=np.ones_like(m), where=mean > 1e-12)
        order = np.lexsort((-rel.max(axis=0), rel.argmax(axis=0)))  # by strongest class, then peak height
        rel = rel[:, order].T  # (filters, classes)
        norm = TwoSlopeNorm(vcenter=1.0, vmin=min(float(np.nanmin(rel)), 0.999), vmax=max(float(np.nanmax(rel)), 1.001))
        image = ax.imshow(rel, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=8)
        ax.set_yticks(range(rel.shape[0]), [str(i) for i in order], fontsize=7 if rel.shape[0] > 40 else 8)
        ax.set_ylabel("filter (grouped by the class it responds to most)", fontsize=8)
        ax.set_title(name, fontsize=10)
        bar = fig.colorbar(image, ax=ax, fraction=0.08, pad=0.02, location="bottom")
        bar.ax.tick_params(labelsize=8)
    fig.suptitle("Class-wise mean feature-map norm / the filter's mean over classes (1 = uniform)", fontsize=10)
    return fig


# --------------------------------------------------------------------------- the stage's work


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


def classwise_norms(params_path: Path, model: Path | None, data: Path | None, out: Path | None) -> dict:
    """The ``classwise_norms`` stage: params -> checkpoint -> validation split -> ``out`` (see the stage)."""
    start = time.perf_counter()
    cfg = require(load_all(params_path).analysis.classwise_norms, "analysis.classwise_norms")
    model_path = model or Path("models") / f"{cfg.variant}.pt"
    out = out or Path("reports") / cfg.variant / "classwise_norms"
    # the params' variant's own checkpoint must hold that variant; an explicit --model is the caller's choice
    predictor = Predictor.load(model_path, variant=cfg.variant if model is None else None)
    variant = predictor.spec
    val = read_validation(variant, data or Path(variant.data.path))
    classes = predictor.loaded.classes
    matrices = classwise_feature_norms(
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
        s = cv_summary(m, cfg.cv_threshold)
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
                        "mean_norm": rounded(m[c, f]),
                    }
                )
        fig = plot_classwise_bars(m, s, classes, f"{cfg.variant} {name}", len(val), cfg.cv_threshold)
        figures[name] = fig
        log.info(
            "%s: %d filters, mean CV %.3f, median %.3f, class-specific %d",
            name,
            m.shape[1],
            s["summary"]["mean_cv"],
            s["summary"]["median_cv"],
            s["summary"]["class_specific_filters"],
        )

    with atomic_path(out) as tmp:
        tmp.mkdir()
        for name, fig in figures.items():
            save_figure(fig, tmp / f"classwise_norms_{name}.png")
        write_json(tmp / "classwise_norms.json", check(result, dict[str, LayerNorms], "classwise_norms.json"))
        write_csv(tmp / "classwise_norms.csv", rows)
        save_figure(plot_classwise_heatmap(plotted, classes), tmp / "classwise_norms_heatmap.png")
    log.info("wrote %s in %.1f s", out, time.perf_counter() - start)
    return result
