"""Model analyses shared by the ``analyze`` and ``classwise_norms`` stages.

Everything here takes models, tensors and tables and returns numbers, rows or
figures; the stages (:mod:`pipeline.stages.analyze`, :mod:`pipeline.stages.classwise_norms`)
only read inputs and write files. Nothing branches on a variant's name: the first
convolution is found by walking the modules, the input shape comes from the checkpoint
and the data format, and the comparisons are a list in ``params.yaml``.

* :func:`first_conv`, :func:`padding_table` (TDM Q6: output shape vs
  ``floor((H - k + 2p) / s) + 1``), :func:`shape_trace` (Practical 5, Figure 6),
  :func:`layer_summary` / :func:`param_counts` (DS 5220 Q3.3, torchsummary-like),
  :func:`plot_loss_curve` (DS 5220 Part 4.1), :func:`compare` (measured comparisons);
* :func:`classwise_feature_norms` and :func:`cv_summary` (CSE 849 section 2.2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from torch import nn

from pipeline.config import ConfigError, build, section
from pipeline.datasets import batches
from pipeline.engine import InputPipeline

log = logging.getLogger(__name__)

DIGITS = 6

# Data formats whose seed feeds each image as a flat vector (Practical 5's npz rows of 784
# pixels, reshaped inside the model); every other format feeds (1, C, H, W).
FLAT_INPUT_FORMATS = ("mnist_npz",)


def _round(value: float) -> float:
    return round(float(value), DIGITS)


# --------------------------------------------------------------------------- params


@dataclass(frozen=True)
class ComparisonConfig:
    title: str  # what the comparison shows, e.g. "Max vs average pooling (TDM Q5b)"
    a: str  # variant name
    b: str  # variant name


@dataclass(frozen=True)
class PaddingConfig:
    kernel_size: int = 3
    paddings: list[int] = field(default_factory=lambda: [0, 1, 2])
    strides: list[int] = field(default_factory=lambda: [1, 2])


@dataclass(frozen=True)
class ClasswiseNormsConfig:
    variant: str
    layers: list[int] = field(default_factory=lambda: [1, 5])
    cv_threshold: float = 0.5  # a filter whose class-wise CV exceeds this is "class-specific"


def load_comparisons(params: Mapping[str, Any]) -> dict[str, ComparisonConfig]:
    raw = section(params, "analysis.comparisons")
    if not isinstance(raw, Mapping):
        raise ConfigError("analysis.comparisons: expected a mapping id -> {title, a, b}")
    variants = section(params, "variants")
    out = {}
    for key, entry in raw.items():
        where = f"analysis.comparisons.{key}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a mapping with title, a, b")
        cmp = build(ComparisonConfig, entry, where)
        for side in ("a", "b"):
            if getattr(cmp, side) not in variants:
                raise ConfigError(f"{where}.{side}: unknown variant {getattr(cmp, side)!r}; allowed: {', '.join(variants)}")
        out[str(key)] = cmp
    return out


def load_padding(params: Mapping[str, Any]) -> PaddingConfig:
    raw = params.get("analysis", {}).get("padding", {}) if isinstance(params.get("analysis"), Mapping) else {}
    cfg = build(PaddingConfig, raw or {}, "analysis.padding")
    if cfg.kernel_size <= 0 or not cfg.strides or min(cfg.strides) <= 0 or not cfg.paddings or min(cfg.paddings) < 0:
        raise ConfigError("analysis.padding: kernel_size and strides must be positive, paddings non-negative")
    return cfg


def load_classwise(params: Mapping[str, Any]) -> ClasswiseNormsConfig:
    cfg = build(ClasswiseNormsConfig, section(params, "analysis.classwise_norms"), "analysis.classwise_norms")
    if cfg.variant not in section(params, "variants"):
        raise ConfigError(f"analysis.classwise_norms.variant: unknown variant {cfg.variant!r}")
    if not cfg.layers or min(cfg.layers) < 1:
        raise ConfigError("analysis.classwise_norms.layers: 1-based conv block numbers, e.g. [1, 5]")
    if cfg.cv_threshold <= 0:
        raise ConfigError("analysis.classwise_norms.cv_threshold: must be positive")
    return cfg


# --------------------------------------------------------------------------- filters


def first_conv(model: nn.Module) -> tuple[str, nn.Module] | None:
    """``(name, module)`` of the first convolution in registration order, or None.

    A convolution is an ``nn.Conv2d`` or any module with its own 4-D ``weight``
    parameter (the HKU assignment's ``CustomConv2D``).
    """
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.Conv2d) or (isinstance(weight, torch.Tensor) and weight.dim() == 4):
            return name, module
    return None


def plot_first_conv(model: nn.Module, variant: str) -> Figure | None:
    """The kernels of the model's first convolution as an image grid (None for a model without one)."""
    from pipeline.plots import filter_grid

    conv = first_conv(model)
    if conv is None:
        return None
    name, module = conv
    w = module.weight
    title = f"{variant}: first convolution `{name}`\n{w.shape[0]} filters {w.shape[2]}x{w.shape[3]}, {w.shape[1]} input channel(s)"
    return filter_grid(w, title=title)


# --------------------------------------------------------------------------- padding (TDM Q6)


def conv_output_size(size: int, kernel: int, padding: int, stride: int) -> int:
    """``floor((size - kernel + 2 * padding) / stride) + 1``."""
    return (size - kernel + 2 * padding) // stride + 1


def padding_table(image: torch.Tensor, kernel_size: int = 3, paddings: Sequence[int] = (0, 1, 2),
                  strides: Sequence[int] = (1, 2),
                  formula: Callable[[int, int, int, int], int] = conv_output_size) -> list[dict]:
    """Measured ``Conv2d(C, 1, k, stride, padding)`` output shapes of ``image`` ``(1, C, H, W)``
    for every padding x stride, next to ``formula(size, k, p, s)`` per spatial side."""
    if image.dim() != 4:
        raise ValueError(f"expected one image as (1, C, H, W), got shape {tuple(image.shape)}")
    _, channels, height, width = image.shape
    rows = []
    with torch.no_grad():
        for padding in paddings:
            for stride in strides:
                conv = nn.Conv2d(channels, 1, kernel_size=kernel_size, stride=stride, padding=padding)
                measured = list(conv(image.float()).shape)
                expected = [formula(height, kernel_size, padding, stride), formula(width, kernel_size, padding, stride)]
                rows.append({
                    "padding": padding, "stride": stride, "kernel_size": kernel_size,
                    "input_shape": list(image.shape), "measured_shape": measured,
                    "formula_hw": expected, "agree": measured[2:] == expected,
                })
    return rows


def padding_markdown(rows: Sequence[dict], source: str) -> str:
    first = rows[0]
    k = first["kernel_size"]
    lines = [
        "# Padding and output shapes (TDM 40200 Q6)",
        "",
        f"Input: {source}, shape {first['input_shape']}. Each row: `nn.Conv2d(1, 1, kernel_size={k}, "
        "stride=s, padding=p)` applied to it; the formula is `floor((H - k + 2p) / s) + 1`.",
        "",
    ]
    plain = next((r for r in rows if r["padding"] == 0 and r["stride"] == 1), None)
    if plain is not None:
        h = first["input_shape"][2]
        lines += [f"The seed's example (padding 0, stride 1) gives {plain['measured_shape']}: {h} - {k} + 1 = "
                  f"{h - k + 1} valid positions per side, so the border is lost; padding (k - 1) / 2 keeps {h} x {h} "
                  "at stride 1.", ""]
    lines += ["| padding | stride | measured output shape | formula (H, W) | agree |", "|---:|---:|---|---|:---:|"]
    for r in rows:
        lines.append(f"| {r['padding']} | {r['stride']} | {r['measured_shape']} | {r['formula_hw']} | {'yes' if r['agree'] else 'NO'} |")
    lines.append("")
    return "\n".join(lines)


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
        calls.append(LeafCall(names[id(module)], type(module).__name__, pending.pop(id(module), None), _shape(output),
                              sum(p.numel() for p in module.parameters())))

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
    """A zero input as the variant's seed feeds it: flat ``[C*H*W]`` for flat formats, else ``[1, C, H, W]``."""
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
    steps = [{"layer": "input", "type": "input", "shape": list(x.shape)}]
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
    return [{"layer": f"{c.type}-{i}", "module": c.name, "output_shape": c.output_shape, "params": c.params}
            for i, c in enumerate(calls, start=1)]


def summary_markdown(variant: str, model_name: str, x: torch.Tensor, rows: Sequence[dict], counts: Mapping[str, int]) -> str:
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


def trace_markdown(traces: Mapping[str, dict]) -> str:
    lines = ["# Tensor shapes through each model (Practical 5, Figure 6)", ""]
    for variant, trace in traces.items():
        lines += [f"## {variant}", "", f"`{trace['chain']}`", "", "| step | layer | type | shape |", "|---:|---|---|---|"]
        lines += [f"| {i} | `{s['layer']}` | {s['type']} | {s['shape']} |" for i, s in enumerate(trace["steps"])]
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- loss curves (DS 5220 Part 4.1)


LOSS_NAMES = {"nll": "NLL", "cross_entropy": "cross-entropy", "one_hot_cross_entropy": "cross-entropy (one-hot targets)",
              "custom_cross_entropy": "cross-entropy (custom)"}


def plot_loss_curve(steps: pd.DataFrame, epochs: pd.DataFrame, n_train: int, title: str, loss_name: str = "",
                    final_test: tuple[int, float] | None = None) -> Figure:
    """Training loss against the number of training examples seen, test (and validation)
    loss per epoch as points at ``epoch * n_train``, axes from 0 (the DS 5220 figure).

    Runs that test only the kept checkpoint (``test_every_epoch: false``) have no per-epoch
    test loss; ``final_test = (epoch, loss)`` then draws that single point.
    """
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.subplots()
    if len(steps):
        ax.plot(steps["examples_seen"], steps["train_loss"], label="Train loss", color="tab:blue", linewidth=1)
    for column, label, marker, color in (("test_loss", "Test loss", "o", "tab:red"), ("val_loss", "Validation loss", "s", "tab:green")):
        if column in epochs and epochs[column].notna().any():
            rows = epochs[epochs[column].notna()]
            ax.plot(rows["epoch"] * n_train, rows[column], marker, label=label, color=color, markersize=6)
    if final_test is not None and not ("test_loss" in epochs and epochs["test_loss"].notna().any()):
        epoch, loss = final_test
        ax.plot([epoch * n_train], [loss], "o", label=f"Test loss (kept checkpoint, epoch {epoch})", color="tab:red", markersize=7)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=14)
    ax.set_xlabel("Number of training examples seen", fontsize=12)
    ax.set_ylabel(LOSS_NAMES.get(loss_name, loss_name or "loss"), fontsize=12)
    ax.legend(loc="best", fontsize=11)
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------- comparisons


