"""The HKU A3 autograder against submissions written to cheat (tests/submissions/adversarial/).

Each file's docstring says how it cheats and what it must score over all four questions
(the scores below, measured with ``python -m pipeline autograde --submissions
tests/submissions/adversarial``). A test grades only the questions that show the point
(a cheating question and, where the file has one, an honest one) to stay quick; each run
is a real sandboxed worker process.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.grading import hku
from pipeline.grading.sandbox import grade_submission, pid_namespace, worker_user

ADVERSARIAL = Path(__file__).parent / "submissions" / "adversarial"
FAST = {"case_timeout": 5.0, "import_timeout": 60.0}

#: file -> {question: the score it must get}; the questions a file cheats on score 0 with every
#: case passed (the deduction, not a failure), the others keep their 20 points.
EXPECTED = {
    "thin_subclasses.py": {"q1": 0, "q2": 0, "q3": 0, "q4": 0},  # 0/80 (was 79/80)
    "aliased_functional.py": {"q2": 0, "q3": 0, "q4": 20},  # 40/80
    "string_built.py": {"q1": 20, "q2": 0},  # 60/80
    "importlib_call.py": {"q3": 0, "q4": 20},  # 60/80
    "runtime_only.py": {"q3": 20, "q4": 0},  # 60/80
    "torch_internals.py": {"q1": 0, "q2": 0, "q4": 20},  # 40/80
    "held_module.py": {"q1": 0, "q4": 20},  # 60/80
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_cheating_question_loses_its_points_and_names_the_cheat(name):
    path = ADVERSARIAL / name
    expected = EXPECTED[name]
    results = grade_submission(path, list(expected), **FAST)
    assert {q: results[q]["score"] for q in expected} == expected, {q: results[q]["forbidden"] for q in expected}
    cheat_lines = {i for i, line in enumerate(path.read_text().splitlines(), 1) if "# CHEAT" in line}
    for q, points in expected.items():
        r = results[q]
        assert r["passed"] == r["total"] and r["cases_score"] == 20, (q, r["failures"])  # it works; it is deducted
        if points == 0:
            assert r["deducted"] == 20 and r["forbidden"], q
            named = {int(u.split(":")[0][5:]) for u in r["forbidden"] if u.startswith("line ")}
            assert named & cheat_lines, (q, r["forbidden"], cheat_lines)  # the report shows the offending line
        else:
            assert r["forbidden"] == [] and r["deducted"] == 0, (q, r["forbidden"])


def test_a_cheat_built_from_strings_is_caught_at_run_time_only():
    """``vars(F)["cross" + "_entropy"]`` has nothing for the source inspection to see."""
    path = ADVERSARIAL / "runtime_only.py"
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "# CHEAT q4" in text)
    results = grade_submission(path, ["q4"], **FAST)
    assert [u for u in results["forbidden_uses"] if "run time" not in u["use"]] == []
    assert results["q4"]["forbidden"] == [f"line {line}: calls torch.nn.functional.cross_entropy (seen at run time)"]


def test_replacing_the_graders_comparison_changes_nothing():
    """The reliability audit's A_cheat scored 80/80 with a CustomLinear returning zeros: the comparison now
    runs in the grading process, so q1 fails its cases, and the import of the grader's module (code that
    runs at import) costs every question."""
    results = grade_submission(ADVERSARIAL / "compare_replaced.py", ["q1", "q4"], **FAST)
    assert results["q1"]["passed"] == 0 and results["q1"]["cases_score"] == 0
    assert results["q4"]["cases_score"] == 20 and results["q4"]["score"] == 0
    assert any("imports pipeline.grading.cases" in u for u in results["q4"]["forbidden"])
    assert results["total"] == 0


def test_a_correct_file_written_to_the_handouts_text_scores_full_marks():
    """No reduction=, no bias=, no default pooling stride: 80/80; the extras it cannot take are skipped."""
    results = grade_submission(ADVERSARIAL / "handout_plain.py", **FAST)
    assert results["total"] == results["max_total"] == 80, results
    assert results["forbidden_uses"] == []
    assert results["q4"]["extras"]["skipped"] == ["the constructor takes no keyword reduction"]
    assert results["q1"]["extras"]["skipped"] == ["the constructor takes no keyword bias"]
    assert results["q3"]["extras"]["failed"] > 0  # tuple sizes and the default stride: reported, no points lost


def test_killing_the_grader_at_import_loses_no_grade_of_the_class(tmp_path):
    """The audit's A_killparent killed the grader and, in folder mode, every grade of the batch. The worker
    now runs where its signals cannot reach the grader (own PID namespace, or another user), and the
    table is written row by row."""
    if not pid_namespace(worker_user()[0]) and worker_user()[0] is None:
        pytest.skip("no PID namespace and not root here: a submission can kill the grader (--resume covers it)")
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("handout_plain.py", "kill_parent.py"):
        (folder / name).write_text((ADVERSARIAL / name).read_text())
    (folder / "zed.py").write_text((ADVERSARIAL / "handout_plain.py").read_text())
    table = tmp_path / "grades.csv"
    assert hku.main(["--submissions", str(folder), "-q", "q3", "--csv", str(table)]) == 0
    rows = {r["student"]: r for r in csv.DictReader(table.open())}
    assert list(rows) == ["handout_plain", "kill_parent", "zed"]
    assert rows["handout_plain"]["q3"] == rows["zed"]["q3"] == "20"
    assert rows["kill_parent"]["q3"] == "0" and rows["kill_parent"]["import_error"]
    assert not (tmp_path / "grades.csv.grading").exists()


def test_killing_the_parent_at_import_is_refused_with_the_same_reason_every_run():
    """``os.kill(os.getppid(), SIGKILL)`` ended the worker's supervisor, and the worker a moment later:
    before or after it reported its import, so the stated reason was, by timing, "ended while importing"
    or "ended between cases". Refused before the signal is sent, it is one reason, naming the line."""
    path = ADVERSARIAL / "kill_parent.py"
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "# CHEAT" in text)
    runs = [grade_submission(path, ["q1"], **FAST) for _ in range(3)]
    reasons = {r["import_error"] for r in runs}
    assert len(reasons) == 1, reasons
    reason = reasons.pop()
    assert reason.startswith("PermissionError: the submission tried to send SIGKILL to its parent process"), reason
    assert reason.endswith(f"(kill_parent.py:{line})"), reason
    assert [r["q1"]["score"] for r in runs] == [0, 0, 0]
    assert runs[0]["q1"]["failures"][0]["reason"] == f"the submission did not import: {reason}"


def test_a_signal_sent_around_the_refusal_reaches_nothing(tmp_path):
    """``ctypes`` bypasses the refusal of ``os.kill``: in its PID namespace the worker has left the
    supervisor's process group, so killing its own group reaches only itself (the namespace's init,
    which ignores it); the file imports and its cases run. (Before, the supervisor died and the
    worker with it: an import error.)"""
    if not pid_namespace(worker_user()[0]):
        pytest.skip("no PID namespace here: the worker's own process group is the only one it can reach")
    path = tmp_path / "ctypes_kill.py"
    prefix = "import ctypes, signal, time\nctypes.CDLL(None).kill(0, signal.SIGKILL)\ntime.sleep(0.5)\n"
    path.write_text(prefix + (ADVERSARIAL / "handout_plain.py").read_text())
    results = grade_submission(path, ["q1"], **FAST)
    assert results["import_error"] is None
    assert results["q1"]["passed"] == results["q1"]["total"] and results["q1"]["cases_score"] == 20
    assert results["q1"]["score"] == 0 and any("ctypes" in u for u in results["q1"]["forbidden"])
