"""``python -m pipeline <command>``: the pipeline's command line.

    python -m pipeline predict --variant cse849 --images data/composite/test --out q1_test.txt
    python -m pipeline predict --model /tmp/m.pt --images some/folder --out preds.txt
    python -m pipeline train|evaluate|analyze|compare|padding|classwise-norms|export-weights ...   (the DVC stages, same arguments)
    python -m pipeline autograde --submission student/layers.py      (HKU A3; --submissions DIR for a class)
    python -m pipeline grade-cse849 q1_test.txt --labels test_labels.csv
    python -m pipeline check-data cse849_data.zip          (an image-folder dataset: layout, counts, mean/std)

``predict`` writes one predicted class index per line, in the folder's sorted file
order. Errors (missing model, an image of the wrong size or channel count, ...) print
one ``error: ...`` line naming the file and exit with status 1, leaving no output file.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import torch

from pipeline.cli import run_stage
from pipeline.errors import PipelineError

# Entry points reachable as sub-commands (the DVC stages and the graders); each takes its own arguments.
STAGES = {
    "train": "pipeline.stages.train",
    "evaluate": "pipeline.stages.evaluate",
    "analyze": "pipeline.stages.analyze",
    "compare": "pipeline.stages.compare",
    "padding": "pipeline.stages.padding",
    "classwise-norms": "pipeline.stages.classwise_norms",
    "export-weights": "pipeline.stages.export_weights",
    "autograde": "pipeline.autograder",
    "grade-cse849": "pipeline.cse849_grader",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="CNN pipeline commands: predict, check-data, and "
        + ", ".join(STAGES)
        + " (see `<command> --help`).",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    p = sub.add_parser(
        "predict",
        help="predict every image of a flat folder; one class index per line",
        description="Predict every image of a flat folder with a trained variant.",
    )
    p.add_argument("--variant", help="variant name: uses models/<variant>.pt (or --model)")
    p.add_argument("--model", type=Path, help="checkpoint path (default: <models-dir>/<variant>.pt)")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="default: %(default)s")
    p.add_argument(
        "--images",
        type=Path,
        required=True,
        help="flat folder of images (sorted by file name), or a dataset folder / .zip: its test/ folder",
    )
    p.add_argument("--out", type=Path, required=True, help="output text file (one class index per line)")
    c = sub.add_parser(
        "check-data",
        help="check an image-folder dataset (folder or .zip) and measure its mean/std",
        description="Check an image-folder dataset (CSE 849 layout: train/<class>/, val/<class>/, flat "
        "test/) given as a folder, its parent or its .zip: layout, images per class, image "
        "size and channels, test labels, and the training split's channel mean/std "
        "(what normalize: {mode: train} will use).",
    )
    c.add_argument("path", type=Path, help="the dataset folder or .zip")
    for name, module in STAGES.items():
        sub.add_parser(name, help=f"run {module} (arguments passed through)", add_help=False)
    return parser


def _predict(args: argparse.Namespace) -> None:
    from pipeline.predict import default_model_path, run_predict

    if args.model is None and not args.variant:
        raise PipelineError("predict: give --variant NAME (uses models/NAME.pt) or --model PATH")
    model = args.model or default_model_path(args.variant, args.models_dir)
    run_predict(model, args.images, args.out, args.variant or None)


def _check_data(args: argparse.Namespace) -> None:
    from pipeline.data.readers import UNLABELLED, read_split
    from pipeline.data.readers.image_folder import dataset_root
    from pipeline.normalizer import channel_stats

    root = dataset_root(args.path)
    print(f"dataset: {root}" + (f" (from {args.path})" if root != args.path else ""))
    train = None
    for split in ("train", "val", "test"):
        if not (root / split).is_dir():
            print(f"{split:<5}  missing")
            continue
        data = read_split("image_folder", root, split)
        _, channels, height, width = data.images.shape
        labelled = int((data.labels != UNLABELLED).sum())
        counts = torch.bincount(data.labels[data.labels != UNLABELLED], minlength=len(data.classes)).tolist()
        per_class = ", ".join(f"{name} {n}" for name, n in zip(data.classes, counts)) if labelled else "no labels"
        digits = "digit labels" if data.digit_labels is not None else "no digit labels"
        print(
            f"{split:<5}  {len(data):>6} images {height}x{width}x{channels}, {labelled} labelled, {digits}: {per_class}"
        )
        train = data if split == "train" else train
    if train is not None:
        mean, std = channel_stats(train.images)
        print(
            f"train mean {[round(m, 3) for m in mean]}, std {[round(v, 3) for v in std]} "
            "(scaled to 0-1; normalize: {mode: train} uses these)"
        )


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in STAGES:
        status = importlib.import_module(STAGES[argv[0]]).main(argv[1:])
        sys.exit(status or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        sys.exit(2)
    if args.command == "predict":
        run_stage(lambda: _predict(args))
    elif args.command == "check-data":
        run_stage(lambda: _check_data(args))


if __name__ == "__main__":
    main()
