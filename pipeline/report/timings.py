"""The report's Time section: training time per variant, the whole run per stage, the speed benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.report.document import Markdown, ref
from pipeline.report.formats import duration, num, pct, seconds


def time_section(doc: Markdown, variants: list[str]) -> None:
    doc.heading(2, "Time")
    training_time_table(doc, variants)
    pipeline_time_tables(doc)
    loader_benchmark_table(doc)
    layer_benchmark_tables(doc)


def training_time_table(doc: Markdown, variants: list[str]) -> None:
    """Training, per variant: epochs, training time, per epoch, images / s; the total of the trained ones."""
    inputs = doc.inputs
    rows, total = [], 0.0
    for name in variants:
        m = inputs.metrics(name)
        if m is None:
            rows.append([f"`{name}`", inputs.missing(f"{name}/metrics.json"), "", "", ""])
            continue
        total += m.get("train_seconds", 0.0)
        per_epoch = m["train_seconds"] / m["epochs"] if m.get("epochs") and "train_seconds" in m else None
        rows.append(
            [
                f"`{name}`",
                num(m.get("epochs", "-")),
                seconds(m["train_seconds"]) if "train_seconds" in m else "-",
                seconds(per_epoch) if per_epoch is not None else "-",
                num(m.get("train_images_per_second", "-")),
            ]
        )
    have = sum(inputs.metrics(name) is not None for name in variants)
    if have:
        label = (
            "**all variants**"
            if have == len(variants)
            else f"**the {have} of {len(variants)} variants trained so far**"
        )
        rows.append([label, "", f"**{seconds(total)}**", "", ""])
    doc.heading(3, "Training, per variant")
    doc.table(["variant", "epochs", "training time", "per epoch", "images / s"], rows)
    doc.para(
        "Training time counts the training passes only (not evaluation); from each `reports/<variant>/timings.json`."
    )


def pipeline_time_tables(doc: Markdown) -> None:
    """Whole pipeline: the wall time of one `dvc repro` (``timing.json``), then its split per stage."""
    doc.heading(3, "Whole pipeline")
    timing = doc.json("timing.json", "wall time of `dvc repro`")
    if timing is None:
        return
    rows = [["`dvc repro` wall time", seconds(timing["dvc_repro_seconds"]) if "dvc_repro_seconds" in timing else "-"]]
    rows += [
        [k, f"`{v}`" if k == "command" else num(v)]
        for k, v in timing.items()
        if k not in ("dvc_repro_seconds", "stages")
    ]
    doc.table(["", "value"], rows)
    doc.para(f"From {ref('timing.json')} (`make repro-timed`, `pipeline/timing.py`).")
    stage_seconds = timing.get("stages") or {}
    if stage_seconds:
        stage_time_table(doc, stage_seconds)


def stage_time_table(doc: Markdown, stage_seconds: Mapping[str, float]) -> None:
    """Where the time of that run went: each stage's wall time and share, longest first."""
    doc.heading(3, "Where the time of that run went, per stage")
    total = sum(stage_seconds.values())
    rows = []
    for stage, secs in sorted(stage_seconds.items(), key=lambda item: -item[1]):
        variant = stage.split("@", 1)[1] if stage.startswith("train@") else None
        metrics = doc.inputs.metrics(variant) if variant else None
        speed = num(metrics["train_images_per_second"]) if metrics and "train_images_per_second" in metrics else ""
        rows.append([f"`{stage}`", seconds(secs), f"{100 * secs / total:.1f}%" if total else "-", speed])
    doc.table(["stage", "wall time", "share", "training images / s"], rows)
    doc.para(
        "Each stage from DVC's `Running stage` line to the next one, so it includes DVC's hashing "
        "and lock-file update; images / s from the variant's `timings.json` (training passes only), which "
        "a later `dvc repro` of that variant alone rewrites: it can come from a newer run than the wall time."
    )


