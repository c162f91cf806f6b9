"""Per-model analyses of the ``analyze`` stage (one variant per run).

Everything here but :func:`analyze` takes a model, tensors and tables and returns numbers,
rows or figures; :func:`analyze` is the stage's work (:mod:`pipeline.stages.analyze`): it
reads the checkpoint and the training records, calls them and writes the files.
Nothing branches on a variant's name: the first convolution is found by walking the
modules and the input shape comes from the checkpoint and the data format.

* :func:`first_conv` / :func:`plot_first_conv` (the first-layer kernels),
  :func:`shape_trace` (Practical 5, Figure 6), :func:`layer_summary` /
  :func:`param_counts` (DS 5220 Q3.3, torchsummary-like), :func:`plot_loss_curve`
  (DS 5220 Part 4.1).

The other analyses are this package's other stages: :mod:`~pipeline.analysis.padding` (TDM Q6),
:mod:`~pipeline.analysis.compare` (measured comparisons of two variants) and
:mod:`~pipeline.analysis.classwise_norms` (CSE 849 section 2.2, which needs the engine and the data).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from pipeline.core.io import atomic_path, read_json, require_keys, write_json, write_text
from pipeline.plots import filter_grid, save_figure
from pipeline.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

# Data formats whose handout feeds each image as a flat vector (Practical 5's npz rows of 784
# pixels, reshaped inside the model); every other format feeds (1, C, H, W).
FLAT_INPUT_FORMATS = ("mnist_npz",)


# --------------------------------------------------------------------------- filters


def first_conv(model: nn.Module) -> tuple[str, torch.Tensor] | None:
    """``(name, weight)`` of the first convolution in registration order, or None.

    A convolution is an ``nn.Conv2d`` or any module with its own 4-D ``weight``
    parameter (the HKU assignment's ``CustomConv2D``).
    """
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and (isinstance(module, nn.Conv2d) or weight.dim() == 4):
            return name, weight
    return None


def plot_first_conv(model: nn.Module, variant: str) -> Figure | None:
    """The kernels of the model's first convolution as an image grid (None for a model without one)."""
    conv = first_conv(model)
    if conv is None:
        return None
    name, w = conv
    title = f"{variant}: first convolution ({name})\n{w.shape[0]} filters {w.shape[2]}x{w.shape[3]}, {w.shape[1]} input channel(s)"
    return filter_grid(w, title=title)


COLOUR_SHARE = 0.5  # a filter with more than half its weight energy in channel differences is a colour filter
BLOB_SHARE = 0.5  # a grey-level filter with more than half its energy in its mean is a brightness blob
CHANNEL_NAMES = ("red", "green", "blue")


def first_conv_filter_stats(model: nn.Module) -> dict | None:
    """What each first-layer kernel responds to, measured on its weights (CSE 849 2.1).

    A kernel ``w`` (C, k, k) splits into a grey-level part (the mean over channels, the same
    for every channel) and a colour part (the rest): ``colour_share`` is the colour part's
    share of ``||w||^2``. A colour kernel's ``prefers`` is the channel whose summed weight is
    highest (red, green or blue for RGB input). A grey-level kernel's ``mean_share`` is the
    share of its energy in its spatial mean: high for a brightness blob, low for an edge or
    texture detector (weights of both signs that cancel). None without a convolution.
    """
    conv = first_conv(model)
    if conv is None:
        return None
    name, weight = conv
    w = weight.detach().double().cpu()
    out_channels, in_channels, kh, kw = w.shape
    filters = []
    for i in range(out_channels):
        k = w[i]
        energy = float((k**2).sum()) or 1.0
        grey = k.mean(dim=0, keepdim=True)
        colour_share = float(((k - grey) ** 2).sum()) / energy if in_channels > 1 else 0.0
        grey_energy = float((grey**2).sum()) * in_channels or 1.0
        mean_share = float(grey.mean() ** 2) * kh * kw * in_channels / grey_energy
        kind = "colour" if colour_share > COLOUR_SHARE else "blob" if mean_share > BLOB_SHARE else "edge/texture"
        entry = {"filter": i, "kind": kind, "colour_share": round(colour_share, 4), "mean_share": round(mean_share, 4)}
        if kind == "colour" and in_channels == 3:
            entry["prefers"] = CHANNEL_NAMES[int(k.sum(dim=(1, 2)).argmax())]
        filters.append(entry)
    kinds = [f["kind"] for f in filters]
    summary = {
        "layer": name,
        "shape": [out_channels, in_channels, kh, kw],
        "colour_share_threshold": COLOUR_SHARE,
        "blob_share_threshold": BLOB_SHARE,
        "counts": {kind: kinds.count(kind) for kind in ("colour", "blob", "edge/texture")},
        "filters": filters,
    }
    if in_channels == 3:
        colour = [f["prefers"] for f in filters if f["kind"] == "colour"]
        summary["colour_preferences"] = {c: colour.count(c) for c in CHANNEL_NAMES}
    return summary


# --------------------------------------------------------------------------- hooks: traces and summaries


@dataclass
class LeafCall:
    name: str  # attribute path, e.g. "convs.0"
    type: str  # class name, e.g. "Conv2d"
    input_shape: list[int] | None
    output_shape: list[int] | None
    params: int  # the module's own parameters


def _shape(value: Any) -> list[int] | None:
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return list(value[0].shape)
    return None


def leaf_calls(model: nn.Module, x: torch.Tensor) -> tuple[list[LeafCall], Any]:
    """Run ``model(x)`` with hooks on every leaf module; one record per call, in call order."""
    calls: list[LeafCall] = []
    handles = []
    pending: dict[int, list[int] | None] = {}

    def pre_hook(module, inputs):
        pending[id(module)] = _shape(inputs)

    def hook(module, inputs, output):
        calls.append(
            LeafCall(
                names[id(module)],
                type(module).__name__,
                pending.pop(id(module), None),
                _shape(output),
                sum(p.numel() for p in module.parameters()),
            )
        )

    names = {}
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            names[id(module)] = name
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return calls, output


def example_input(input_shape: Sequence[int], data_format: str) -> torch.Tensor:
    """A zero input as the variant's handout feeds it: flat ``[C*H*W]`` for flat formats, else ``[1, C, H, W]``."""
    c, h, w = input_shape
    if data_format in FLAT_INPUT_FORMATS:
        return torch.zeros(c * h * w)
    return torch.zeros(1, c, h, w)


def shape_trace(model: nn.Module, x: torch.Tensor) -> dict:
    """Tensor shape after every layer for one input (Practical 5, Figure 6).

    Steps: the input, then for every leaf-module call its output; when a module's input
    differs from the previous shape (a reshape/flatten inside ``forward``) that shape is
    a step of its own. The model's output closes the trace if it differs from the last step.
    """
    calls, output = leaf_calls(model, x)
    steps: list[dict[str, Any]] = [{"layer": "input", "type": "input", "shape": list(x.shape)}]
    for call in calls:
        if call.input_shape is not None and call.input_shape != steps[-1]["shape"]:
            steps.append({"layer": f"(reshape before {call.name})", "type": "tensor op", "shape": call.input_shape})
        steps.append({"layer": call.name, "type": call.type, "shape": call.output_shape})
    out_shape = _shape(output)
    if out_shape is not None and out_shape != steps[-1]["shape"]:
        steps.append({"layer": "output", "type": "tensor op", "shape": out_shape})
    chain = [steps[0]["shape"]]
    for step in steps[1:]:
        if step["shape"] != chain[-1]:
            chain.append(step["shape"])
    return {"input": list(x.shape), "chain": " -> ".join(str(s) for s in chain), "steps": steps}


def param_counts(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def layer_summary(model: nn.Module, x: torch.Tensor) -> list[dict]:
    """torchsummary-like rows ``{"layer": "Conv2d-1", "output_shape", "params"}`` in call order."""
    calls, _ = leaf_calls(model, x)
    return [
        {"layer": f"{c.type}-{i}", "module": c.name, "output_shape": c.output_shape, "params": c.params}
        for i, c in enumerate(calls, start=1)
    ]


def summary_markdown(
    variant: str, model_name: str, x: torch.Tensor, rows: Sequence[dict], counts: Mapping[str, int]
) -> str:
    lines = [
        f"## {variant} (`{model_name}`)",
        "",
        f"Input shape: {list(x.shape)}",
        "",
        "| Layer (type) | module | Output Shape | Param # |",
        "|---|---|---|---:|",
    ]
    lines += [f"| {r['layer']} | `{r['module']}` | {r['output_shape']} | {r['params']:,} |" for r in rows]
    lines += [
        "",
        f"Total params: {counts['total']:,}  ",
        f"Trainable params: {counts['trainable']:,}  ",
        f"Non-trainable params: {counts['non_trainable']:,}",
        "",
    ]
    return "\n".join(lines)


def trace_markdown(variant: str, trace: Mapping[str, Any]) -> str:
    """One variant's shape trace: its ``chain`` and a table of every step."""
    lines = [f"## {variant}", "", f"`{trace['chain']}`", "", "| step | layer | type | shape |", "|---:|---|---|---|"]
    lines += [f"| {i} | `{s['layer']}` | {s['type']} | {s['shape']} |" for i, s in enumerate(trace["steps"])]
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- loss curves (DS 5220 Part 4.1)


LOSS_NAMES = {
    "nll": "NLL",
    "cross_entropy": "cross-entropy",
    "one_hot_cross_entropy": "cross-entropy (one-hot targets)",
    "custom_cross_entropy": "cross-entropy (custom)",
}


def add_epoch_axis(ax: Axes, n_train: int) -> None:
    """The x axis again in epochs, on top: epoch e ends at ``e * n_train`` examples seen."""

    def to_epochs(examples: Any) -> Any:
        return examples / n_train

    def to_examples(epochs: Any) -> Any:
        return epochs * n_train

    epochs_axis = ax.secondary_xaxis("top", functions=(to_epochs, to_examples))
    epochs_axis.set_xlabel("Epoch", fontsize=12)
    epochs_axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_loss_curve(
    steps: pd.DataFrame,
    epochs: pd.DataFrame,
    n_train: int,
    title: str,
    loss_name: str = "",
    final_test: tuple[int, float] | None = None,
) -> Figure:
    """Training loss against the number of training examples seen (every logged step, faint,
    and the mean of each epoch), test (and validation) loss per epoch at ``epoch * n_train``,
    axes from 0: the DS 5220 figure, and HKU's train and validation loss per epoch.

    Runs that test only the kept checkpoint (``test_every_epoch: false``) have no per-epoch
    test loss; ``final_test = (epoch, loss)`` then draws that single point.
    """
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.subplots()
    if len(steps):
        ax.plot(
            steps["examples_seen"],
            steps["train_loss"],
            label="Train loss (logged steps)",
            color="tab:blue",
            linewidth=1,
            alpha=0.5,
        )
    for column, label, marker, color in (
        ("train_loss", "Train loss (epoch mean)", "D-", "navy"),
        ("test_loss", "Test loss", "o-", "tab:red"),
        ("val_loss", "Validation loss", "s-", "tab:green"),
    ):
        if column in epochs and epochs[column].notna().any():
            rows = epochs[epochs[column].notna()]
            ax.plot(rows["epoch"] * n_train, rows[column], marker, label=label, color=color, markersize=6)
    if final_test is not None and not ("test_loss" in epochs and epochs["test_loss"].notna().any()):
        epoch, loss = final_test
        ax.plot(
            [epoch * n_train],
            [loss],
            "o",
            label=f"Test loss (kept checkpoint, epoch {epoch})",
            color="tab:red",
            markersize=7,
        )
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=14)
    ax.set_xlabel("Number of training examples seen", fontsize=12)
    if n_train > 0:
        add_epoch_axis(ax, n_train)
    ax.set_ylabel(LOSS_NAMES.get(loss_name, loss_name or "loss"), fontsize=12)
    ax.legend(loc="best", fontsize=11)
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------- the stage's work


def read_table(path: Path) -> pd.DataFrame:
    """A CSV written by the train stage; an empty one (no logged rows) gives an empty frame."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found (run the train stage first: `dvc repro`)") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["epoch", "examples_seen", "train_loss", "test_loss"])


def analyze(variant_name: str, models_dir: Path, reports_dir: Path, out: Path | None = None) -> Path:
    """The ``analyze@<variant>`` stage: checkpoint and training records in, ``out`` out (its files:
    :mod:`pipeline.stages.analyze`)."""
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

    x = example_input(loaded.input_shape, variant.data.format)
    trace = shape_trace(model, x)
    counts = param_counts(model)
    batched = x if x.dim() == 4 else x.unsqueeze(0)  # the summary shows a batch of one
    layers = layer_summary(model, batched)
    summary = summary_markdown(variant_name, variant.model.name, batched, layers, counts)
    final = (
        (int(training.get("checkpoint_epoch", variant.train.epochs)), float(metrics["test_loss"]))
        if "test_loss" in metrics
        else None
    )

    with atomic_path(out) as tmp:
        tmp.mkdir()
        fig = plot_first_conv(model, variant_name)
        if fig is not None:
            save_figure(fig, tmp / "filters.png")
            write_json(tmp / "filters.json", first_conv_filter_stats(model))
        fig = plot_loss_curve(steps, epochs, n_train, f"{variant_name}: loss curve", variant.train.loss, final)
        save_figure(fig, tmp / "loss_curve.png")
        write_json(tmp / "shape_trace.json", trace)
        write_text(tmp / "shape_trace.md", trace_markdown(variant_name, trace))
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
