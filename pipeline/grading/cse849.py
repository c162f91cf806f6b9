"""Grade a CSE 849 ``q1_test.txt`` (a student's or ours): format, accuracy, rubric points, shortcut use.

This is the project's re-implementation of the course's grading: the handout says only that
"Your output is automatically graded using a Python evaluation script", which is not public.

    cnn-pipeline grade-cse849 q1_test.txt --labels test_labels.csv [--metadata metadata.csv] [--json grade.json]
    cnn-pipeline grade-cse849 q1_test.txt --data data/composite      (labels and metadata of a dataset)

The handout's format: one predicted class index (an integer 0-9) per line, one line per test
image, in the test folder's sorted file-name order. The labels are ``filename,label``
(``test_labels.csv``), sorted by file name here to match that order. Any deviation (a
non-integer, a class outside 0-9, too few or too many lines, a duplicate or a
non-integer label) is an error naming the file and line; nothing is graded then.

Points follow the handout's rubric ("20 points for the accuracy of your prediction on test
set", ``references/handout_results.yaml``: >= 75% 20 points, ... < 60% 0). When the composite
``metadata.csv`` is there (this pipeline builds one; the course's zip has none; it is read
as the evaluate stage reads it, so a test file missing from it is an error), the file
is also split by whether the pasted MNIST digit agrees with the label: a model that reads
the digit instead of the CIFAR-10 image is right where they agree and wrong where they
disagree, and predicts the digit's class there (``shortcut_rate``; a model that ignores
the digit spreads its errors over the other classes: about ``(1 - accuracy) / 9``).

``--data`` takes the labels from a dataset (folder, its parent or its .zip, as the
``image_folder`` reader finds it). The course's own zip has no test labels: then there
is nothing to grade, and the result says so (``graded: false`` with the reason) instead
of failing, so the ``grade_cse849`` stage also runs on the course's data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from pipeline.core.cli import run_stage
from pipeline.core.errors import DataError
from pipeline.core.io import check_outputs, rounded, write_json
from pipeline.core.schemas import check
from pipeline.data.common.formats import METADATA, TEST_LABELS
from pipeline.data.readers.image_folder import composite_digit_labels, dataset_root, read_test_labels
from pipeline.grading.schemas import Grade
from pipeline.inference.metrics import shortcut_metrics

N_CLASSES = 10
HANDOUT_RESULTS = Path(__file__).resolve().parents[2] / "references" / "handout_results.yaml"
DEFAULT_DATA = Path("data/composite")
#: A shortcut rate from which the summary calls it shortcut use: a model that ignores the
#: digit predicts the digit's class at about (1 - accuracy) / 9, under 7% for any model
#: above the handout's lowest tier (60%); 30% is well clear of that.
SHORTCUT_SUSPECT_RATE = 0.3


def read_predictions(path: str | Path, n_classes: int = N_CLASSES) -> list[int]:
    """The class indices of a prediction file; DataError naming the line of the first bad one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors write one) is no index
    except FileNotFoundError:
        raise DataError(f"{path}: prediction file not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (expected one class index per line)") from None
    predictions = []
    for number, line in enumerate(text.splitlines(), 1):
        value = line.strip()
        if not value.isdigit() or not 0 <= int(value) < n_classes:
            raise DataError(f"{path}: line {number}: {line!r} is not a class index 0-{n_classes - 1}")
        predictions.append(int(value))
    if not predictions:
        raise DataError(f"{path}: empty (expected one class index per line)")
    return predictions


def load_rubric(path: str | Path = HANDOUT_RESULTS) -> dict:
    """The handout's test-accuracy rubric (``cse849.grading``): tiers highest first."""
    grading = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["cse849"]["grading"]
    return {"max_points": grading["max_points"], "tiers": sorted(grading["tiers"], key=lambda t: -t["min_accuracy"])}


def rubric_points(accuracy: float, rubric: dict) -> int:
    return next(t["points"] for t in rubric["tiers"] if accuracy >= t["min_accuracy"])


