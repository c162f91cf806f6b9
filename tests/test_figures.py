"""Figures read at their printed size: labels of at least ~8 pt on a 7.5 in page, whole class
names, an epoch axis on the loss curves, titles without Markdown, a title on the seed-study figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from pipeline.analysis.analyze import plot_first_conv, plot_loss_curve
from pipeline.analysis.classwise_norms import cv_summary, plot_classwise_bars, plot_classwise_heatmap
from pipeline.analysis.seed_study_summary import differences_figure
from pipeline.models import create_model

PAGE_INCHES = 7.5  # an A4 or Letter page's text width in print; wider figures are scaled down to it
LEGIBLE_PT = 7.5  # what prints at "about 8 pt"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def printed_sizes(fig) -> list[tuple[float, str]]:
    """``(printed font size, text)`` of every visible, non-empty text of ``fig`` (drawn first)."""
    FigureCanvasAgg(fig).draw()  # lays out ticks, legends and titles as the saved PNG has them
    scale = min(1.0, PAGE_INCHES / fig.get_size_inches()[0])
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return [(t.get_fontsize() * scale, t.get_text()) for t in texts]


def test_classwise_bars_print_legibly_with_whole_class_names():
    rng = np.random.default_rng(0)
    m = rng.random((10, 80)) + 0.1
    fig = plot_classwise_bars(m, cv_summary(m, 0.5), CLASSES, "cse849 conv5", 5000, 0.5)
    small = [(round(size, 1), text) for size, text in printed_sizes(fig) if size < LEGIBLE_PT]
    assert not small, small[:5]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == CLASSES  # every name whole, once
    assert all(not label.get_text() for ax in fig.axes for label in ax.get_xticklabels())  # no cut names per panel
    assert len(fig.axes) == 80


def test_classwise_heatmap_prints_at_its_size_with_every_filter_and_class():
    rng = np.random.default_rng(1)
    mats = {"conv1": rng.random((10, 16)) + 0.1, "conv5": rng.random((10, 80)) + 0.1}
    fig = plot_classwise_heatmap(mats, CLASSES)
    assert fig.get_size_inches()[0] <= PAGE_INCHES  # printed unscaled
    assert min(size for size, _ in printed_sizes(fig)) >= 7  # 80 filter labels: 7 pt, the rest 8 pt and up
    conv5 = fig.axes[1]
    assert [t.get_text() for t in conv5.get_xticklabels()] == CLASSES
    assert sorted(int(t.get_text()) for t in conv5.get_yticklabels()) == list(range(80))


def test_loss_curve_has_an_epoch_axis():
    epochs = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4], "test_loss": [0.9, 0.7, 0.6]})
    steps = pd.DataFrame({"examples_seen": [500, 1000, 1500, 2000], "train_loss": [1.2, 0.9, 0.7, 0.5]})
    fig = plot_loss_curve(steps, epochs, 1000, "v: loss curve", "cross_entropy")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    (epoch_axis,) = [c for c in ax.child_axes if c.get_xlabel() == "Epoch"]
    labels = {t.get_text(): t.get_window_extent(canvas.get_renderer()) for t in epoch_axis.get_xticklabels()}
    assert {"1", "2", "3"} <= set(labels)  # whole epochs
    for epoch in (1, 2, 3):  # the label of epoch e stands above e * 1000 examples
        centre = (labels[str(epoch)].x0 + labels[str(epoch)].x1) / 2
        assert abs(centre - ax.transData.transform([(epoch * 1000, 0)])[0][0]) < 1.0


def test_figure_titles_carry_no_markdown():
    torch.manual_seed(0)
    fig = plot_first_conv(create_model("prac5_cnn"), "prac5")
    titles = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
    assert any("first convolution (conv1)" in t for t in titles) and not any("`" in t for t in titles), titles


def test_the_seed_study_figure_has_a_title():
    runs = {v: [{"test_accuracy": 0.9 + i / 100} for i in range(5)] for v in ("a", "b")}
    spreads = {v: {"mean": 0.92, "std": 0.01} for v in runs}
    comparisons = [
        {"a": "a", "b": "b", "differences_points": [0.0] * 5, "mean_points": 0.0, "ci_low_points": -0.1,
         "ci_high_points": 0.1, "distinguishable": False, "confidence": 0.95}
    ]  # fmt: skip
    fig = differences_figure(runs, spreads, comparisons)
    assert fig.get_suptitle().startswith("Seed study: each variant trained with 5 random seeds")
    assert fig.get_size_inches()[0] <= PAGE_INCHES and min(size for size, _ in printed_sizes(fig)) >= 8
