"""The evaluate stage's figures: the first test images with their predictions, the first
misclassified ones (DS 5220 Part 4.2 / 4.3), and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sklearn.metrics import confusion_matrix

from pipeline.plots import image_grid

GALLERY_SIZE = 20  # DS 5220 Part 4.2 / 4.3: the first 20 images


def first_misclassified(predicted: torch.Tensor, labels: torch.Tensor, k: int = GALLERY_SIZE) -> torch.Tensor:
    """Indices of the first ``k`` samples whose prediction differs from the label, in dataset order.

    ``predicted`` may be class indices ``(N,)`` or logits ``(N, classes)`` (argmax is taken).
    """
    if predicted.dim() == 2:
        predicted = predicted.argmax(1)
    wrong = torch.nonzero(predicted != labels, as_tuple=False).flatten()
    return wrong[:k]


def _class_name(classes: Sequence[str], index: int) -> str:
    return classes[index] if 0 <= index < len(classes) else str(index)


def plot_first_predictions(
    images_u8: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]
):
    """DS 5220 Part 4.2: the first 20 test images titled with the prediction and the true class
    (red when they differ)."""
    n = min(GALLERY_SIZE, len(images_u8))
    titles = [
        f"Pred: {_class_name(classes, int(predicted[i]))}\nLabel: {_class_name(classes, int(labels[i]))}"
        for i in range(n)
    ]
    colors = ["black" if int(predicted[i]) == int(labels[i]) else "tab:red" for i in range(n)]
    return image_grid(
        images_u8[:n],
        titles,
        cols=5,
        title=f"First {n} test images: predicted and true class (red = wrong)",
        title_colors=colors,
    )


def plot_misclassified(images_u8: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]):
    """DS 5220 Part 4.3: the first 20 misclassified test images with predicted and true class."""
    index = first_misclassified(predicted, labels)
    titles = [
        f"Pred: {_class_name(classes, int(predicted[i]))}\nLabel: {_class_name(classes, int(labels[i]))}  (#{int(i)})"
        for i in index
    ]
    return image_grid(images_u8[index], titles, cols=5, title=f"First {len(index)} misclassified test images")


def plot_confusion(labels: torch.Tensor, predicted: torch.Tensor, classes: Sequence[str], title: str):
    """Confusion matrix (rows: true class, columns: predicted) as a seaborn heatmap."""
    import seaborn as sns
    from matplotlib.figure import Figure

    matrix = confusion_matrix(labels.numpy(), predicted.numpy(), labels=list(range(len(classes))))
    fig = Figure(figsize=(9, 7.5), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(
        matrix,
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=True,
        square=True,
        ax=ax,
        xticklabels=list(classes),
        yticklabels=list(classes),
        annot_kws={"fontsize": 8},
    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return fig