def loader_benchmark_table(doc: Markdown) -> None:
    """Engine vs the handout-style data loader (``benchmarks/loader.json``): one epoch per loop."""
    doc.heading(3, "Engine vs the handout-style data loader")
    loader = doc.json("benchmarks/loader.json", "loader benchmark")
    if loader is None:
        return
    rows = [
        [
            f"`{label}`",
            seconds(r["seconds"]) if "seconds" in r else "-",
            f"{r['speedup_vs_seed_style']:.2f}x" if "speedup_vs_seed_style" in r else "-",
            f"{r['speedup_vs_seed_style_median']:.2f}x" if "speedup_vs_seed_style_median" in r else "-",
            pct(r["test_accuracy"]) if "test_accuracy" in r else "-",
        ]
        for label, r in (loader.get("results") or {}).items()
    ]
    doc.table(
        ["loop (one epoch, DS 5220 CNN)", "time (min)", "speed-up vs handout style (min)", "(median)", "test accuracy"],
        rows,
    )
    benchmark_footer(
        doc,
        "benchmarks/loader.json",
        loader,
        "`benchmarks/bench_loader.py`; the loops interleaved, each repeated, the minimum and median of each kept",
    )


def layer_benchmark_tables(doc: Markdown) -> None:
    """Custom layers vs torch (``benchmarks/layers.json``): the time ratios, then the convolutions' memory."""
    doc.heading(3, "Custom layers vs torch")
    layers = doc.json("benchmarks/layers.json", "layer benchmark")
    if layers is None:
        return
    # bench_layers.py writes one row per measurement: custom_s / torch_s / ratio are the
    # minimums over interleaved repeats (ratio_median: of the medians), target, pass
    rows = [
        [
            r["name"],
            duration(r["custom_s"]),
            duration(r["torch_s"]),
            f"{r['ratio']:.2f}x",
            f"{r['ratio_median']:.2f}x" if "ratio_median" in r else "-",
            f"<= {r['target']:g}x",
            "met" if r["pass"] else "**missed**",
        ]
        for r in layers.get("results", [])
    ]
    header = [
        "forward + backward (set-up: `benchmarks/bench_layers.py`)",
        "custom (min)",
        "torch.nn (min)",
        "custom / torch (min)",
        "(median)",
        "target",
        "",
    ]
    doc.table(header, rows)
    memory = [r for r in layers.get("results", []) if r.get("custom_working_mb") is not None]
    if memory:
        layer_memory_table(doc, memory)
    benchmark_footer(
        doc,
        "benchmarks/layers.json",
        layers,
        "`benchmarks/bench_layers.py`; custom and torch interleaved, targets judged on the ratio of the minimums",
    )


def layer_memory_table(doc: Markdown, memory: list[Mapping[str, Any]]) -> None:
    """Peak and working memory of the custom convolution against torch's and one unfolded input."""
    doc.para(
        "Peak memory of one forward + backward (a fresh process per side; working memory = the peak "
        "minus the output and gradients every implementation holds; target: at most one unfolded input)."
    )
    rows = [
        [
            r["name"],
            f"{r['custom_peak_mb']:.1f} MB",
            f"{r['torch_peak_mb']:.1f} MB",
            f"{r['custom_working_mb']:.1f} MB",
            f"{r['torch_working_mb']:.1f} MB",
            f"{r['unfolded_input_mb']:.1f} MB",
            f"{r['working_per_unfolded_input']:.2f} (<= {r['peak_target']:g})",
            "met" if r["peak_pass"] else "**missed**",
        ]
        for r in memory
    ]
    header = [
        "convolution",
        "custom peak",
        "torch.nn peak",
        "custom working",
        "torch.nn working",
        "one unfolded input",
        "custom working / unfolded",
        "",
    ]
    doc.table(header, rows)


def benchmark_footer(doc: Markdown, rel: str, bench: Mapping[str, Any], how: str) -> None:
    """Below a benchmark's table: its verdict on the machine, then where the numbers come from
    and the benchmark's scalar settings (cores, repeats, ...)."""
    benchmark_reliability(doc, bench)
    extra = {
        k: v
        for k, v in bench.items()
        if k not in ("results", "reliable", "reliability_note") and not isinstance(v, (Mapping, list))
    }
    settings = "; " + ", ".join(f"{k} = {num(v)}" for k, v in extra.items()) if extra else ""
    doc.para(f"From {ref(rel)} ({how}){settings}.")


def benchmark_reliability(doc: Markdown, bench: Mapping[str, Any]) -> None:
    """The benchmark's own verdict on the machine it ran on: quote the ratios only when calm."""
    if "reliable" not in bench:
        return
    if bench["reliable"]:
        doc.para("The machine was calm during this benchmark (its `reliable` check passed).")
    else:
        note = bench.get("reliability_note") or "no reason recorded"
        doc.para(
            f"**Unreliable measurement**: the machine was busy during this benchmark ({note}); "
            "treat these times and ratios as rough."
        )
