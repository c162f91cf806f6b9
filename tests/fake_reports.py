"""A fake ``reports/`` tree for the report tests: deliberately odd numbers, some files missing.

``build_fake_repo`` writes a repository root with the real ``params.yaml`` and seed
results, a small ``dvc.yaml`` and train/evaluate/analysis outputs for four variants only,
so a number in the report can only have come from these files and every "not produced
yet" path is exercised. Used by ``tests/test_report.py`` and ``tests/test_report_browser.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# What the fake train / evaluate / analysis stages "measured". Deliberately odd numbers,
# so that a number in the report can only have come from these files.
FAKE_METRICS = {
    "hku_simplecnn": {
        "test_accuracy": 0.9871,
        "test_loss": 0.041234,
        "epochs": 10,
        "checkpoint_epoch": 10,
        "parameters": 421642,
        "train_seconds": 812.34,
        "train_images_per_second": 664.8,
        "val_accuracy": 0.9913,
        "val_loss": 0.0312,
    },
    "ds5220_mlp": {
        "test_accuracy": 0.9655,
        "test_loss": 0.1111,
        "epochs": 10,
        "checkpoint_epoch": 10,
        "parameters": 101770,
        "train_seconds": 41.5,
        "train_images_per_second": 14457.8,
    },
    "ds5220_cnn": {
        "test_accuracy": 0.9889,
        "test_loss": 0.0361,
        "epochs": 10,
        "checkpoint_epoch": 10,
        "parameters": 47658,
        "train_seconds": 123.4,
        "train_images_per_second": 4862.2,
    },
    "cse849": {
        "test_accuracy": 0.7234,
        "test_loss": 0.8123,
        "epochs": 12,
        "checkpoint_epoch": 11,
        "parameters": 123456,
        "train_seconds": 3001.0,
        "train_images_per_second": 179.9,
        "val_accuracy": 0.7301,
        "val_loss": 0.79,
    },
}
FAKE_EVAL = {  # as pipeline/inference/evaluation.py writes it
    "test_accuracy": 0.9871,
    "test_loss": 0.041234,
    "test_examples": 10000,
    "misclassified": 129,
    "macro": {"precision": 0.98701, "recall": 0.98688, "f1": 0.98694},
    "per_class": {
        str(c): {"precision": 0.9812, "recall": 0.9777, "f1": 0.9794, "support": 1000 + c} for c in range(10)
    },
}
FAKE_CSE849_EVAL = {
    "test_accuracy": 0.7234,
    "test_loss": 0.8123,
    "test_examples": 10000,
    "misclassified": 2766,
    "macro": {"precision": 0.7201, "recall": 0.7234, "f1": 0.7213},
    "per_class": {c: {"precision": 0.7, "recall": 0.71, "f1": 0.705, "support": 1000} for c in ("airplane", "cat")},
    "shortcut": {
        "agree_count": 1039,
        "disagree_count": 8961,
        "agree_accuracy": 0.8123,
        "disagree_accuracy": 0.7011,
        "gap_points": 11.12,
        "shortcut_rate": 0.0567,
        "predicted_digit_rate": 0.1002,
    },
    "occlusion": {
        "digit_blanked": {"accuracy": 0.7188, "change_points": -0.46, "predicted_digit_rate": 0.0931},
        "cifar_blanked": {"accuracy": 0.1123, "change_points": -61.11, "predicted_digit_rate": 0.8765},
    },
}


def png(path: Path, size: tuple[int, int] = (24, 16), colour: tuple[int, int, int] = (200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="PNG")


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")


FAKE_PARAM_COUNTS = {"hku_simplecnn": 582218, "ds5220_mlp": 101770, "ds5220_cnn": 47658, "cse849": 95802}


def build_fake_repo(root: Path, *, timing: bool = True) -> Path:
    """A repository root with the real params.yaml, seed results and answers, a small dvc.yaml in the
    new layout and a partial ``reports/`` tree: train/evaluate/analyze outputs for four
    variants only, one comparison of three, no padding table."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    (root / "references").mkdir(exist_ok=True)
    shutil.copy(REPO / "references" / "handout_results.yaml", root / "references" / "handout_results.yaml")
    shutil.copytree(REPO / "references" / "answers", root / "references" / "answers", dirs_exist_ok=True)
    (root / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "train": {
                        "foreach": "${variants}",
                        "do": {
                            "cmd": "python -m pipeline.stages.train ${key}",
                            "outs": [{"reports/${key}/plots/epochs.csv": {"cache": False}}],
                            "metrics": [{"reports/${key}/metrics.json": {"cache": False}}],
                        },
                    },
                    "evaluate": {"foreach": "${variants}", "do": {"cmd": "x", "outs": ["reports/${key}/eval"]}},
                    "analyze": {"foreach": "${variants}", "do": {"cmd": "x", "outs": ["reports/${key}/analysis"]}},
                    "compare": {
                        "foreach": "${analysis.comparisons}",
                        "do": {
                            "cmd": "x",
                            "outs": ["reports/comparisons/${key}.md"],
                            "metrics": ["reports/comparisons/${key}.json"],
                        },
                    },
                    "padding": {
                        "cmd": "x",
                        "outs": ["reports/analysis/padding_shapes.md", "reports/analysis/padding_shapes.json"],
                    },
                    "stats": {"cmd": "x", "metrics": ["reports/data/stats.json"]},
                }
            }
        ),
        encoding="utf-8",
    )
    reports = root / "reports"
    for variant, metrics in FAKE_METRICS.items():
        write_json(reports / variant / "metrics.json", metrics)
        write_json(reports / variant / "eval" / "metrics.json", FAKE_CSE849_EVAL if variant == "cse849" else FAKE_EVAL)
        png(reports / variant / "eval" / "confusion_matrix.png", colour=(10, 20, 200))
        png(reports / variant / "eval" / "first20.png")
        png(reports / variant / "analysis" / "loss_curve.png", colour=(0, 150, 0))
        count = FAKE_PARAM_COUNTS[variant]
        write_json(
            reports / variant / "analysis" / "param_counts.json",
            {"non_trainable": 0, "total": count, "trainable": count},
        )
    # misclassified.png of hku only: the others' eval folder exists but lacks it
    png(reports / "hku_simplecnn" / "eval" / "misclassified.png")
    # filters.png: not for the MLP (no convolution), whose analysis folder holds the rest
    png(reports / "hku_simplecnn" / "analysis" / "filters.png", size=(40, 40))
    png(reports / "cse849" / "analysis" / "filters.png", size=(40, 40), colour=(90, 90, 0))
    (reports / "ds5220_mlp" / "analysis" / "shape_trace.md").write_text(
        "`[1, 1, 28, 28] -> [1, 784] -> [1, 128] -> [1, 10]`\n\n| step | shape |\n|---:|---|\n| 0 | [1, 1, 28, 28] |\n",
        encoding="utf-8",
    )
    (reports / "ds5220_mlp" / "analysis" / "layer_summary.md").write_text(
        "## ds5220_mlp (`ds5220_mlp`)\n\nTotal params: 101,770\n\n### Layers\n\n| Layer (type) | Param # |\n|---|---:|\n"
        "| Linear-1 | 100,480 |\n",
        encoding="utf-8",
    )
    # one comparison of the three in params, with a link relative to reports/comparisons/
    write_json(
        reports / "comparisons" / "normalization.json",
        {
            "title": "Normalized vs raw input",
            "a": {"variant": "ds5220_cnn", "test_accuracy": 0.9834, "test_loss": 0.0531, "parameters": 47658},
            "b": {"variant": "ds5220_cnn_raw", "test_accuracy": 0.98, "test_loss": 0.0655, "parameters": 47658},
            "accuracy_diff_points": 0.34,
            "test_loss_diff": -0.0124,
            "parameter_ratio": 1.0,
            "fair": True,
            "confounds": [],
            "mcnemar": {"images": 10000, "a_only_correct": 67, "b_only_correct": 33, "p_value": 0.000891},
            "verdict": "`ds5220_cnn` is 0.34 points more accurate than `ds5220_cnn_raw` (as compare@ words it).",
        },
    )
    (reports / "comparisons" / "normalization.md").write_text(
        "# Normalized vs raw input (DS 5220 Part 4.4)\n\n| pair | gap |\n|---|---|\n| cnn vs raw | 0.34 pp |\n\n"
        "![curve](../ds5220_mlp/analysis/loss_curve.png)\n",
        encoding="utf-8",
    )
    write_json(
        reports / "autograder.json",
        {
            "q1": {"score": 20, "max": 20, "passed": 48, "total": 48},
            "q2": {"score": 17, "max": 20, "passed": 41, "total": 48},
            "total": 37,
            "max_total": 40,
            "forbidden_uses": 0,
        },
    )
    write_json(
        reports / "data" / "stats.json", {"mnist": {"train": {"count": 60000, "mean": 0.130660, "std": 0.308108}}}
    )
    png(reports / "data" / "mnist_first5.png")
    (reports / "cse849").mkdir(exist_ok=True)
    (reports / "cse849" / "q1_test.txt").write_text("".join(f"{i}.png,cat\n" for i in range(7)), encoding="utf-8")
    png(reports / "cse849" / "classwise_norms" / "classwise_norms_conv1.png")
    write_json(
        reports / "cse849" / "classwise_norms" / "classwise_norms.json",
        {
            "conv1": {
                "summary": {
                    "filters": 2,
                    "mean_cv": 0.2345,
                    "median_cv": 0.2345,
                    "max_cv": 0.3,
                    "cv_threshold": 0.5,
                    "class_specific_filters": 0,
                    "dead_filters": 0,
                },
                "per_filter": {
                    "filter_00": {"cv": 0.169, "argmax_class": 3, "mean_norm": 1.5},
                    "filter_01": {"cv": 0.3, "argmax_class": 0, "mean_norm": 2.5},
                },
            }
        },
    )
    write_json(
        reports / "benchmarks" / "loader.json",
        {
            "workers": 0,
            "results": {
                "seed_style": {"seconds": 61.25, "test_accuracy": 0.9512, "speedup_vs_seed_style": 1.0},
                "engine_float32": {
                    "seconds": 12.5,
                    "test_accuracy": 0.9518,
                    "speedup_vs_seed_style": 4.9,
                    "speedup_vs_seed_style_median": 4.5,
                },
            },
            "reliable": True,
            "reliability_note": "",
        },
    )
    write_json(
        reports / "benchmarks" / "layers.json",
        {
            "threads": 2,
            "reliable": False,
            "reliability_note": "load average 1.80 before the run",
            "results": [
                {
                    "kind": "conv",
                    "name": "conv 32->64 5x5, 12x12",
                    "custom_s": 0.02767,
                    "torch_s": 0.01232,
                    "ratio": 2.2459,
                    "ratio_median": 2.41,
                    "target": 2.0,
                    "pass": False,
                    "custom_peak_mb": 17.58,
                    "torch_peak_mb": 4.31,
                    "custom_working_mb": 15.27,
                    "torch_working_mb": 2.0,
                    "unfolded_input_mb": 12.5,
                    "working_per_unfolded_input": 1.2216,
                    "peak_target": 1.0,
                    "peak_pass": False,
                },
                {
                    "kind": "epoch",
                    "name": "SimpleCNN epoch",
                    "custom_s": 46.78,
                    "torch_s": 28.26,
                    "ratio": 1.655,
                    "target": 1.5,
                    "pass": False,
                },
                {
                    "kind": "pool",
                    "name": "max-pool 2x2",
                    "custom_s": 0.00117,
                    "torch_s": 0.00090,
                    "ratio": 1.30,
                    "target": 3.0,
                    "pass": True,
                },
            ],
        },
    )
    if timing:
        write_json(
            reports / "timing.json",
            {"command": "dvc repro", "dvc_repro_seconds": 5432.1, "date": "2026-11-20T10:00:00+00:00", "cpus": 2},
        )
    return root
