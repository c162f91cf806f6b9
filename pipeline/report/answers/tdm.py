"""TDM 40200 Project 2's questions that read the data files, the model's analysis and the padding
study (its comparison, curve and log questions use :mod:`pipeline.report.answers.common`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from pipeline.report.answers.base import Built, Reader, builder, has, layer_rows

STATS, HEAD = "data/stats.json", "data/mnist_head.txt"


@builder
def csv_layout(inputs: Reader) -> Built | None:
    """1a-1b: the training CSV's shape and pixel statistics."""
    stats, head = inputs.json(STATS), inputs.text(HEAD)
    if not (has(stats, "mnist.train.count", "mnist.train.mean", "mnist.train.std") and head):
        return None
    shape = head.splitlines()[0].strip()
    train = stats["mnist"]["train"]
    return (
        f"`mnist_train.csv` has shape {shape}: one row per image, a `label` column and one column per pixel, "
        f"named `<row>x<column>` from `1x1` to `28x28`, so a 28x28 image is stored row by row. Pixels are "
        f"grey levels 0-255 (0 = black background); their mean over the {train['count']:,} training images "
        f"is {train['mean']:.4f} and their standard deviation {train['std']:.4f} once scaled to [0, 1], "
        f"so most pixels are background.",
        (HEAD, STATS),
    )


@builder
def loading_output(inputs: Reader) -> Built | None:
    """2a: what the data-loading code yields, and where its printouts are."""
    stats, head = inputs.json(STATS), inputs.text(HEAD)
    if not (has(stats, "mnist.train.count", "mnist.test.count") and head):
        return None
    return (
        f"Run here by the stages `convert_mnist` (the CSVs) and `stats`: the CSV dataset yields "
        f"{stats['mnist']['train']['count']:,} training and {stats['mnist']['test']['count']:,} test images "
        f"(2b), each a label and a 28x28 image rebuilt from the row's 784 pixel columns; the first rows as read "
        f"are in `reports/data/mnist_head.txt`, the digit counts in `reports/data/mnist_class_distribution.png` "
        f"(2c) and the first five images in `reports/data/mnist_first5.png` (2d).",
        (STATS, HEAD),
    )


@builder
def set_sizes(inputs: Reader) -> Built | None:
    stats = inputs.json(STATS)
    if not has(stats, "mnist.train.count", "mnist.test.count"):
        return None
    mnist = stats["mnist"]
    return f"{mnist['train']['count']:,} training and {mnist['test']['count']:,} test images.", (STATS,)


@builder
def class_balance(inputs: Reader) -> Built | None:
    """2c: balanced or not, by params ``verdicts.class_balance_ratio``."""
    stats = inputs.json(STATS)
    if not has(stats, "mnist.train.class_counts"):
        return None
    counts = {d: int(n) for d, n in stats["mnist"]["train"]["class_counts"].items()}
    hi, lo = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    ratio, bar = counts[hi] / counts[lo], inputs.verdicts.class_balance_ratio
    verdict = "roughly balanced" if ratio < bar else "imbalanced"
    return (
        f"The classes are {verdict}: digit {hi} is the most frequent ({counts[hi]:,} images), digit {lo} the "
        f"least ({counts[lo]:,}), a ratio of {ratio:.2f} (balanced means under {bar:g}, params "
        f"`verdicts.class_balance_ratio`)."
        + (
            " Accuracy is therefore a fair summary here; no class weighting or resampling is needed."
            if verdict == "roughly balanced"
            else " Accuracy alone then favours the frequent digits: per-class recall says more."
        ),
        (STATS,),
    )


@builder
def first_labels(inputs: Reader) -> Built | None:
    labels = [line.split()[1] for line in (inputs.text(HEAD) or "").splitlines()[2:7] if len(line.split()) > 1]
    if len(labels) != 5 or not all(label.isdigit() for label in labels):
        return None
    return (
        f"The first five training images are labelled {', '.join(labels)} (figure "
        f"`reports/data/mnist_first5.png` in the Data section).",
        (HEAD,),
    )


@builder
def model_layers(inputs: Reader, variant: str) -> Built | None:
    """3a-3b: the variant's layers and output shapes, and its parameter count."""
    trace_rel, counts_rel = f"{variant}/analysis/shape_trace.json", f"{variant}/analysis/param_counts.json"
    trace, counts = inputs.json(trace_rel), inputs.json(counts_rel)
    steps = trace.get("steps") if isinstance(trace, Mapping) else None
    if not (isinstance(steps, list) and steps and has(trace, "chain") and has(counts, "total")):
        return None
    layers = [
        f"`{s['layer']}` ({s['type']}) -> {'x'.join(map(str, s['shape'][1:]))}"
        for s in steps
        if has(s, "layer", "type", "shape") and s["type"] != "input"
    ]
    return (
        f"{'; '.join(layers)}. Run on one image it gives the shapes {trace['chain']}, and the model has "
        f"{int(counts['total']):,} parameters.",
        (trace_rel, counts_rel),
    )


@builder
def conv_vs_dense(inputs: Reader, variant: str) -> Built | None:
    """3e: the variant's first convolution against a fully connected layer with the same outputs."""
    rel = f"{variant}/analysis/layer_summary.json"
    summary = inputs.json(rel)
    convs = [r for r in layer_rows(summary) if r["type"] == "Conv2d"]
    if not convs or not has(summary, "input_shape"):
        return None
    c = convs[0]
    n_in = math.prod(summary["input_shape"][1:])  # the pixels of one image
    n_out = math.prod(c["shape"][1:])
    dense = n_in * n_out + n_out
    return (
        f"A convolution connects each output to a small window of the input and shares its kernel across "
        f"positions; a fully connected layer connects every input to every output. In `{variant}`, `{c['module']}` "
        f"maps the {'x'.join(map(str, summary['input_shape'][2:]))} image to {'x'.join(map(str, c['shape'][1:]))} "
        f"with {c['params']:,} parameters; a fully connected layer producing the same {n_out:,} outputs from the "
        f"{n_in} pixels would need {n_in} x {n_out:,} + {n_out:,} = {dense:,}. Sharing also makes a feature "
        f"detected anywhere in the image.",
        (rel,),
    )


@builder
def padding_shapes(inputs: Reader) -> Built | None:
    """6a: the padding stage's measured shapes against the formula."""
    rel = "analysis/padding_shapes.json"
    padding = inputs.json(rel)
    if not has(padding, "rows", "formula"):
        return None
    parts = [
        f"padding {r['padding']}, stride {r['stride']}: {r['measured_shape']}"
        for r in padding["rows"]
        if has(r, "padding", "stride", "measured_shape")
    ]
    agree = "agree with" if padding.get("all_agree") else "do NOT all agree with"
    return (
        f"Input {padding.get('input_shape')}; after the convolution: {'; '.join(parts)}. The measured shapes "
        f"{agree} the formula `{padding['formula']}`: padding 0 shrinks each side by k - 1, padding "
        f"(k - 1) / 2 keeps the size at stride 1.",
        (rel,),
    )
