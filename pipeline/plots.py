"""Matplotlib helpers shared by the evaluation and analysis stages.

Every figure is a :class:`matplotlib.figure.Figure` built without pyplot's global
state (the Agg backend is selected on import, so no display is ever needed), and
:func:`save_figure` writes it atomically with the PNG metadata that would carry the
matplotlib version stripped: the same inputs give the same bytes.

The helpers take plain arrays and return figures; the caller decides the file name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.core.io import atomic_path  # noqa: E402

DPI = 100


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> None:
    """PNG at ``path``, written atomically; no ``Software``/date metadata, so the bytes are reproducible."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """``(rows, cols)`` of a near-square grid holding ``n`` panels (``cols`` fixed if given)."""
    if n <= 0:
        raise ValueError(f"a grid needs at least one panel, got {n}")
    cols = cols or math.ceil(math.sqrt(n))
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def panel_axes(fig: Figure, n: int, cols: int | None = None, **subplot_kw) -> list:
    """Exactly ``n`` axes in a grid; the unused cells of the last row are removed."""
    rows, cols = grid_shape(n, cols)
    axes = list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False, **subplot_kw)).ravel())
    for ax in axes[n:]:
        ax.remove()
    return axes[:n]


def to_display(image_u8: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 ``(C, H, W)`` -> ``(H, W)`` for grayscale or ``(H, W, 3)`` for colour, ready for ``imshow``."""
    pixels = image_u8.numpy() if isinstance(image_u8, torch.Tensor) else np.asarray(image_u8)
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[0] == 1:
        return pixels[0]
    return pixels.transpose(1, 2, 0)


def image_grid(
    images_u8: torch.Tensor,
    titles: Sequence[str],
    cols: int = 5,
    title: str | None = None,
    title_colors: Sequence[str] | None = None,
    panel_size: float = 2.4,
    fontsize: int = 11,
) -> Figure:
    """Raw uint8 images ``(n, C, H, W)`` in a grid, one caption each, axes off (DS 5220 Part 0/4 style)."""
    n = len(images_u8)
    if n == 0:
        fig = Figure(figsize=(6, 1.5), layout="constrained")
        fig.text(0.5, 0.5, "(no images)", ha="center", va="center")
        if title:
            fig.suptitle(title)
        return fig
    rows, cols = grid_shape(n, cols)
    fig = Figure(figsize=(panel_size * cols, (panel_size + 0.45) * rows + (0.4 if title else 0)), layout="constrained")
    for i, ax in enumerate(panel_axes(fig, n, cols)):
        pixels = to_display(images_u8[i])
        if pixels.ndim == 2:
            ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="none")
        else:
            ax.imshow(pixels, interpolation="none")
        color = title_colors[i] if title_colors is not None else "black"
        ax.set_title(titles[i], fontsize=fontsize, color=color)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=fontsize + 3)
    return fig


