"""``cnn-pipeline <command>`` (or ``python -m pipeline <command>``): the pipeline's command line.

    cnn-pipeline predict --variant cse849 --images data/composite/test --out q1_test.txt
    cnn-pipeline predict --model /tmp/m.pt --images some/folder --out preds.csv --format csv --probabilities
    cnn-pipeline train|evaluate|analyze|compare|padding|classwise-norms|export-weights ...   (the DVC stages)
    cnn-pipeline autograde --submission student/layers.py      (HKU A3; --submissions DIR for a class)
    cnn-pipeline grade-cse849 q1_test.txt --labels test_labels.csv
    cnn-pipeline check-data cse849_data.zip          (an image-folder dataset: layout, counts, mean/std)

Nothing heavy is imported before a command runs, so ``--help`` and ``--version`` answer at
once. Exit status, the same for every command: 0 done; 1 an error the user can fix (a
missing file, bad params or data: one ``error: ...`` line naming it, no partial output);
2 a usage error (argparse's message); 3 ``autograde`` only: graded, below full marks; 130
interrupted (Ctrl-C; an interrupted training resumes when rerun).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from pipeline import __version__
from pipeline.core.cli import run_stage
from pipeline.core.errors import PipelineError

PROG = "cnn-pipeline"

# Sub-commands that are a module's own main() (the DVC stages and the graders): each parses its
# own arguments, so `cnn-pipeline train --help` shows train's. The help line says the task.
STAGES = {
    "train": ("pipeline.stages.train", "train one variant of params.yaml (writes models/<variant>.pt)"),
    "evaluate": ("pipeline.stages.evaluate", "test-set metrics, confusion matrix and galleries of a trained variant"),
    "analyze": ("pipeline.stages.analyze", "filters, shapes, parameter counts and loss curve of a trained variant"),
    "compare": ("pipeline.stages.compare", "compare two variants as analysis.comparisons.<key> in params.yaml says"),
    "padding": ("pipeline.stages.padding", "convolution output shapes against the padding formula (TDM 40200 Q6)"),
    "classwise-norms": ("pipeline.stages.classwise_norms", "class-wise feature-map norms of the CSE 849 model"),
    "export-weights": ("pipeline.stages.export_weights", "write a variant's weights alone (CSE 849's q1_model.pt)"),
    "autograde": ("pipeline.grading.hku", "grade HKU Assignment 3 layers.py submissions, questions 1-4"),
    "grade-cse849": ("pipeline.grading.cse849", "grade a CSE 849 q1_test.txt: format, accuracy, points, shortcut use"),
}
DEVICE_HELP = (
    "auto (a GPU when present, else the CPU), cpu, cuda, cuda:N or mps (default: $CNN_PIPELINE_DEVICE, else auto)"
)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict the class of every image in a folder with a trained model",
        description="Predict the class of every image in a flat folder (sorted by file name) with a trained "
        "variant. The default output is one class index per line, the format CSE 849 asks for (q1_test.txt).",
    )
    p.add_argument("--variant", help="variant name: uses <models-dir>/<variant>.pt unless --model is given")
    p.add_argument("--model", type=Path, help="checkpoint path (default: <models-dir>/<variant>.pt)")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="default: %(default)s")
    p.add_argument(
        "--images",
        type=Path,
        required=True,
        help="flat folder of images, or a dataset folder or .zip (its test/ folder is predicted)",
    )
    p.add_argument("--out", type=Path, required=True, help="output file")
    p.add_argument(
        "--format",
        choices=("index", "csv"),
        default="index",
        help="index: one class index per line (default); csv: file,index,class per image",
    )
    p.add_argument("--probabilities", action="store_true", help="csv: add one probability column per class")
    p.add_argument(
        "--skip-non-images",
        action="store_true",
        help="skip files that are not images (each is logged) instead of stopping at the first",
    )
    p.add_argument("--device", default=None, help=DEVICE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, evaluate and grade five university CNN assignments; dvc repro runs the whole "
        f"pipeline. Run {PROG} COMMAND --help for a command's options.",
        epilog="Exit status: 0 done; 1 an error the user can fix (missing file, bad params or data); "
        "2 a usage error; 3 autograde only: graded, below full marks; 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    _add_predict(sub)
    c = sub.add_parser(
        "check-data",
        help="check an image-folder dataset (folder or .zip) and measure its mean/std",
        description="Check an image-folder dataset (CSE 849 layout: train/<class>/, val/<class>/, flat "
        "test/) given as a folder, its parent or its .zip: layout, images per class, image "
        "size and channels, test labels, and the training split's channel mean/std "
        "(what normalize: {mode: train} will use).",
    )
    c.add_argument("path", type=Path, help="the dataset folder or .zip")
    for name, (_, task) in STAGES.items():
        sub.add_parser(name, help=task, add_help=False)
    return parser


def _predict(args: argparse.Namespace) -> None:
    from pipeline.inference.predict import check_variant_checkpoint, default_model_path, run_predict

    if args.model is None and not args.variant:
        raise PipelineError("predict: give --variant NAME (uses models/NAME.pt) or --model PATH")
    if args.probabilities and args.format != "csv":
        raise PipelineError("predict: --probabilities needs --format csv (the index format has one number per line)")
    model = args.model
    if model is None:
        model = default_model_path(args.variant, args.models_dir)
        check_variant_checkpoint(args.variant, model)
    run_predict(
        model,
        args.images,
        args.out,
        args.variant or None,
        output=args.format,
        probabilities=args.probabilities,
        skip_non_images=args.skip_non_images,
        device=args.device,
    )


def _check_data(args: argparse.Namespace) -> None:
    import torch

    from pipeline.data.readers import UNLABELLED, read_split
    from pipeline.data.readers.image_folder import dataset_root
    from pipeline.training.normalizer import channel_stats

    root = dataset_root(args.path)
    print(f"dataset: {root}" + (f" (from {args.path})" if root != args.path else ""))
    train = None
    missing = []
    for split in ("train", "val", "test"):
        if not (root / split).is_dir():
            print(f"{split:<5}  missing")
            missing.append(split)
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
    if missing:  # the training reader refuses the same folder: check-data must not pass it
        raise PipelineError(f"{root}: no {' or '.join(missing)} folder; training needs train/, val/ and test/")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in STAGES:
        module = importlib.import_module(STAGES[argv[0]][0])
        status = module.main(argv[1:], prog=f"{PROG} {argv[0]}")
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
