"""The report's Data section: the datasets' statistics, where each file came from, the MNIST CSV's head, samples."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pipeline.report.document import Markdown, ref
from pipeline.report.formats import num, pct


def data_section(doc: Markdown) -> None:
    inputs = doc.inputs
    doc.heading(2, "Data")
    data_stats_tables(doc)
    composite = inputs.params.composite
    if composite is not None:
        doc.para(
            "Composite set-up (`params.yaml` `composite`): "
            + ", ".join(f"{k} = {num(v)}" for k, v in dataclasses.asdict(composite).items())
            + "."
        )
    provenance_table(doc)
    head = inputs.text("data/mnist_head.txt")
    if head is None:
        doc.missing("data/mnist_head.txt")
    else:
        doc.para(f"First rows of the MNIST CSV ({ref('data/mnist_head.txt')}):")
        doc.code(head)
    for rel, caption in [
        ("data/mnist_class_distribution.png", "MNIST class distribution"),
        ("data/mnist_first5.png", "the first five MNIST training images"),
        ("data/mnist_random20.png", "twenty random MNIST training images"),
        ("data/composite_samples.png", "composite samples (CIFAR-10 image + MNIST digit)"),
    ]:
        doc.figure(rel, caption)


def data_stats_tables(doc: Markdown) -> None:
    """Images and pixel statistics per split (``data/stats.json``): MNIST's, then the composite's per channel."""
    stats = doc.json("data/stats.json", "dataset statistics")
    if stats is None:
        return
    mnist = stats.get("mnist") or {}
    if mnist:
        doc.table(
            ["MNIST split", "images", "pixel mean", "pixel std"],
            [[s, num(e.get("count", "-")), num(e.get("mean", "-")), num(e.get("std", "-"))] for s, e in mnist.items()],
        )
    comp = stats.get("composite") or {}
    if comp:
        doc.table(
            ["composite split", "images", "digit = label", "mean", "std"],
            [
                [
                    s,
                    num(e.get("count", "-")),
                    pct(e["label_agreement"]) if "label_agreement" in e else "-",
                    channels(e.get("mean")),
                    channels(e.get("std")),
                ]
                for s, e in comp.items()
            ],
        )
    doc.para(
        f'From {ref("data/stats.json")} (stage `stats`). "digit = label": the fraction of '
        "composite images whose pasted MNIST digit equals the CIFAR-10 label (the CSE 849 shortcut)."
    )


def channels(d: Any) -> str:
    """Channel statistics in image order (R, G, B), whatever order the file keeps its keys in."""
    if not isinstance(d, Mapping):
        return "-"
    order = {"r": 0, "g": 1, "b": 2}
    keys = sorted(d, key=lambda k: (order.get(k, 3), k))
    return ", ".join(f"{k.upper() if k in order else k} {num(d[k])}" for k in keys)


def provenance_table(doc: Markdown) -> None:
    """Where each downloaded file came from (``data/provenance.json``), then its scalar facts."""
    prov = doc.json("data/provenance.json", "data provenance")
    if prov is None:
        return
    doc.table(["file", "origin", "md5", "images / shape"], provenance_rows(prov))
    extra = [f"{k} = {v}" for k, v in prov.items() if not isinstance(v, (Mapping, list))]
    doc.para(
        f"From {ref('data/provenance.json')} (stage `download`)" + (f"; {', '.join(extra)}" if extra else "") + "."
    )


def provenance_rows(prov: Mapping[str, Any]) -> list[list[str]]:
    """One row per downloaded file (or per dataset when it lists no files)."""

    def size(entry: Mapping[str, Any]) -> str:
        if isinstance(entry.get("counts"), Mapping):
            return ", ".join(f"{k} {num(v)}" for k, v in entry["counts"].items())
        if isinstance(entry.get("shape"), list):
            return " x ".join(str(n) for n in entry["shape"])
        return "-"

    rows = []
    for name, entry in prov.items():
        if not isinstance(entry, Mapping):
            continue
        files = entry.get("files")
        if isinstance(files, Mapping) and files:
            rows += [
                [f"{name}: {f}", f"`{e.get('origin', '-')}`", f"`{e['md5']}`" if "md5" in e else "-", size(e)]
                for f, e in files.items()
                if isinstance(e, Mapping)
            ]
        else:
            rows.append(
                [name, f"`{entry.get('origin', '-')}`", f"`{entry['md5']}`" if "md5" in entry else "-", size(entry)]
            )
    return rows
