"""DS 5220's questions that print the first batch, the final epoch and the first predictions as its
notebook prints them, and read the MLP's and the CNN's structure from their analysis files."""

from __future__ import annotations

import math

from pipeline.report.answers.base import Built, Reader, builder, has, layer_rows, table


@builder
def first_batch(inputs: Reader, variants: tuple[str, ...]) -> Built | None:
    """Part 0: the first training batch of each variant, printed the handout's way."""
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
    return (
        "Recorded by the training stage from the first batch the model was given (after normalization), printed "
        "as the handout's cell prints it:\n\n```\n" + "\n\n".join(printed) + "\n```\n\n" + "; ".join(said) + ".",
        tuple(rels),
    )


@builder
def mlp_formula(inputs: Reader, variant: str) -> Built | None:
    """Q2.1-Q2.2: the MLP's prediction and loss with its sizes, and the parameter count they imply
    against the one counted on the model."""
    trace_rel, counts_rel = f"{variant}/analysis/shape_trace.json", f"{variant}/analysis/param_counts.json"
    trace, counts = inputs.json(trace_rel), inputs.json(counts_rel)
    if not (has(trace, "steps") and has(counts, "total")):
        return None
    # the input size, then each linear layer's output size
    sizes = [math.prod(trace["steps"][0]["shape"][1:])] + [
        s["shape"][-1] for s in trace["steps"] if s.get("type") == "Linear"
    ]
    if len(sizes) != 3:
        return None
    d, h, k = sizes
    formula = d * h + h + h * k + k
    check = "equal to" if formula == counts["total"] else "NOT equal to"
    return (
        f"y_pred = argmax softmax(W2 relu(W1 x + b1) + b2) with x in R^{d}, W1 in R^({h}x{d}), b1 in R^{h}, "
        f"W2 in R^({k}x{h}), b2 in R^{k}; the loss over N examples is L = -(1/N) sum_n log "
        f"softmax(W2 relu(W1 x_n + b1) + b2)_(y_n). Parameters: {d}x{h} + {h} + {h}x{k} + {k} = "
        f"{formula:,}, {check} the {counts['total']:,} counted on our model.",
        (trace_rel, counts_rel),
    )


@builder
def final_epoch(inputs: Reader, variant: str) -> Built | None:
    """Part 3: the kept epoch's training and test accuracy and loss, printed as the handout prints them; the
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
    test_acc, multiple = float(row["test_accuracy"]), inputs.verdicts.noise_multiple
    gap = 100 * (float(row["train_accuracy"]) - test_acc)
    bar = multiple * 100 * math.sqrt(test_acc * (1 - test_acc) / evaluation["test_examples"])
    reading = f"training accuracy is {abs(gap):.2f} points {'above' if gap > 0 else 'below'} the test accuracy, " + (
        f"within {multiple:g} standard errors of the test accuracy ({bar:.2f} points): no sign of overfitting at "
        f"this length"
        if gap <= bar
        else f"more than {multiple:g} standard errors of the test accuracy ({bar:.2f} points): the model fits its "
        f"training images better than unseen ones"
    )
    return (
        f"After epoch {row['epoch']} (the kept checkpoint), in the handout's format:\n\n```\n{printed}\n```\n\n"
        f"The training accuracy counts that epoch's batches as the handout does; the training loss is their mean, "
        f"where the handout prints its last logged batch loss. The {reading}.",
        (rel, facts_rel, eval_rel),
    )


@builder
def design_chain(inputs: Reader, variant: str, design: str) -> Built | None:
    """Q3.1's measured end: the variant's forward pass, shape by shape (``design``: whose design it is)."""
    rel = f"{variant}/analysis/shape_trace.json"
    trace = inputs.json(rel)
    if not has(trace, "chain"):
        return None
    return f"Our `{variant}` ({design}), shape by shape: `{trace['chain']}`.", (rel,)


@builder
def parameter_counts(inputs: Reader, variants: tuple[str, str], names: tuple[str, str]) -> Built | None:
    """Q3.3: the two variants' parameter counts, their largest layer and the second's convolutions."""
    rels = tuple(f"{v}/analysis/layer_summary.json" for v in variants)
    first, second = (layer_rows(inputs.json(rel)) for rel in rels)
    if not (first and second):
        return None
    totals = [sum(r["params"] for r in rows) for rows in (first, second)]
    fewer = "fewer" if totals[1] < totals[0] else "more"

    def largest(name: str, rows: list[dict], total: int) -> str:
        top = max(rows, key=lambda r: r["params"])
        return (
            f"the {name} the largest layer, `{top['module']}` ({top['type']}), holds {top['params']:,} of them "
            f"({top['params'] / total:.0%})"
        )

    convs = sum(r["params"] for r in second if r["type"] == "Conv2d")
    a, b = names
    return (
        f"The {a} has {totals[0]:,} parameters, the {b} {totals[1]:,}: {fewer} for the {b} "
        f"({totals[0] / totals[1]:.2f}x). In {largest(a, first, totals[0])}; in {largest(b, second, totals[1])}, "
        f"while its convolutions, which share small kernels across the image, hold {convs:,}.",
        rels,
    )


@builder
def first_predictions(inputs: Reader, variant: str, k: int = 20) -> Built | None:
    """4.2: which of the first ``k`` test images the variant gets right."""
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
    return f"Of the first {k} test images, {k - len(wrong)} are classified correctly: {detail}.", (rel,)