def compare(comparisons: Mapping[str, ComparisonConfig], metrics: Mapping[str, Mapping[str, Any]],
            counts: Mapping[str, Mapping[str, int]]) -> dict:
    """For each comparison: both variants' measured test accuracy, loss and parameter count, and the differences."""
    out = {}
    for key, cmp in comparisons.items():
        sides = {}
        for side in ("a", "b"):
            name = getattr(cmp, side)
            m = metrics[name]
            sides[side] = {"variant": name, "test_accuracy": _round(m["test_accuracy"]), "test_loss": _round(m["test_loss"]),
                           "parameters": int(counts[name]["trainable"])}
        a, b = sides["a"], sides["b"]
        out[key] = {
            "title": cmp.title,
            "a": a,
            "b": b,
            "accuracy_diff_points": _round(100.0 * (a["test_accuracy"] - b["test_accuracy"])),
            "test_loss_diff": _round(a["test_loss"] - b["test_loss"]),
            "parameter_ratio": _round(a["parameters"] / b["parameters"]) if b["parameters"] else None,
        }
    return out


def comparisons_markdown(results: Mapping[str, dict]) -> str:
    lines = ["# Comparisons (measured)", "",
             "Test accuracy and loss from `reports/<variant>/metrics.json` (the checkpoint kept by training), "
             "parameter counts from `param_counts.json`. Differences are a - b.", ""]
    for key, r in results.items():
        a, b = r["a"], r["b"]
        better = a["variant"] if r["accuracy_diff_points"] > 0 else b["variant"] if r["accuracy_diff_points"] < 0 else "neither"
        lines += [
            f"## {r['title']}", "",
            "| | variant | test accuracy | test loss | parameters |", "|---|---|---:|---:|---:|",
            f"| a | {a['variant']} | {100 * a['test_accuracy']:.2f}% | {a['test_loss']:.4f} | {a['parameters']:,} |",
            f"| b | {b['variant']} | {100 * b['test_accuracy']:.2f}% | {b['test_loss']:.4f} | {b['parameters']:,} |",
            "",
            f"a - b: {r['accuracy_diff_points']:+.2f} accuracy points, test loss {r['test_loss_diff']:+.4f}; "
            f"parameters a/b = {r['parameter_ratio']:.2f}. Higher accuracy: {better}.", "",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- class-wise feature norms (CSE 849 2.2)


@torch.no_grad()
def classwise_feature_norms(model: nn.Module, images_u8: torch.Tensor, labels: torch.Tensor, n_classes: int,
                            layers: Sequence[int], prepare: InputPipeline, batch_size: int = 500) -> dict[int, torch.Tensor]:
    """Per class, the mean over its images of ``torch.norm(F, dim=(2, 3))`` (the L2 norm over height
    and width of each channel) of the feature map after conv block ``layer`` (1-based).

    ``model(x, intermediate_outputs=True)`` must return ``(logits, [feature maps])``.
    Returns ``{layer: (n_classes, channels)`` float64 tensor``}``; a class without images gets NaN.
    """
    model.eval()
    sums: dict[int, torch.Tensor] = {}
    counts = torch.zeros(n_classes, dtype=torch.float64)
    for batch_images, batch_labels in batches(images_u8, labels, batch_size):
        try:
            _, features = model(prepare(batch_images), intermediate_outputs=True)
        except TypeError:
            raise ValueError(f"{type(model).__name__} does not return intermediate outputs (forward(x, intermediate_outputs=True))") from None
        for layer in layers:
            if not 1 <= layer <= len(features):
                raise ValueError(f"conv block {layer} requested; the model has {len(features)}")
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
        f"filter_{i:02d}": {"cv": _round(cv[i]), "argmax_class": int(argmax[i]), "mean_norm": _round(mean[i])}
        for i in range(m.shape[1])
    }
    summary = {
        "filters": int(m.shape[1]),
        "mean_cv": _round(cv.mean()),
        "median_cv": _round(np.median(cv)),
        "max_cv": _round(cv.max()),
        "cv_threshold": _round(threshold),
        "class_specific_filters": int((cv > threshold).sum()),
        "dead_filters": int(dead.sum()),
    }
    return {"summary": summary, "per_filter": filters, "cv": cv, "argmax": argmax}


