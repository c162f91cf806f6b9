"""Answers to the handouts' written questions, computed from the files the stages wrote.

Every sentence that states a result is built from a measured value, and its wording
follows the value: which of two variants is ahead, by how much, and whether the paired tests
(McNemar on one test set, the seed study's sign test and t-interval) tell them apart; where a
held-out loss stops falling beyond its own noise; which digits are confused. Nothing here
holds a measured number or a conclusion of its own; a comparison that flips flips the
sentence (tests/test_answers.py changes an input file and reads the new sentence). The bars
a verdict needs (significance level, noise multiple, ...) are params ``verdicts``.

Each :class:`Answer` names the files it read (paths under ``reports/``) so the report
links them. ``answers(key, inputs)`` gives one assignment's answers; ``inputs`` is any
object with ``json(rel)`` and ``text(rel)`` returning None for a missing file (the
report's :class:`pipeline.report.inputs.Inputs`).
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import stdev
from typing import Any, Protocol

from pipeline.config import VerdictConfig


class Reader(Protocol):
    def json(self, rel: str) -> Any | None: ...

    def text(self, rel: str) -> str | None: ...

    @property
    def verdicts(self) -> VerdictConfig: ...  # params.yaml ``verdicts``: the bars a sentence needs


@dataclass(frozen=True)
class Answer:
    question: str  # the handout's own id, e.g. "5b"
    asked: str  # what the handout asks, in brief
    text: str  # Markdown; None-free: a missing input gives no Answer at all
    sources: tuple[str, ...]  # files under reports/ the text was computed from


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def table(text: str | None, *columns: str) -> list[dict[str, str]] | None:
    """The CSV's rows, or None when it is missing, empty or lacks one of ``columns``."""
    rows = None if text is None else list(csv.DictReader(io.StringIO(text)))
    return rows if rows and all(c in rows[0] for c in columns) else None


def dotted(mapping: Any, path: str) -> Any:
    """``mapping["a"]["b"]`` for ``"a.b"``; KeyError naming the path when a part is missing."""
    node = mapping
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def has(obj: Any, *paths: str) -> bool:
    """Whether every ``a.b`` path exists in ``obj`` (a file older than its reader may lack one)."""
    try:
        for path in paths:
            dotted(obj, path)
    except KeyError:
        return False
    return True


# --------------------------------------------------------------------------- sentence builders


def paired_comparison(names: tuple[str, str], data: Mapping[str, Any], alpha: float) -> str:
    """Which of two single runs is more accurate, by how much, and whether the same test images tell them
    apart: the exact McNemar test of ``compare@<key>`` (``data``: its ``comparisons/<key>.json``)."""
    (a, b), m = names, data["mcnemar"]
    acc_a, acc_b = data["a"]["test_accuracy"], data["b"]["test_accuracy"]
    diff = 100 * (acc_a - acc_b)
    if diff == 0:
        lead = f"{a} and {b} reach the same test accuracy, {pct(acc_a)}"
    else:
        hi, lo, hi_acc, lo_acc = (a, b, acc_a, acc_b) if diff > 0 else (b, a, acc_b, acc_a)
        lead = f"{hi} reaches {pct(hi_acc)} test accuracy against {pct(lo_acc)} for {lo}, {abs(diff):.2f} points higher"
    test = (
        f"of the same {m['images']:,} test images {a} alone gets {m['a_only_correct']:,} right and {b} alone "
        f"{m['b_only_correct']:,} (exact McNemar test, p = {m['p_value']:.2g})"
    )
    reading = (
        "so the test set tells these two runs apart; seed-to-seed spread is not part of that test"
        if m["p_value"] < alpha
        else f"not below {alpha:g}, so the test set does not tell these two runs apart"
    )
    text = f"{lead}; {test}, {reading}."
    if not data.get("fair", True):
        text = f"Not a fair comparison: the two variants also differ in {'; '.join(data['confounds'])}. {text}"
    return text


