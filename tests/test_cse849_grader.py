"""Grading a CSE 849 prediction file: format errors by line, the handout's rubric, and shortcut detection."""

from __future__ import annotations

import json

import pytest

from pipeline import __main__ as cli
from pipeline.core.errors import DataError
from pipeline.grading.cse849 import (
    format_grade,
    grade_prediction_file,
    load_rubric,
    rubric_points,
)


def write_data(folder, labels, digits=None):
    """A composite-style test_labels.csv (written unsorted: the grader sorts by file name) and metadata.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i:05d}.png" for i in range(len(labels))]
    rows = list(zip(names, labels))[::-1]
    (folder / "test_labels.csv").write_text("filename,label\n" + "".join(f"{n},{y}\n" for n, y in rows))
    if digits is not None:
        meta = "split,filename,label,digit_label,cifar_index,mnist_index\n"
        meta += "".join(f"test,{n},{y},{d},0,0\n" for n, y, d in zip(names, labels, digits))
        (folder / "metadata.csv").write_text(meta)
    return folder / "test_labels.csv", folder / "metadata.csv"


def write_predictions(path, values):
    path.write_text("".join(f"{v}\n" for v in values))
    return path


def test_rubric_tiers_follow_the_seed():
    rubric = load_rubric()
    assert rubric["max_points"] == 20
    assert [rubric_points(a, rubric) for a in (0.80, 0.75, 0.7499, 0.70, 0.65, 0.6499, 0.60, 0.59, 0.0)] == [
        20,
        20,
        15,
        15,
        10,
        5,
        5,
        0,
        0,
    ]


def test_accuracy_points_and_an_honest_model(tmp_path):
    labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 2
    digits = [(y + 1) % 10 for y in labels]  # the digit never agrees
    labels_csv, metadata = write_data(tmp_path / "data", labels, digits)
    predicted = labels[:15] + [(y + 5) % 10 for y in labels[15:]]  # 15/20 right, none the digit's class
    result = grade_prediction_file(write_predictions(tmp_path / "q1_test.txt", predicted), labels_csv, metadata)
    assert (result["correct"], result["accuracy"], result["points"]) == (15, 0.75, 20)
    assert result["shortcut"]["shortcut_rate"] == 0.0
    text = format_grade(result)
    assert "75.00% -> 20/20 points" in text and "no sign that the model reads the digit" in text


def test_a_model_that_reads_the_digit_is_called_out(tmp_path):
    labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 2
    digits = labels[:10] + [(y + 3) % 10 for y in labels[10:]]  # agree on the first 10, disagree after
    labels_csv, metadata = write_data(tmp_path / "data", labels, digits)
    result = grade_prediction_file(write_predictions(tmp_path / "p.txt", digits), labels_csv, metadata)
    s = result["shortcut"]
    assert (s["agree_accuracy"], s["disagree_accuracy"], s["shortcut_rate"]) == (1.0, 0.0, 1.0)
    assert result["points"] == 0  # 50%
    assert "the model uses the shortcut" in format_grade(result)


def test_without_metadata_the_shortcut_check_is_skipped_with_a_note(tmp_path, capsys):
    labels_csv, _ = write_data(tmp_path / "course", [3, 1, 4])
    predictions = write_predictions(tmp_path / "q1_test.txt", [3, 1, 4])
    with pytest.raises(SystemExit) as exit_:
        cli.main(["grade-cse849", str(predictions), "--labels", str(labels_csv), "--json", str(tmp_path / "g.json")])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "3/3 correct" in out and "shortcut check skipped" in out
    assert json.loads((tmp_path / "g.json").read_text())["shortcut"] is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("1\n2\nseven\n", "line 3: 'seven' is not a class index 0-9"),
        ("1\n10\n2\n", "line 2: '10' is not a class index 0-9"),
        ("1\n-1\n2\n", "line 2: '-1' is not a class index 0-9"),
        ("1\n2\n", "2 lines, but"),
        ("1\n2\n3\n4\n", "4 lines, but"),
        ("", "empty"),
    ],
)
def test_format_errors_name_the_line(tmp_path, lines, message):
    labels_csv, _ = write_data(tmp_path / "data", [1, 2, 3])
    predictions = tmp_path / "q1_test.txt"
    predictions.write_text(lines)
    with pytest.raises(DataError, match=message):
        grade_prediction_file(predictions, labels_csv)


def test_bad_labels_are_refused_by_line(tmp_path):
    labels_csv = tmp_path / "test_labels.csv"
    predictions = write_predictions(tmp_path / "p.txt", [1, 2])
    labels_csv.write_text("filename,label\na.png,1\na.png,2\n")
    with pytest.raises(DataError, match="line 3: 'a.png' is listed twice"):
        grade_prediction_file(predictions, labels_csv)
    labels_csv.write_text("filename,label\na.png,1\nb.png,cat\n")
    with pytest.raises(DataError, match="line 3: label 'cat'"):
        grade_prediction_file(predictions, labels_csv)
    with pytest.raises(DataError, match="labels file not found"):
        grade_prediction_file(predictions, tmp_path / "missing.csv")


def test_metadata_missing_a_test_file_is_an_error_as_in_evaluate(tmp_path):
    labels_csv, metadata = write_data(tmp_path / "data", [1, 2, 3], digits=[1, 2, 3])
    metadata.write_text("\n".join(metadata.read_text().splitlines()[:-1]) + "\n")  # drop the last test row
    with pytest.raises(DataError, match="no test row for '00002.png'"):
        grade_prediction_file(write_predictions(tmp_path / "p.txt", [1, 2, 3]), labels_csv, metadata)