def classwise_bar_titles(summary: Mapping[str, Any], classes: Sequence[str]) -> list[str]:
    return [f"f{i:02d} cv {v['cv']:.2f} | {classes[v['argmax_class']][:5]}" for i, v in enumerate(summary["per_filter"].values())]


def plot_classwise_heatmap(matrices: Mapping[str, np.ndarray], classes: Sequence[str]) -> Figure:
    """Each layer's ``(classes, filters)`` mean norms divided by the filter's mean over classes (1 = uniform)."""
    fig = Figure(figsize=(14, 2.6 * len(matrices) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(matrices), 1, squeeze=False).ravel())
    for ax, (name, m) in zip(axes, matrices.items()):
        m = np.asarray(m, dtype=np.float64)
        mean = m.mean(axis=0, keepdims=True)
        rel = np.divide(m, mean, out=np.ones_like(m), where=mean > 1e-12)
        norm = TwoSlopeNorm(vcenter=1.0, vmin=min(float(np.nanmin(rel)), 0.999), vmax=max(float(np.nanmax(rel)), 1.001))
        image = ax.imshow(rel, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        step = 1 if m.shape[1] <= 20 else 5
        ax.set_xticks(range(0, m.shape[1], step))
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("filter", fontsize=8)
        ax.set_title(f"{name}: class-wise mean feature-map norm / filter mean over classes", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    return fig