def grade_prediction_file(
    predictions: str | Path, labels: str | Path, metadata: str | Path | None = None, rubric: dict | None = None
) -> dict:
    """Accuracy, rubric points and (with digit labels) the shortcut figures of a prediction file."""
    predicted = read_predictions(predictions)
    by_file = read_test_labels(labels)
    files = sorted(by_file)
    truth = [by_file[f] for f in files]
    if len(predicted) != len(truth):
        raise DataError(
            f"{predictions}: {len(predicted)} lines, but {labels} has {len(truth)} test images "
            f"(expected one line per image, in sorted file-name order)"
        )
    rubric = rubric or load_rubric()
    predicted_t, truth_t = torch.tensor(predicted), torch.tensor(truth)
    accuracy = float((predicted_t == truth_t).double().mean())
    result = {
        "predictions": str(predictions),
        "labels": str(labels),
        "images": len(truth),
        "correct": int((predicted_t == truth_t).sum()),
        "accuracy": rounded(accuracy),
        "points": rubric_points(accuracy, rubric),
        "max_points": rubric["max_points"],
        "shortcut": None,
        "graded": True,
    }
    # The composite's digit per test file, read as the evaluate stage reads it; None without metadata.
    digits = composite_digit_labels(Path(metadata), "test", files) if metadata is not None else None
    if digits is not None:
        result["shortcut"] = shortcut_metrics(truth_t, predicted_t, digits)
    return result


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def format_grade(result: dict) -> str:
    if not result["graded"]:
        return f"{result['predictions']}: not graded: {result['reason']}"
    lines = [
        f"{result['predictions']}: {result['correct']}/{result['images']} correct, accuracy "
        + f"{_percent(result['accuracy'])} -> {result['points']}/{result['max_points']} points (the handout's rubric)"
    ]
    s = result["shortcut"]
    if s is None:
        lines.append("shortcut check skipped: no composite metadata.csv with the test images' digit labels")
    else:
        lines.append(
            f"digit agrees with the label ({s['agree_count']} images): {_percent(s['agree_accuracy'])} correct; "
            f"disagrees ({s['disagree_count']}): {_percent(s['disagree_accuracy'])} correct"
        )
        if s["shortcut_rate"] is not None:
            verdict = (
                "the predictions follow the digit: the model uses the shortcut"
                if s["shortcut_rate"] >= SHORTCUT_SUSPECT_RATE
                else "no sign that the model reads the digit"
            )
            ignoring = (1 - result["accuracy"]) / 9  # wrong predictions spread over the 9 other classes
            lines.append(
                f"where they disagree, {_percent(s['shortcut_rate'])} of predictions are the digit's class "
                f"(a model that ignores the digit: about {_percent(ignoring)}): {verdict}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog or "cnn-pipeline grade-cse849",
        description="Grade a CSE 849 q1_test.txt (a student's or ours): its format, accuracy and rubric points, "
        "and whether the predictions follow the planted digit (the shortcut).",
    )
    parser.add_argument("predictions", type=Path, help="q1_test.txt: one class index per line")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--labels", type=Path, help=f"filename,label CSV (default: {DEFAULT_DATA / TEST_LABELS})")
    source.add_argument("--data", type=Path, help=f"a dataset folder or .zip holding {TEST_LABELS} (and {METADATA})")
    parser.add_argument(
        "--metadata",
        type=Path,
        default=None,
        help=f"composite {METADATA} with digit labels (default: the one beside the labels, if any)",
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON")
    args = parser.parse_args(argv)

    def work() -> None:
        labels = (
            dataset_root(args.data) / TEST_LABELS
            if args.data is not None
            else args.labels or DEFAULT_DATA / TEST_LABELS
        )
        if args.json:  # before any work: not an input (the predictions), not /dev/stdout or another special file
            inputs = {"predictions": args.predictions, "--labels": labels, "--metadata": args.metadata}
            check_outputs([args.json], inputs)
        if args.data is not None and not labels.is_file():
            result = {
                "predictions": str(args.predictions),
                "graded": False,
                "reason": f"{args.data} has no {TEST_LABELS} (the course's data ships without test labels)",
            }
        else:
            result = grade_prediction_file(args.predictions, labels, args.metadata or labels.parent / METADATA)
        print(format_grade(result))
        if args.json:
            write_json(args.json, check(result, Grade, str(args.json)))  # the shape the report reads

    run_stage(work)


if __name__ == "__main__":
    main()