def held_out_noise(held: Sequence[float]) -> float | None:
    """The held-out loss's own epoch-to-epoch noise: the standard deviation of its changes over the
    second half of the run (past the steep start); None with fewer than two such changes."""
    half = held[len(held) // 2 :]
    steps = [b - a for a, b in zip(half, half[1:])]  # no numpy: the report stage imports none
    return stdev(steps) if len(steps) >= 2 else None


def _held_out_reading(
    held: Sequence[float], accs: Sequence[float], epochs: Sequence[int], name: str, v: VerdictConfig
) -> str:
    """Overfitting, still improving, or level: each claimed only beyond ``noise_multiple`` x the run's own noise."""
    best = min(range(len(held)), key=held.__getitem__)
    noise = held_out_noise(held)
    if noise is None:
        return (
            f"The {name} loss is lowest at epoch {epochs[best]} ({held[best]:.4f}); {len(held)} epochs are too few "
            f"to measure its epoch-to-epoch noise, so neither overfitting nor room to improve is claimed."
        )
    bar = v.noise_multiple * noise
    noise_text = f"{v.noise_multiple:g} x its epoch-to-epoch noise ({noise:.4f}, over the second half of the run)"
    start = max(0, len(held) - 1 - v.trend_epochs)
    fall = held[start] - held[-1]
    rise = held[-1] - held[best]
    if best < len(held) - 1 and rise > bar:
        return (
            f"The {name} loss is lowest at epoch {epochs[best]} ({held[best]:.4f}) and rises to {held[-1]:.4f} by the "
            f"last epoch, more than {noise_text}, while {name} accuracy went from {pct(accs[best])} to "
            f"{pct(accs[-1])}: overfitting after epoch {epochs[best]}."
        )
    if fall > bar:
        return (
            f"The {name} loss fell {fall:.4f} over the last {len(held) - 1 - start} epochs (to {held[-1]:.4f}), more "
            f"than {noise_text}: still improving, so more epochs would likely still help."
        )
    where = "at the last epoch" if best == len(held) - 1 else f"at epoch {epochs[best]}"
    return (
        f"The {name} loss is lowest {where} ({held[best]:.4f}) and ends at {held[-1]:.4f}; its last "
        f"{len(held) - 1 - start} epochs moved it by less than {noise_text}: level, neither overfitting nor still "
        f"improving beyond its noise."
    )


def curve_behaviour(rows: Sequence[Mapping[str, str]], held_out: str, v: VerdictConfig) -> str:
    """How training and held-out (``test`` or ``val``) loss and accuracy move over the epochs; verdicts from
    the held-out curve only (:func:`_held_out_reading`)."""
    epochs = [int(r["epoch"]) for r in rows]
    train = [float(r["train_loss"]) for r in rows]
    held = [float(r[f"{held_out}_loss"]) for r in rows]
    accs = [float(r[f"{held_out}_accuracy"]) for r in rows]
    rises = [epochs[i] for i in range(1, len(train)) if train[i] > train[i - 1]]
    parts = [
        f"The training loss falls from {train[0]:.4f} (epoch {epochs[0]}) to {train[-1]:.4f} (epoch {epochs[-1]})"
        + (" and falls every epoch." if not rises else f", rising at epoch(s) {', '.join(map(str, rises))}.")
    ]
    last_fall = (train[-2] - train[-1]) / train[-2] if len(train) >= 2 and train[-2] > 0 else 0.0
    if last_fall > v.train_loss_fall:
        parts.append(
            f"It still fell {100 * last_fall:.0f}% in the last epoch (the held-out loss says whether that helps)."
        )
    name = "test" if held_out == "test" else "validation"
    parts.append(_held_out_reading(held, accs, epochs, name, v))
    train_acc, held_acc = float(rows[-1]["train_accuracy"]), accs[-1]
    gap = 100 * (train_acc - held_acc)
    if gap > 0:
        parts.append(
            f"At the last epoch training accuracy ({pct(train_acc)}, averaged over the epoch while the weights "
            f"still change) is {gap:.2f} points above {name} accuracy ({pct(held_acc)})."
        )
    else:
        parts.append(
            f"At the last epoch {name} accuracy ({pct(held_acc)}) is at or above the training accuracy "
            f"({pct(train_acc)}, averaged over the epoch while the weights still change): no gap that would "
            f"show overfitting."
        )
    return " ".join(parts)


def confusions(rows: Sequence[Mapping[str, str]], classes: Sequence[str] | None = None, top: int = 3) -> str:
    """The most frequent (true -> predicted) mistakes and the class with the lowest recall."""
    name = (lambda i: classes[int(i)]) if classes else str
    pairs = Counter((r["label"], r["predicted"]) for r in rows if r["label"] != r["predicted"])
    support = Counter(r["label"] for r in rows)
    correct = Counter(r["label"] for r in rows if r["label"] == r["predicted"])
    if not pairs:
        return f"All {len(rows):,} test images are classified correctly."
    listed = ", ".join(f"{name(t)} read as {name(p)} ({n})" for (t, p), n in pairs.most_common(top))
    worst = min(support, key=lambda c: (correct[c] / support[c], c))
    return (
        f"{sum(pairs.values()):,} of {len(rows):,} test images are misclassified. The most frequent confusions "
        f"are {listed}. The class recognised least often is {name(worst)} "
        f"({pct(correct[worst] / support[worst])} of its {support[worst]:,} images)."
    )


# --------------------------------------------------------------------------- helpers over files


def layer_rows(summary: Any) -> list[dict[str, Any]]:
    """The layers of an ``analysis/layer_summary.json`` as ``{type, module, shape, params}``; [] when absent."""
    layers = summary.get("layers") if isinstance(summary, Mapping) else None
    if not isinstance(layers, list) or not all(has(r, "layer", "module", "output_shape", "params") for r in layers):
        return []
    return [
        {"type": str(r["layer"]).rsplit("-", 1)[0], "module": r["module"], "shape": list(r["output_shape"] or []),
         "params": int(r["params"])}
        for r in layers
    ]  # fmt: skip


def _comparison_answer(
    inputs: Reader, key: str, question: str, asked: str, names: tuple[str, str], extra: Callable[[Mapping], str]
) -> Answer | None:
    """A comparison's answer: the seed study's typical figure first where there is one, then this run's."""
    rel = f"comparisons/{key}.json"
    data = inputs.json(rel)
    needed = [f"{s}.{k}" for s in "ab" for k in ("variant", "test_accuracy", "test_loss", "parameters")]
    needed += [f"mcnemar.{k}" for k in ("images", "a_only_correct", "b_only_correct", "p_value")]
    if not has(data, *needed):
        return None
    text = paired_comparison(names, data, inputs.verdicts.alpha)
    sources: tuple[str, ...] = (rel,)
    study = next((c for c in seed_study_comparisons(inputs) if c["key"] == key), None)
    if study and has(study, "n", "seeds"):
        text = (
            f"Typically (seed study): {study['verdict']} "
            f"This report's run of each (random seed {study['seeds'][0]}): {text}"
        )
        sources += (SEED_STUDY,)
    return Answer(question, asked, f"{text} {extra(data)}".strip(), sources)


SEED_STUDY = "seed_study/summary.json"


def seed_study_verdict(inputs: Reader, key: str) -> str | None:
    """The seed study's sentence on comparison ``key`` (stage ``seed_study_summary``), if it was studied."""
    for c in seed_study_comparisons(inputs):
        if c["key"] == key:
            return c["verdict"]
    return None


def seed_study_comparisons(inputs: Reader) -> list[Mapping[str, Any]]:
    """The studied comparisons in ``seed_study/summary.json`` that carry a key and a verdict, or []."""
    summary = inputs.json(SEED_STUDY)
    comparisons = summary.get("comparisons") if isinstance(summary, Mapping) else None
    return [
        c
        for c in comparisons or []
        if isinstance(c, Mapping) and isinstance(c.get("key"), str) and isinstance(c.get("verdict"), str)
    ]


def _loss_sentence(data: Mapping) -> str:
    a, b = data["a"], data["b"]
    lower = a if a["test_loss"] < b["test_loss"] else b
    return f"Test loss: {a['test_loss']:.4f} against {b['test_loss']:.4f} (lower for `{lower['variant']}`)."


def _curve_answer(inputs: Reader, variant: str, question: str, asked: str, lead: str = "") -> Answer | None:
    rel = f"{variant}/plots/epochs.csv"
    rows = table(inputs.text(rel), "epoch", "train_loss", "train_accuracy")
    if not rows:
        return None
    held = next((h for h in ("val", "test") if f"{h}_loss" in rows[0] and f"{h}_accuracy" in rows[0]), None)
    if held is None:
        return None
    return Answer(question, asked, lead + curve_behaviour(rows, held, inputs.verdicts), (rel,))


def _confusion_answer(inputs: Reader, variant: str, question: str, asked: str) -> Answer | None:
    rel = f"{variant}/eval/predictions.csv"
    rows = table(inputs.text(rel), "label", "predicted")
    return None if not rows else Answer(question, asked, confusions(rows), (rel,))


def _first_predictions_answer(inputs: Reader, variant: str, question: str, asked: str, k: int = 20) -> Answer | None:
    rel = f"{variant}/eval/predictions.csv"
    rows = table(inputs.text(rel), "label", "predicted")
    if not rows or len(rows) < k:
        return None
    wrong = [r for r in rows[:k] if r["label"] != r["predicted"]]
    detail = (
        "all correct"
        if not wrong
        else f"{len(wrong)} wrong ("
        + ", ".join(f"image {r.get('index', '?')}: {r['label']} read as {r['predicted']}" for r in wrong)
        + ")"
    )
    return Answer(
        question, asked, f"Of the first {k} test images, {k - len(wrong)} are classified correctly: {detail}.", (rel,)
    )


def _parameter_answer(inputs: Reader) -> Answer | None:
    rels = ("ds5220_mlp/analysis/layer_summary.json", "ds5220_cnn/analysis/layer_summary.json")
    mlp, cnn = (layer_rows(inputs.json(rel)) for rel in rels)
    if not (mlp and cnn):
        return None
    totals = [sum(r["params"] for r in rows) for rows in (mlp, cnn)]
    fewer = "fewer" if totals[1] < totals[0] else "more"

    def largest(name: str, rows: list[dict], total: int) -> str:
        top = max(rows, key=lambda r: r["params"])
        return f"the {name} the largest layer, `{top['module']}` ({top['type']}), holds {top['params']:,} of them ({top['params'] / total:.0%})"

    convs = sum(r["params"] for r in cnn if r["type"] == "Conv2d")
    return Answer(
        "Q3.3",
        "Parameters of the MLP and the CNN",
        f"The MLP has {totals[0]:,} parameters, the CNN {totals[1]:,}: {fewer} for the CNN "
        f"({totals[0] / totals[1]:.2f}x). In {largest('MLP', mlp, totals[0])}; in {largest('CNN', cnn, totals[1])}, "
        f"while its convolutions, which share small kernels across the image, hold {convs:,}.",
        rels,
    )


def _accuracy_answer(inputs: Reader, variant: str, question: str, asked: str, split: str = "test") -> Answer | None:
    rel = f"{variant}/metrics.json"
    metrics = inputs.json(rel)
    if not has(metrics, f"{split}_accuracy"):
        return None
    name = "test" if split == "test" else "validation"
    return Answer(question, asked, f"`{variant}`: {pct(metrics[f'{split}_accuracy'])} {name} accuracy.", (rel,))


def _final_epoch_answer(inputs: Reader, variant: str, question: str, asked: str) -> Answer | None:
    """The kept epoch's training and test accuracy and loss, printed as DS 5220 Part 3 prints them; the
    train-test gap read against the test accuracy's standard error (params ``verdicts.noise_multiple``)."""
    rel, facts_rel, eval_rel = f"{variant}/plots/epochs.csv", f"{variant}/training.json", f"{variant}/eval/metrics.json"
    rows = table(inputs.text(rel), "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
    facts, evaluation = inputs.json(facts_rel), inputs.json(eval_rel)
    if not rows or not has(facts, "checkpoint_epoch") or not has(evaluation, "test_examples"):
        return None
    row = next((r for r in rows if int(r["epoch"]) == facts["checkpoint_epoch"]), None)
    if row is None:
        return None
    printed = "\n".join(
        f"{split.capitalize()} {what}: {row[f'{split}_{what}']}"
        for what in ("accuracy", "loss")
        for split in ("train", "test")
    )
    test_acc = float(row["test_accuracy"])
    gap = 100 * (float(row["train_accuracy"]) - test_acc)
    bar = inputs.verdicts.noise_multiple * 100 * math.sqrt(test_acc * (1 - test_acc) / evaluation["test_examples"])
    reading = f"training accuracy is {abs(gap):.2f} points {'above' if gap > 0 else 'below'} the test accuracy, " + (
        f"within {inputs.verdicts.noise_multiple:g} standard errors of the test accuracy ({bar:.2f} points): no sign "
        f"of overfitting at this length"
        if gap <= bar
        else f"more than {inputs.verdicts.noise_multiple:g} standard errors of the test accuracy ({bar:.2f} points): "
        f"the model fits its training images better than unseen ones"
    )
    return Answer(
        question,
        asked,
        f"After epoch {row['epoch']} (the kept checkpoint), in the handout's format:\n\n```\n{printed}\n```\n\n"
        f"The training accuracy counts that epoch's batches as the handout does; the training loss is their mean, "
        f"where the handout prints its last logged batch loss. The {reading}.",
        (rel, facts_rel, eval_rel),
    )


def _log_answer(
    inputs: Reader, variant: str, question: str, asked: str, line: Callable[[Mapping[str, str], int], str]
) -> Answer | None:
    """The per-epoch log of ``epochs.csv`` printed the handout's way."""
    rel = f"{variant}/plots/epochs.csv"
    rows = table(inputs.text(rel), "epoch", "train_loss", "train_accuracy")
    if not rows:
        return None
    body = "\n".join(line(r, len(rows)) for r in rows)
    return Answer(question, asked, f"In the handout's format, from our run:\n\n```\n{body}\n```", (rel,))


# --------------------------------------------------------------------------- per assignment


def tdm(inputs: Reader) -> list[Answer | None]:
    found: list[Answer | None] = []
    stats = inputs.json("data/stats.json")
    head = inputs.text("data/mnist_head.txt")
    if has(stats, "mnist.train.count", "mnist.train.mean", "mnist.train.std") and head:
        shape = head.splitlines()[0].strip()
        train = stats["mnist"]["train"]
        found.append(
            Answer(
                "1a-1b",
                "What the training CSV looks like; how images and pixels are represented",
                f"`mnist_train.csv` has shape {shape}: one row per image, a `label` column and one column per pixel, "
                f"named `<row>x<column>` from `1x1` to `28x28`, so a 28x28 image is stored row by row. Pixels are "
                f"grey levels 0-255 (0 = black background); their mean over the {train['count']:,} training images "
                f"is {train['mean']:.4f} and their standard deviation {train['std']:.4f} once scaled to [0, 1], "
                f"so most pixels are background.",
                ("data/mnist_head.txt", "data/stats.json"),
            )
        )
    if has(stats, "mnist.train.count", "mnist.test.count") and head:
        found.append(
            Answer(
                "2a",
                "Output of the data-loading code",
                f"Run here by the stages `convert_mnist` (the CSVs) and `stats`: the CSV dataset yields "
                f"{stats['mnist']['train']['count']:,} training and {stats['mnist']['test']['count']:,} test images "
                f"(2b), each a label and a 28x28 image rebuilt from the row's 784 pixel columns; the first rows as read "
                f"are in `reports/data/mnist_head.txt`, the digit counts in `reports/data/mnist_class_distribution.png` "
                f"(2c) and the first five images in `reports/data/mnist_first5.png` (2d).",
                ("data/stats.json", "data/mnist_head.txt"),
            )
        )
    if has(stats, "mnist.train.count", "mnist.test.count"):
        found.append(
            Answer(
                "2b",
                "Sizes of the training and test sets",
                f"{stats['mnist']['train']['count']:,} training and {stats['mnist']['test']['count']:,} test images.",
                ("data/stats.json",),
            )
        )
    if has(stats, "mnist.train.class_counts"):
        counts = {d: int(n) for d, n in stats["mnist"]["train"]["class_counts"].items()}
        hi, lo = max(counts, key=counts.get), min(counts, key=counts.get)
        ratio = counts[hi] / counts[lo]
        verdict = "roughly balanced" if ratio < inputs.verdicts.class_balance_ratio else "imbalanced"
        found.append(
            Answer(
                "2c",
                "What the bar plot of digit counts shows",
                f"The classes are {verdict}: digit {hi} is the most frequent ({counts[hi]:,} images), digit {lo} the "
                f"least ({counts[lo]:,}), a ratio of {ratio:.2f} (balanced means under "
                f"{inputs.verdicts.class_balance_ratio:g}, params `verdicts.class_balance_ratio`)."
                + (
                    " Accuracy is therefore a fair summary here; no class weighting or resampling is needed."
                    if verdict == "roughly balanced"
                    else " Accuracy alone then favours the frequent digits: per-class recall says more."
                ),
                ("data/stats.json",),
            )
        )
    labels = [line.split()[1] for line in (head or "").splitlines()[2:7] if len(line.split()) > 1]
    if len(labels) == 5 and all(label.isdigit() for label in labels):
        found.append(
            Answer(
                "2d",
                "Five sample images with their labels",
                f"The first five training images are labelled {', '.join(labels)} (figure "
                f"`reports/data/mnist_first5.png` in the Data section).",
                ("data/mnist_head.txt",),
            )
        )
    found.append(
        Answer(
            "2e",
            "The data-loading code, documented",
            "Each module of this pipeline opens with what it does and why, and its functions say the same. The handout's "
            "`MNISTDataset` corresponds to `pipeline/data/readers/mnist_csv.py` (the header `label,1x1,...,28x28` "
            "checked, every cell an integer, the 784 pixel columns one image row after another, reshaped to 28x28; "
            "an error names the file, row and column), its `DataLoader` to "
            "`pipeline/datasets.py` (shuffled batches of the in-memory tensors) and `ToTensor` + "
            "`Normalize((0.5,), (0.5,))` to `pipeline/normalizer.py` (applied to whole batches).",
            (),
        )
    )
    trace = inputs.json("tdm_max/analysis/shape_trace.json")
    counts = inputs.json("tdm_max/analysis/param_counts.json")
    steps = trace.get("steps") if isinstance(trace, Mapping) else None
    if isinstance(steps, list) and steps and has(trace, "chain") and has(counts, "total"):
        layers = [
            f"`{s['layer']}` ({s['type']}) -> {'x'.join(map(str, s['shape'][1:]))}"
            for s in steps
            if has(s, "layer", "type", "shape") and s["type"] != "input"
        ]
        found.append(
            Answer(
                "3a-3b",
                "The model's definition and the output of running it",
                f"`pipeline/models/tdm_cnn/` defines the network (documented there): "
                f"{'; '.join(layers)}. Run on one image it gives the shapes {trace['chain']}, and the model has "
                f"{int(counts['total']):,} parameters.",
                ("tdm_max/analysis/shape_trace.json", "tdm_max/analysis/param_counts.json"),
            )
        )
    found.append(
        Answer(
            "3c",
            "Convolution vs cross-correlation; why a CNN works with either",
            "A convolution flips the kernel before sliding it over the image, (I * K)(i, j) = sum_m sum_n "
            "I(i - m, j - n) K(m, n); cross-correlation slides it unflipped, sum_m sum_n I(i + m, j + n) K(m, n), "
            "which is what `nn.Conv2d` computes. Since the kernel's weights are learned, a network trained with one "
            "learns the flipped kernel of the other: both define the same family of functions.",
            (),
        )
    )
    pooling = _comparison_answer(
        inputs,
        "pooling",
        "5b",
        "Average pooling instead of max pooling: its accuracy, compared",
        ("max pooling (`tdm_max`)", "average pooling (`tdm_avg`)"),
        _loss_sentence,
    )
    found.append(
        Answer(
            "3d",
            "Max pooling vs average pooling; is one better?",
            "Max pooling keeps the strongest response in each window (a feature counts if present anywhere in it); "
            "average pooling keeps the mean, which is smoother and lets weak responses through. Neither is better in "
            "general; on this task see 5b: " + pooling.text,
            pooling.sources,
        )
        if pooling
        else None
    )
    layer_summary = inputs.json("tdm_max/analysis/layer_summary.json")
    layers = layer_rows(layer_summary)
    convs = [r for r in layers if r["type"] == "Conv2d"]
    if convs and has(layer_summary, "input_shape"):
        c = convs[0]
        n_in = math.prod(layer_summary["input_shape"][1:])  # the pixels of one image
        n_out = math.prod(c["shape"][1:])
        dense = n_in * n_out + n_out
        found.append(
            Answer(
                "3e",
                "A convolutional layer vs a fully connected layer",
                f"A convolution connects each output to a small window of the input and shares its kernel across "
                f"positions; a fully connected layer connects every input to every output. In `tdm_max`, `conv1` maps "
                f"the {'x'.join(map(str, layer_summary['input_shape'][2:]))} image to {'x'.join(map(str, c['shape'][1:]))} with {c['params']:,} parameters; a fully "
                f"connected layer producing the same {n_out:,} outputs from the {n_in} pixels would need "
                f"{n_in} x {n_out:,} + {n_out:,} = {dense:,}. Sharing also makes a feature detected anywhere in the "
                f"image.",
                ("tdm_max/analysis/layer_summary.json",),
            )
        )
    found.append(
        _log_answer(
            inputs,
            "tdm_max",
            "4a",
            "The training loop's per-epoch output",
            lambda r, n: f"Epoch [{r['epoch']}/{n}], Loss: {float(r['train_loss']):.4f}",
        )
    )
    found.append(
        _curve_answer(
            inputs,
            "tdm_max",
            "4b",
            "Why several epochs; what too many or too few do",
            "One epoch shows each image once; several let the weights keep improving, too few leave the model "
            "underfitted (training loss still falling), too many overfit (held-out loss rising while the training "
            "loss falls). In our run: ",
        )
    )
    found.append(
        Answer(
            "4c",
            "Forward pass vs backward pass",
            "The forward pass computes the outputs and the loss from the inputs, layer by layer, recording the "
            "operations; the backward pass goes through them in reverse and applies the chain rule to get the "
            "gradient of the loss with respect to every weight.",
            (),
        )
    )
    found.append(
        Answer(
            "4d",
            "What `loss.backward()` and `optimizer.step()` do",
            "`loss.backward()` runs the backward pass and adds each parameter's gradient to its `.grad` (hence "
            "`optimizer.zero_grad()` first); `optimizer.step()` then updates every parameter from its gradient, for "
            "Adam with per-parameter step sizes from running averages of the gradient and its square.",
            (),
        )
    )
    found.append(_accuracy_answer(inputs, "tdm_max", "5a", "Test accuracy of the max-pooling network"))
    found.append(pooling)
    padding = inputs.json("analysis/padding_shapes.json")
    if has(padding, "rows", "formula"):
        parts = [
            f"padding {r['padding']}, stride {r['stride']}: {r['measured_shape']}"
            for r in padding["rows"]
            if has(r, "padding", "stride", "measured_shape")
        ]
        agree = "agree with" if padding.get("all_agree") else "do NOT all agree with"
        found.append(
            Answer(
                "6a",
                "Image shape before and after a 3x3 convolution, with and without padding",
                f"Input {padding.get('input_shape')}; after the convolution: {'; '.join(parts)}. The measured shapes "
                f"{agree} the formula `{padding['formula']}`: padding 0 shrinks each side by k - 1, padding "
                f"(k - 1) / 2 keeps the size at stride 1.",
                ("analysis/padding_shapes.json",),
            )
        )
    return found


def hku(inputs: Reader) -> list[Answer | None]:
    def typical(r: Mapping[str, str], n: int) -> str:
        line = (
            f"Epoch {r['epoch']}: Train Loss: {float(r['train_loss']):.4f}, "
            f"Train Accuracy: {100 * float(r['train_accuracy']):.2f}%"
        )
        if "val_loss" in r:
            line += (
                f" | Validation Loss: {float(r['val_loss']):.4f}, "
                f"Validation Accuracy: {100 * float(r['val_accuracy']):.2f}%"
            )
        return line

    run = _log_answer(inputs, "hku_simplecnn", "Typical Run", "The training log of `train.py`", typical)
    metrics = inputs.json("hku_simplecnn/metrics.json")
    if run and has(metrics, "test_accuracy"):
        body = run.text.rsplit("\n```", 1)[0]
        run = Answer(
            run.question,
            run.asked,
            f"{body}\n\nTest Accuracy: {100 * metrics['test_accuracy']:.2f}%\n```",
            (*run.sources, "hku_simplecnn/metrics.json"),
        )
    return [
        run,
        Answer(
            "Q5.1",
            "Why a non-linearity after a fully connected layer; what happens without it",
            "Two linear layers without an activation between them compose to one linear map, W2 (W1 x + b1) + b2 = "
            "(W2 W1) x + (W2 b1 + b2): depth adds nothing and the network can only draw linear decision boundaries. "
            "ReLU between them makes the composition piecewise linear, so stacked layers can approximate non-linear "
            "functions.",
            (),
        ),
        Answer(
            "Q5.2",
            "The purpose of max pooling; how it differs from average pooling",
            "Pooling shrinks the feature maps (less computation, larger receptive fields further on) and makes "
            "small shifts of a feature matter less. Max pooling passes the strongest response of each window, "
            "average pooling the mean; max pooling keeps a sharp feature that appears anywhere in the window, "
            "average pooling dilutes it with its neighbours. Measured on MNIST: TDM 40200's 5b in this report.",
            (),
        ),
        Answer(
            "Q5.3",
            "Why cross-entropy rather than mean squared error for classification",
            "With softmax outputs p, cross-entropy -log p_y has the gradient p - onehot(y) with respect to the "
            "logits: large while the prediction is wrong, so learning does not stall. MSE on softmax outputs "
            "multiplies that error by the softmax's derivative, which vanishes when the output saturates on a wrong "
            "class; and cross-entropy is the negative log-likelihood of the labels, the loss of maximum likelihood "
            "for a categorical model.",
            (),
        ),
        Answer(
            "Q5.4",
            "Why `log(softmax(logits))` is numerically unstable, and the fix",
            "softmax computes exp(z_i) / sum_j exp(z_j): a large logit overflows exp to inf (inf / inf = nan), and a "
            "very negative one underflows a probability to 0, whose log is -inf. The fix is log-sum-exp: "
            "log softmax(z)_i = z_i - m - log sum_j exp(z_j - m) with m = max_j z_j, so every exponent is <= 0; "
            "this is what `F.log_softmax` and `F.cross_entropy` compute, and this project's `CustomCrossEntropyLoss`.",
            (),
        ),
        _curve_answer(
            inputs,
            "hku_simplecnn",
            "Q5.5",
            "Training loss falls while validation loss rises: cause and fix",
            "That is overfitting: the network fits the training set's particulars instead of the pattern. Remedies: "
            "stop at the epoch of lowest validation loss (early stopping, or keep that checkpoint), more data or "
            "augmentation, dropout or weight decay, a smaller model. Our run: ",
        ),
    ]


def _npz_answers(inputs: Reader) -> tuple[Answer | None, Answer | None]:
    """Practical 5 Q1 (the arrays' shapes) and Q3.1 (labels reformatted as one-hot rows), printed
    the handout's way from what the stats stage read in the npz files."""
    rel = "data/stats.json"
    npz = (inputs.json(rel) or {}).get("mnist_npz")
    if not has(npz, "train.x_shape", "train.y_shape", "test.x_shape", "test.y_shape"):
        return None, None
    shape = lambda dims: "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"  # noqa: E731
    printout = "\n".join(
        ["+" + 40 * "-"]
        + [
            f"| {split.capitalize()} {array.upper()}: {shape(npz[split][f'{array}_shape'])}"
            for split in ("train", "test")
            for array in ("x", "y")
        ]
        + ["+ " + 40 * "-"]
    )
    shapes = Answer(
        "Q1",
        "Read the npz datasets and print the arrays' shapes",
        f"Read by the Practical 5 reader (`pipeline/data/readers/mnist_npz.py`) as the handout's `read_npz` "
        f"does; its Q1 cell prints:\n\n```\n{printout}\n```\n\nEach image is a flat row of 784 pixels "
        "(reshaped to 1x28x28 in the forward pass, answer 2.2); each label one integer.",
        (rel,),
    )
    labels = npz["train"].get("first_labels")
    if not (isinstance(labels, list) and labels):
        return shapes, None
    rows = [[1 if c == y else 0 for c in range(10)] for y in labels[:6]]
    one_hot = "\n".join(f"[{', '.join(f'{v}.' for v in row)}]" for row in rows)
    return shapes, Answer(
        "Q3.1",
        "The labels before and after reformatting as one-hot targets",
        f"The loss `one_hot_cross_entropy` (`pipeline/engine.py`) gives CrossEntropyLoss the one-hot rows "
        f"`F.one_hot(y, 10)` as probability targets, as the handout's Q3.1 does. The first {len(labels)} "
        f"training labels, and the first {len(rows)} of them one-hot:\n\n```\n"
        f"tensor({labels})\n{one_hot}\n```\n\nWith one-hot targets the loss equals the class-index "
        "cross-entropy: -sum_c t_c log p_c = -log p_y.",
        (rel,),
    )


def _prac5_shapes_answer(trace: Mapping[str, Any]) -> Answer:
    """Practical 5 2.2: the shapes of our model's forward pass, each read from its shape trace."""
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
    return Answer(
        "2.2",
        "The forward pass, shape by shape",
        f"Each input row is reshaped to an image, {walk}. Measured on our model: `{trace['chain']}`.",
        ("prac5/analysis/shape_trace.json",),
    )


def prac5(inputs: Reader) -> list[Answer | None]:
    shapes, one_hot = _npz_answers(inputs)
    found: list[Answer | None] = [shapes]
    trace = inputs.json("prac5/analysis/shape_trace.json")
    if has(trace, "chain", "steps"):
        found.append(_prac5_shapes_answer(trace))

    def handout_line(r: Mapping[str, str], n: int) -> str:
        line = f"Epoch {r['epoch']} Loss: {float(r['train_loss']):.4f} Accuracy: {100 * float(r['train_accuracy']):.2f}"
        if "test_loss" in r:
            line += f" Test Loss: {float(r['test_loss']):.4f} Test Accuracy: {100 * float(r['test_accuracy']):.2f}"
        return line

    softmax = _comparison_answer(
        inputs,
        "softmax",
        "Q2 (softmax)",
        "Why the model has no softmax layer before CrossEntropyLoss",
        ("without a softmax layer (`prac5`)", "with one (`prac5_softmax`)"),
        _loss_sentence,
    )
    if softmax:
        k = trace["steps"][-1]["shape"][-1] if has(trace, "steps") and trace["steps"] else None  # the classes
        floor = (
            f"-log(e / (e + {k - 1})) = {math.log((math.e + k - 1) / math.e):.2f} nats for {k} classes"
            if isinstance(k, int) and k > 1
            else "-log(e / (e + K - 1)) for K classes"
        )
        found.append(
            Answer(
                softmax.question,
                softmax.asked,
                "CrossEntropyLoss applies log-softmax to its input itself. With a softmax layer in front, it receives "
                "probabilities in [0, 1] as logits: the largest possible gap between two of them is 1, so the loss "
                f"cannot fall below {floor}, and its gradients shrink as the outputs saturate. Measured: "
                + softmax.text,
                softmax.sources + (("prac5/analysis/shape_trace.json",) if isinstance(k, int) else ()),
            )
        )
    found.append(
        Answer(
            "Q2.3",
            "The model, its loss function and its optimizer",
            "The loss measures how far the predicted class probabilities are from the true class: cross-entropy "
            "-log p_y, averaged over the batch, computed from the logits by a log-softmax inside the loss (so the "
            "network ends with its dense layer, see the softmax answer). The handout's optimizer, SGD, moves every "
            "weight against its gradient, w <- w - lr * dL/dw, once per batch; the learning rate is in "
            "`params.yaml` (`variants.prac5.train.optimizer`).",
            (),
        )
    )
    found.append(one_hot)
    found.append(
        Answer(
            "Q3.2",
            "Updating the parameters: `optimizer.step()` and `optimizer.zero_grad()`",
            "`loss.backward()` adds each parameter's gradient to its `.grad`; `optimizer.step()` applies the update "
            "above from those gradients; `optimizer.zero_grad()` clears them before the next batch, since without "
            "it gradients of earlier batches would accumulate into every later step (`pipeline/engine.py`, "
            "`train_one_epoch`).",
            (),
        )
    )
    found.append(_log_answer(inputs, "prac5", "Q3 (log)", "The per-epoch training log", handout_line))
    found.append(_curve_answer(inputs, "prac5", "Q3", "Train the network: how do loss and accuracy develop?"))
    return found


def _first_batch_answer(inputs: Reader, variants: Sequence[str]) -> Answer | None:
    """DS 5220 Part 0: the first training batch printed the handout's way, per variant."""
    printed, said, rels = [], [], []
    for variant in variants:
        rel = f"{variant}/training.json"
        batch = (inputs.json(rel) or {}).get("first_batch")
        if not has(batch, "images_shape", "labels_shape", "mean", "std"):
            continue
        rels.append(rel)
        printed.append(
            f"# {variant}\nImages shape:  torch.Size({batch['images_shape']})\n"
            f"Labels shape:  torch.Size({batch['labels_shape']})\nMean={batch['mean']}, Std={batch['std']}"
        )
        tol = inputs.verdicts.standardized_tolerance
        standard = abs(batch["mean"]) < tol and abs(batch["std"] - 1) < tol
        said.append(
            f"`{variant}`'s batch has mean {batch['mean']:.4f} and std {batch['std']:.4f}, "
            + ("close to 0 and 1: the pixels were standardized" if standard else "not standardized")
        )
    if not printed:
        return None
    return Answer(
        "Part 0",
        "Shapes, mean and std of the first training batch",
        "Recorded by the training stage from the first batch the model was given (after normalization), printed "
        "as the handout's cell prints it:\n\n```\n" + "\n\n".join(printed) + "\n```\n\n" + "; ".join(said) + ".",
        tuple(rels),
    )


def ds5220(inputs: Reader) -> list[Answer | None]:
    def params(data: Mapping) -> str:
        a, b = data["a"], data["b"]
        ratio = a["parameters"] / b["parameters"]
        fewer = f"{ratio:.1f}x fewer" if ratio > 1 else f"{1 / ratio:.1f}x more" if ratio < 1 else "as many"
        return f"The CNN has {b['parameters']:,} trainable parameters against {a['parameters']:,}: {fewer}."

    found: list[Answer | None] = [
        _first_batch_answer(inputs, ("ds5220_cnn", "ds5220_cnn_raw")),
        Answer(
            "Q1.1",
            "Invariance, and how convolution provides it",
            "A convolution is translation-equivariant: shifting the input shifts the feature map the same way, "
            "because one kernel is applied at every position. Pooling then makes the output nearly invariant to "
            "small shifts. Rotation and scale are not built in; they are learned from data or augmentation.",
            (),
        ),
        Answer(
            "Q1.2",
            "What batch normalization does and why it helps",
            "For each channel it normalizes the activations with the mean and variance of the mini-batch (running "
            "averages at test time), then applies a learned scale and shift. Activations keep a stable scale as "
            "the weights before them change, so higher learning rates train stably and deep networks train faster; "
            "the batch noise also regularizes a little.",
            (),
        ),
        Answer(
            "Q1.3",
            "Training and test data from different distributions",
            "Covariate shift: the model is fitted to inputs unlike those it meets, so its test error is not "
            "estimated by its validation error. Remedies: collect or weight training data to match the test "
            "distribution (importance weighting), augment towards it, normalize with statistics that transfer, and "
            "validate on data drawn like the test set. The CSE 849 composites here show the extreme case: a digit "
            "that predicts the label in training and not at test time.",
            (),
        ),
        Answer(
            "Q1.4",
            "Why ReLU is a good hidden-layer activation",
            "max(0, x) is cheap, and its gradient is 1 for every positive input, so it does not shrink gradients "
            "layer after layer as sigmoid and tanh do when they saturate; it gives sparse activations. Its drawback, "
            "units stuck at 0 (dead ReLUs), is rare with sensible learning rates.",
            (),
        ),
    ]
    trace = inputs.json("ds5220_mlp/analysis/shape_trace.json")
    counts = inputs.json("ds5220_mlp/analysis/param_counts.json")
    if has(trace, "steps") and has(counts, "total"):
        # the input size, then each linear layer's output size
        sizes = [math.prod(trace["steps"][0]["shape"][1:])] + [
            s["shape"][-1] for s in trace["steps"] if s.get("type") == "Linear"
        ]
        if len(sizes) == 3:
            d, h, k = sizes
            formula = d * h + h + h * k + k
            check = "equal to" if formula == counts["total"] else "NOT equal to"
            found.append(
                Answer(
                    "Q2.1-Q2.2",
                    "The MLP's prediction and average cross-entropy loss in terms of W1, b1, W2, b2",
                    f"y_pred = argmax softmax(W2 relu(W1 x + b1) + b2) with x in R^{d}, W1 in R^({h}x{d}), b1 in R^{h}, "
                    f"W2 in R^({k}x{h}), b2 in R^{k}; the loss over N examples is L = -(1/N) sum_n log "
                    f"softmax(W2 relu(W1 x_n + b1) + b2)_(y_n). Parameters: {d}x{h} + {h} + {h}x{k} + {k} = "
                    f"{formula:,}, {check} the {counts['total']:,} counted on our model.",
                    ("ds5220_mlp/analysis/shape_trace.json", "ds5220_mlp/analysis/param_counts.json"),
                )
            )
    found.append(
        _final_epoch_answer(inputs, "ds5220_mlp", "Part 3", "Train the MLP: final training and test accuracy and loss")
    )
    trace_cnn = inputs.json("ds5220_cnn/analysis/shape_trace.json")
    trace_cnn = trace_cnn if has(trace_cnn, "chain") else None
    found += [
        Answer(
            "Q3.1",
            "Design choices of a CNN",
            "A few convolution blocks (convolution, ReLU, pooling) whose channel count grows as the maps shrink, "
            "then one or two fully connected layers to the classes, as in LeNet-5 for MNIST; 3x3 or 5x5 kernels "
            "(VGG showed that stacked 3x3 kernels see as far as one larger kernel with fewer parameters); max "
            "pooling 2x2 to halve the maps; ReLU activations; batch normalization and dropout when the network "
            "is deep enough to need them."
            + (
                f" Our `ds5220_cnn` (the handout's design), shape by shape: `{trace_cnn['chain']}`."
                if trace_cnn
                else ""
            ),
            ("ds5220_cnn/analysis/shape_trace.json",) if trace_cnn else (),
        ),
        _comparison_answer(inputs, "mlp_vs_cnn", "Q3.2", "Compare the MLP and the CNN", ("the MLP", "the CNN"), params),
        _parameter_answer(inputs),
        # Part 4 follows the MLP's problem in the handout and is asked again for the CNN: both answered
        _curve_answer(inputs, "ds5220_mlp", "4.1 (MLP)", "Training and test loss of the MLP over the epochs"),
        _curve_answer(inputs, "ds5220_cnn", "4.1", "Training and test loss of the CNN over the epochs"),
        _first_predictions_answer(
            inputs, "ds5220_mlp", "4.2 (MLP)", "The MLP's predictions on the first 20 test images"
        ),
        _first_predictions_answer(inputs, "ds5220_cnn", "4.2", "Predictions on the first 20 test images"),
        _confusion_answer(inputs, "ds5220_mlp", "4.3 (MLP)", "Which digits does the MLP get wrong?"),
        _confusion_answer(inputs, "ds5220_cnn", "4.3", "Which digits does the CNN get wrong?"),
        _comparison_answer(
            inputs,
            "normalization_mlp",
            "4.4 (MLP)",
            "Train the MLP without normalization: what changes?",
            ("with normalization (`ds5220_mlp`)", "without (`ds5220_mlp_raw`)"),
            _loss_sentence,
        ),
        _comparison_answer(
            inputs,
            "normalization",
            "4.4",
            "Train without normalization: what changes?",
            ("with normalization (`ds5220_cnn`)", "without (`ds5220_cnn_raw`)"),
            _loss_sentence,
        ),
    ]
    return found


def _colour_kernel_classes(inputs: Reader, data: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """For each colour kernel of the filters file: the classes whose images it responds to most and least
    (``classwise_norms.csv``, its first-layer rows); ("", ()) when that file is missing."""
    rel = "cse849/classwise_norms/classwise_norms.csv"
    rows = table(inputs.text(rel), "layer", "filter", "class_name", "mean_norm")
    kernels = [f for f in data.get("filters") or [] if has(f, "filter", "kind") and f["kind"] == "colour"]
    if not rows or not kernels:
        return "", ()
    first_layer = rows[0]["layer"]
    said = []
    for kernel in kernels:
        norms = {
            r["class_name"]: float(r["mean_norm"])
            for r in rows
            if r["layer"] == first_layer and int(r["filter"]) == kernel["filter"]
        }
        if len(norms) < 3:
            continue
        ranked = sorted(norms, key=norms.get, reverse=True)
        said.append(
            f"kernel {kernel['filter']}{' (' + kernel['prefers'] + ')' if kernel.get('prefers') else ''} responds most "
            f"to {ranked[0]} ({norms[ranked[0]]:.2f}) and {ranked[1]} ({norms[ranked[1]]:.2f}) images and least to "
            f"{ranked[-1]} ({norms[ranked[-1]]:.2f}), {norms[ranked[0]] / norms[ranked[-1]]:.2f}x"
        )
    if not said:
        return "", ()
    return f" By class ({first_layer}'s mean feature-map norms): {'; '.join(said)}.", (rel,)


def _filters_answer(inputs: Reader) -> Answer | None:
    rel = "cse849/analysis/filters.json"
    data = inputs.json(rel)
    if not has(data, "counts.colour", "counts.blob", "counts.edge/texture", "shape", "filters"):
        return None
    counts, n = data["counts"], data["shape"][0]
    by_colour = {c: k for c, k in (data.get("colour_preferences") or {}).items() if k}  # RGB input only
    colour = (
        f"{counts['colour']} to colour ("
        + ", ".join(f"{k} preferring {c}" for c, k in sorted(by_colour.items(), key=lambda kv: -kv[1]))
        + ")"
        if counts["colour"]
        else "none to colour"
    )
    text = (
        f"Measured on the weights of the {n} kernels of `{data.get('layer', 'conv1')}`: {counts['edge/texture']} "
        f"respond to grey-level structure with weights of both signs (edge and texture detectors), "
        f"{counts['blob']} to overall brightness and {colour}; a kernel counts as colour when over "
        f"{data.get('colour_share_threshold', 0.5):.0%} of its weight energy lies in differences between the RGB "
        f"channels."
    )
    sources: tuple[str, ...] = (rel,)
    norms_rel = "cse849/classwise_norms/classwise_norms.json"
    norms = inputs.json(norms_rel)
    first = next(iter(norms.values()), None) if isinstance(norms, Mapping) else None
    keys = ("summary.median_cv", "summary.max_cv", "summary.cv_threshold", "summary.class_specific_filters")
    if has(first, *keys, "summary.filters"):
        summary = first["summary"]
        generic = summary["class_specific_filters"] == 0
        text += (
            f" How much their responses depend on the class: the median coefficient of variation of the first "
            f"layer's class-wise norms is {summary['median_cv']:.3f} and the largest {summary['max_cv']:.3f}; "
            f"{summary['class_specific_filters']} of {summary['filters']} filters pass the class-specific threshold "
            f"({summary['cv_threshold']:g}). "
            + (
                "So by that threshold these are patterns every class shares (edges, texture, colour contrast) "
                "rather than parts of one CIFAR-10 class."
                if generic
                else "So some first-layer filters already favour particular classes."
            )
        )
        sources += (norms_rel,)
    by_class, class_sources = _colour_kernel_classes(inputs, data)
    return Answer(
        "Q2 deliverable 2",
        "Do the first-layer filters remind you of CIFAR-10 patterns?",
        text + by_class,
        sources + class_sources,
    )


def cse849(inputs: Reader) -> list[Answer | None]:
    found: list[Answer | None] = [
        _accuracy_answer(inputs, "cse849", "Q1 deliverable 3", "Validation accuracy of the kept model", "val")
    ]
    found.append(_filters_answer(inputs))
    rel = "cse849/classwise_norms/classwise_norms.json"
    data = inputs.json(rel)
    keys = ("summary.median_cv", "summary.filters", "summary.class_specific_filters", "summary.cv_threshold")
    if not isinstance(data, Mapping) or len(data) < 2 or not all(has(v, *keys) for v in data.values()):
        return found
    # the stage's own summary, not recomputed here: one median for the table and this sentence
    summary = {layer: v["summary"] for layer, v in data.items()}
    first, last = list(summary)[0], list(summary)[-1]
    a, b = summary[first], summary[last]
    more = "more" if b["median_cv"] > a["median_cv"] else "less"
    reading = (
        "early filters respond to generic patterns, late ones to classes"
        if more == "more"
        else "the usual picture (generic early, class-specific late) does not hold here"
    )
    text = (
        f"Across the {a['filters']} filters of {first} the median coefficient of variation of the class-wise "
        f"mean norms (std across the ten classes / mean) is {a['median_cv']:.3f}; across the {b['filters']} of "
        f"{last} it is {b['median_cv']:.3f}. Over the threshold of {a['cv_threshold']} (population std of the "
        f"class means above {a['cv_threshold']} of their mean; since that std is at most half their range, the "
        f"strongest class's mean norm is then over {1 + 2 * a['cv_threshold']:g} times the weakest's): "
        f"{a['class_specific_filters']} of {a['filters']} in {first}, {b['class_specific_filters']} "
        f"of {b['filters']} in {last}. The late layer's responses depend {more} on the class than the early "
        f"layer's: {reading}."
    )
    found.append(
        Answer("Q2 deliverable 4", "Early vs late layers: what do the class-wise feature-map norms show?", text, (rel,))
    )
    return found


ANSWERS: dict[str, Callable[[Reader], list[Answer | None]]] = {
    "tdm": tdm,
    "hku": hku,
    "prac5": prac5,
    "ds5220": ds5220,
    "cse849": cse849,
}


def answers(key: str, inputs: Reader) -> list[Answer]:
    """The answers for assignment ``key`` (a key of references/handout_results.yaml) that its files allow."""
    return [a for a in ANSWERS.get(key, lambda _: [])(inputs) if a is not None]
