"""Practical 5's questions that print what the npz reader read and the model's forward pass, and
its softmax question, measured by a comparison."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pipeline.report.answers import common
from pipeline.report.answers.base import Built, Reader, builder, has

STATS = "data/stats.json"


def _npz(inputs: Reader) -> Any | None:
    """What the stats stage read in the npz files, or None when its shapes are missing."""
    npz = (inputs.json(STATS) or {}).get("mnist_npz")
    return npz if has(npz, "train.x_shape", "train.y_shape", "test.x_shape", "test.y_shape") else None


def _shape(dims: Sequence[int]) -> str:
    """A shape as Python prints a tuple: (784,) and (60000, 784)."""
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


@builder
def npz_shapes(inputs: Reader) -> Built | None:
    """Q1: the arrays' shapes, printed as the handout's cell prints them."""
    npz = _npz(inputs)
    if npz is None:
        return None
    printout = "\n".join(
        ["+" + 40 * "-"]
        + [
            f"| {split.capitalize()} {array.upper()}: {_shape(npz[split][f'{array}_shape'])}"
            for split in ("train", "test")
            for array in ("x", "y")
        ]
        + ["+ " + 40 * "-"]
    )
    return (
        f"Read by the Practical 5 reader (`pipeline/data/readers/mnist_npz.py`) as the handout's `read_npz` "
        f"does; its Q1 cell prints:\n\n```\n{printout}\n```\n\nEach image is a flat row of 784 pixels "
        "(reshaped to 1x28x28 in the forward pass, answer 2.2); each label one integer.",
        (STATS,),
    )


@builder
def one_hot_labels(inputs: Reader) -> Built | None:
    """Q3.1: the first training labels, and as one-hot rows."""
    npz = _npz(inputs)
    labels = npz["train"].get("first_labels") if npz is not None else None
    if not (isinstance(labels, list) and labels):
        return None
    rows = [[1 if c == y else 0 for c in range(10)] for y in labels[:6]]
    one_hot = "\n".join(f"[{', '.join(f'{v}.' for v in row)}]" for row in rows)
    return (
        f"The loss `one_hot_cross_entropy` (`pipeline/training/engine.py`) gives CrossEntropyLoss the one-hot rows "
        f"`F.one_hot(y, 10)` as probability targets, as the handout's Q3.1 does. The first {len(labels)} "
        f"training labels, and the first {len(rows)} of them one-hot:\n\n```\n"
        f"tensor({labels})\n{one_hot}\n```\n\nWith one-hot targets the loss equals the class-index "
        "cross-entropy: -sum_c t_c log p_c = -log p_y.",
        (STATS,),
    )


@builder
def forward_shapes(inputs: Reader, variant: str) -> Built | None:
    """2.2: the shapes of the variant's forward pass, each read from its shape trace."""
    rel = f"{variant}/analysis/shape_trace.json"
    trace = inputs.json(rel)
    if not has(trace, "chain", "steps"):
        return None
    steps = [s for s in trace["steps"] if has(s, "type", "shape")]
    conv = next((s for s in steps if s["type"] == "Conv2d"), None)
    flat = next((s for s in steps[steps.index(conv) + 1 :] if len(s["shape"]) == 2), None) if conv else None
    if conv and flat and len(conv["shape"]) == 4:
        _, maps, h, w = conv["shape"]
        walk = (
            f"the convolution gives {maps} maps of {h} x {w} (floor((H - k) / s) + 1 per side for a k x k kernel "
            f"with stride s, no padding), flattened to {flat['shape'][1]:,} values, then the dense layer gives "
            f"{steps[-1]['shape'][-1]} logits"
        )
    else:
        walk = "the layers transform it as below"
    return f"Each input row is reshaped to an image, {walk}. Measured on our model: `{trace['chain']}`.", (rel,)


@builder
def softmax_floor(inputs: Reader, comparison: str, names: tuple[str, str], variant: str) -> Built | None:
    """Q2: why no softmax before CrossEntropyLoss: the floor a softmax puts under the loss, for the number
    of classes ``variant``'s shape trace ends with, then comparison ``comparison`` measured."""
    measured = common.comparison(inputs, comparison, names)
    if measured is None:
        return None
    rel = f"{variant}/analysis/shape_trace.json"
    trace = inputs.json(rel)
    k = trace["steps"][-1]["shape"][-1] if has(trace, "steps") and trace["steps"] else None  # the classes
    floor = (
        f"-log(e / (e + {k - 1})) = {math.log((math.e + k - 1) / math.e):.2f} nats for {k} classes"
        if isinstance(k, int) and k > 1
        else "-log(e / (e + K - 1)) for K classes"
    )
    text, sources = measured
    return (
        "CrossEntropyLoss applies log-softmax to its input itself. With a softmax layer in front, it receives "
        "probabilities in [0, 1] as logits: the largest possible gap between two of them is 1, so the loss "
        f"cannot fall below {floor}, and its gradients shrink as the outputs saturate. Measured: " + text,
        sources + ((rel,) if isinstance(k, int) else ()),
    )
