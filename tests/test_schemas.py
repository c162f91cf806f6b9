"""The report's input schemas: every committed file has its schema's shape, and a file that
does not is refused naming the file and the key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.analysis.schemas import Comparison
from pipeline.core.schemas import Metrics, SchemaError, SeedStudyRuns, check
from pipeline.grading.schemas import Grade
from pipeline.inference.schemas import Evaluation, Shortcut
from pipeline.report.inputs import Inputs
from pipeline.report.schemas import SCHEMAS, schema_for
from tests.fake_reports import build_fake_repo, write_json

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "reports"
COMMITTED = sorted(p.relative_to(REPORTS).as_posix() for p in REPORTS.rglob("*.json"))


@pytest.mark.parametrize("rel", [r for r in COMMITTED if schema_for(r) is not None])
def test_every_committed_report_file_has_its_schemas_shape(rel):
    check(json.loads((REPORTS / rel).read_text(encoding="utf-8")), schema_for(rel), rel)


def test_every_schema_describes_a_committed_file():
    """A renamed output would leave its schema matching nothing: the report would read it unchecked."""
    unused = [pattern for pattern, _ in SCHEMAS if not any(re.fullmatch(pattern, rel) for rel in COMMITTED)]
    assert unused == []


def test_paths_find_their_schema():
    assert schema_for("prac5/metrics.json") is Metrics
    assert schema_for("prac5/eval/metrics.json") is not Metrics  # the evaluation's own
    assert schema_for("seed_study/runs/prac5.json") is SeedStudyRuns
    assert schema_for("data/stats.json") is None


@pytest.mark.parametrize(
    "value, message",
    [
        ({"test_accuracy": 0.9, "test_loss": [0.1]}, r"where: test_loss: expected float, got \[0\.1\]"),
        ({"test_accuracy": "0.9", "test_loss": 0.1}, r"where: test_accuracy: expected float, got '0\.9'"),
        ({"test_accuracy": True, "test_loss": 0.1}, r"test_accuracy: expected float, got True"),
        ({"test_accuracy": 0.9, "test_loss": 0.1, "val_loss": None}, r"val_loss: expected float, got None"),
        ([0.9], r"where: expected an object \(Metrics\), got list"),
    ],
)
def test_a_file_off_its_schema_is_refused_naming_the_key(value, message):
    with pytest.raises(SchemaError, match=message):
        check(value, Metrics, "where")


def test_a_missing_key_is_named_with_its_path():
    side = {"variant": "a", "test_accuracy": 0.9, "test_loss": 0.1}  # no parameters
    row = {"title": "t", "a": side, "b": side, "accuracy_diff_points": 0.0, "test_loss_diff": 0.0, "verdict": "v"}
    mcnemar = {"images": 10, "a_only_correct": 1, "b_only_correct": 0, "p_value": 1.0}
    row |= {"fair": True, "confounds": [], "mcnemar": mcnemar}
    with pytest.raises(SchemaError, match=r"comparisons/x\.json: a\.parameters: missing"):
        check({**row, "parameter_ratio": 1.0}, Comparison, "comparisons/x.json")


def test_the_unlabelled_test_splits_shapes_are_accepted():
    """The course's CSE 849 zip has no test labels: train and evaluate say so instead of test_* (README)."""
    check({"test_labelled": False, "val_accuracy": 0.71, "val_loss": 0.9}, Metrics, "metrics.json")
    averages = {"precision": 0.7, "recall": 0.7, "f1": 0.7}
    evaluation = {"misclassified": 3, "macro": averages, "per_class": {}, "val_accuracy": 0.7, "val_examples": 10}
    check({**evaluation, "notes": ["the test split is unlabelled"]}, Evaluation, "eval/metrics.json")
    check({"graded": False, "reason": "no test labels"}, Grade, "grade.json")
    graded = {"graded": True, "correct": 7, "images": 10, "accuracy": 0.7, "points": 15, "max_points": 20}
    check({**graded, "shortcut": None}, Grade, "grade.json")  # labels without the composite's metadata


def test_numbers_nulls_and_extra_keys():
    check(
        {"test_accuracy": 1, "test_loss": 0.0, "epochs_run": 3}, Metrics, "m"
    )  # an int is a JSON number; extras allowed
    shortcut = {"agree_accuracy": None, "agree_count": 0, "disagree_accuracy": 0.5, "disagree_count": 2}
    check({**shortcut, "gap_points": None, "shortcut_rate": 0.25}, Shortcut, "s")  # null where a rate is undefined
    with pytest.raises(SchemaError, match=r"s\.agree_count: expected int, got 0\.5"):
        check(
            {"s": {**shortcut, "agree_count": 0.5, "gap_points": None, "shortcut_rate": 0.1}}, dict[str, Shortcut], "s"
        )


def test_the_report_refuses_an_input_off_its_schema(tmp_path):
    root = build_fake_repo(tmp_path / "repo")
    path = root / "reports" / "hku_simplecnn" / "metrics.json"
    write_json(path, {**json.loads(path.read_text(encoding="utf-8")), "test_accuracy": "high"})
    with pytest.raises(SchemaError, match=r"hku_simplecnn/metrics\.json: test_accuracy: expected float, got 'high'"):
        Inputs(root).json("hku_simplecnn/metrics.json")