def minmax_scale(array: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the array's own min and max (a constant array becomes 0.5)."""
    array = np.asarray(array, dtype=np.float64)
    low, high = array.min(), array.max()
    if high - low < 1e-12:
        return np.full_like(array, 0.5)
    return (array - low) / (high - low)


def filter_grid(
    weight: torch.Tensor, title: str | None = None, cols: int | None = None, panel_size: float = 1.3
) -> Figure:
    """One panel per output filter of a convolution weight ``(out, in, kh, kw)``.

    Three input channels are shown in colour (RGB), each filter min-max scaled on its
    own; one input channel in grayscale with its own colour scale (as Practical 5's
    ``plot_filters``); any other count as the mean over input channels, in grayscale.
    """
    w = weight.detach().float().cpu().numpy()
    if w.ndim != 4:
        raise ValueError(f"expected a convolution weight (out, in, kh, kw), got shape {w.shape}")
    n, channels = w.shape[:2]
    rows, cols = grid_shape(n, cols)
    fig = Figure(figsize=(panel_size * cols, (panel_size + 0.25) * rows + (0.5 if title else 0)), layout="constrained")
    for i, ax in enumerate(panel_axes(fig, n, cols)):
        if channels == 3:
            ax.imshow(minmax_scale(w[i]).transpose(1, 2, 0), interpolation="nearest")
        else:
            kernel = w[i, 0] if channels == 1 else w[i].mean(axis=0)
            ax.imshow(kernel, cmap="gray", interpolation="nearest")
        ax.set_title(f"filter {i}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _bar_panel(
    ax: Axes,
    x: np.ndarray,
    heights: np.ndarray,
    colors: np.ndarray,
    panel_title: str,
    tick_labels: Sequence[str],
    fontsize: float,
) -> None:
    """One panel of :func:`bar_grid`: its bars, title and compact ticks (three on its own y-scale)."""
    ax.bar(x, heights, color=colors, width=0.8)
    ax.set_title(panel_title, fontsize=fontsize, pad=2)
    ax.set_xticks(x, tick_labels, fontsize=fontsize * 0.8)
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.tick_params(axis="y", labelsize=fontsize, length=2, pad=1)
    ax.tick_params(axis="x", length=0, pad=1)


def bar_grid(
    values: np.ndarray,
    panel_titles: Sequence[str],
    bar_labels: Sequence[str],
    cols: int = 8,
    title: str | None = None,
    panel_size: tuple[float, float] = (1.6, 1.25),
    highlight: Sequence[bool] | None = None,
    fontsize: float = 7.0,
    legend: bool = False,
) -> Figure:
    """One small bar plot per column of ``values`` (``(bars, panels)``), e.g. classes x filters.

    Each panel has its own y-scale (the shape across bars is what matters); panels
    flagged in ``highlight`` get a coloured frame. ``fontsize`` sets every label (titles a
    little larger). With ``legend`` the bars are named once, in a colour legend under the
    title, instead of under every panel: long names stay whole and the panels stay small.
    """
    values = np.asarray(values, dtype=np.float64)
    n_bars, n = values.shape
    rows, cols = grid_shape(n, cols)
    colors = matplotlib.colormaps["tab10"](np.arange(n_bars) % 10)
    line = fontsize * 1.45 / 72  # inches per line of text at ``fontsize``
    legend_cols = min(n_bars, 5)
    title_lines = (title.count("\n") + 1) if title else 0
    top_inches = 0.25 + title_lines * line * 1.25 + (math.ceil(n_bars / legend_cols) * line * 1.6 if legend else 0)
    bottom_inches = 0.1 + (0 if legend else line)
    panel_h = panel_size[1] + line * (1.6 if legend else 2.6)  # the panel, its title and its tick labels
    height = panel_h * rows + top_inches + bottom_inches
    fig = Figure(figsize=(panel_size[0] * cols, height))
    # Fixed margins instead of constrained layout: with ~100 small axes the layout solver
    # would take most of the drawing time.
    fig.subplots_adjust(
        left=3 * line / (panel_size[0] * cols),
        right=0.99,
        bottom=bottom_inches / height,
        top=1 - top_inches / height,
        wspace=0.5,
        hspace=(panel_h - panel_size[1]) / panel_size[1],
    )
    x = np.arange(n_bars)
    for i, ax in enumerate(panel_axes(fig, n, cols)):
        _bar_panel(ax, x, values[:, i], colors, panel_titles[i], [] if legend else bar_labels, fontsize)
        if highlight is not None and highlight[i]:
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:red")
                spine.set_linewidth(1.5)
    if title:
        fig.suptitle(title, fontsize=fontsize * 1.2, y=1 - 0.08 / height, va="top")
    if legend:
        handles = [Patch(color=c, label=name) for c, name in zip(colors, bar_labels)]
        anchor = 1 - (0.15 + title_lines * line * 1.25) / height
        fig.legend(
            handles=handles, loc="upper center", bbox_to_anchor=(0.5, anchor), ncol=legend_cols, fontsize=fontsize,
            frameon=False, handlelength=1.2, columnspacing=1.2,
        )  # fmt: skip
    return fig
