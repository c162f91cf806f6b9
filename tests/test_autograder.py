"""The HKU A3 autograder on any submission: planted faults lose exactly their question's points.

Every submission here is ``tests/submissions/plain_layers.py`` (a plain, correct solution,
80/80) with at most one planted fault, graded through the sandbox in a separate process.
Questions a test does not need are left out to keep it quick; the ones kept show that a
fault costs its own question and nothing else.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.grading import cases, hku
from pipeline.grading.sandbox import MAX_LOST_PROCESSES, grade_submission
from pipeline.grading.scoring import format_summary

PLAIN = Path(__file__).parent / "submissions" / "plain_layers.py"
FAST = {"case_timeout": 3.0, "import_timeout": 60.0}


def planted(tmp_path: Path, fault: str | None = None, new: str = "", prefix: str = "", name: str = "layers.py") -> Path:
    """The plain submission with the line marked ``# FAULT:<fault>`` replaced by ``new`` (same indentation)."""
    lines = PLAIN.read_text(encoding="utf-8").splitlines()
    if fault is not None:
        marked = [i for i, line in enumerate(lines) if line.endswith(f"# FAULT:{fault}")]
        assert len(marked) == 1, f"fault marker {fault!r} not found exactly once"
        indent = lines[marked[0]][: len(lines[marked[0]]) - len(lines[marked[0]].lstrip())]
        lines[marked[0] : marked[0] + 1] = [indent + part for part in new.splitlines()]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(prefix + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def scores(results: dict) -> dict[str, int]:
    return {q: results[q]["score"] for q in cases.QUESTIONS if q in results}


def test_plain_submission_scores_full_marks(tmp_path):
    results = grade_submission(planted(tmp_path), **FAST)
    assert scores(results) == {"q1": 20, "q2": 20, "q3": 20, "q4": 20}
    assert results["total"] == results["max_total"] == 80
    assert results["import_error"] is None and results["forbidden_uses"] == []


def test_projects_own_layers_score_full_marks():
    results = grade_submission(hku.PROJECT_LAYERS, **FAST)
    assert results["total"] == 80, results
    assert all(results[q]["passed"] == results[q]["total"] >= 40 for q in cases.QUESTIONS)


@pytest.mark.parametrize(
    ("fault", "new", "questions", "broken", "reason"),
    [
        # padding ignored: every padded convolution has the wrong output size
        ("padding", "cols = F.unfold(x, (kh, kw), stride=(sh, sw))", ["q1", "q2"], "q2", "raised RuntimeError"),
        # ties split between equal maxima (amax): gradients differ from torch's
        ("ties", "out = cols.amax(dim=1)", ["q3", "q4"], "q3", "grad input"),
        # log-sum-exp without the max shift: overflows at logits of 1e4
        ("unstable", "shifted = logits", ["q3", "q4"], "q4", "non-finite"),
    ],
)
def test_a_planted_fault_costs_exactly_its_question(tmp_path, fault, new, questions, broken, reason):
    results = grade_submission(planted(tmp_path, fault, new), questions, **FAST)
    for q in questions:
        if q == broken:
            assert 0 <= results[q]["score"] < 20 and results[q]["failed"] > 0
            assert any(reason in f["reason"] for f in results[q]["failures"]), results[q]["failures"]
        else:
            assert results[q]["score"] == 20, (q, results[q]["failures"])
    assert results["total"] == sum(scores(results).values())


def test_an_import_error_scores_zero_and_is_named(tmp_path):
    results = grade_submission(planted(tmp_path, prefix="import no_such_module_for_grading\n"), ["q1", "q4"], **FAST)
    assert scores(results) == {"q1": 0, "q4": 0}
    assert "ModuleNotFoundError" in results["import_error"] and "no_such_module_for_grading" in results["import_error"]
    assert "did not import" in results["q1"]["failures"][0]["reason"]


def test_an_infinite_loop_times_out_and_the_grader_goes_on(tmp_path):
    path = planted(tmp_path, "ties", "while True:\n    pass")
    results = grade_submission(path, ["q3", "q4"], case_timeout=2.0)
    assert results["q3"]["score"] == 0 and results["q4"]["score"] == 20
    reasons = [f["reason"] for f in results["q3"]["failures"]]
    assert reasons[:MAX_LOST_PROCESSES] == ["timed out: no result after 2 s"] * MAX_LOST_PROCESSES
    assert "abandoned" in reasons[MAX_LOST_PROCESSES]


def test_sys_exit_in_a_layer_costs_that_question_only(tmp_path):
    path = planted(tmp_path, "exit", "import sys\nsys.exit(3)")
    results = grade_submission(path, ["q1", "q4"], **FAST)
    assert results["q1"]["score"] == 0 and results["q4"]["score"] == 20
    assert results["q1"]["failures"][0]["reason"] == "the process ended during this case (exit code 3)"


def test_a_flood_of_output_fails_the_case(tmp_path):
    path = planted(
        tmp_path, "unstable", 'print("x" * 100_000)\nshifted = logits - logits.max(dim=1, keepdim=True).values'
    )
    results = grade_submission(path, ["q4"], **FAST)
    assert results["q4"]["score"] == 0
    assert "printed" in results["q4"]["failures"][0]["reason"]
    assert results["output_sample"].startswith("xxxx") and len(results["output_sample"]) < 500


def test_garbage_on_the_result_channel_fails_the_case(tmp_path):
    """The worker's result descriptor is inherited by the submission's code: writing to it is caught."""
    path = planted(
        tmp_path, "exit", 'import os, sys\nos.write(int(sys.argv[2]), b"not json\\n")\ny = x @ self.weight.t()'
    )
    results = grade_submission(path, ["q1", "q4"], **FAST)
    assert results["q1"]["score"] == 0 and results["q4"]["score"] == 20
    assert results["q1"]["failures"][0]["reason"] == "the submission wrote into the grader's result channel"


def test_a_forbidden_call_costs_its_question_and_names_the_line(tmp_path):
    """The handout: "Using any other dependencies beyond this scope will be discounted": a correct loss
    computed with torch.logsumexp passes every case and still scores 0 on q4 (and only q4)."""
    path = planted(
        tmp_path,
        "unstable",
        "shifted = logits - torch.logsumexp(logits, dim=1, keepdim=True)\n"
        "shifted = shifted + shifted.exp().sum(dim=1, keepdim=True).log()",
    )
    line = 1 + path.read_text().splitlines().index(
        "        shifted = logits - torch.logsumexp(logits, dim=1, keepdim=True)"
    )
    results = grade_submission(path, ["q3", "q4"], **FAST)
    q4 = results["q4"]
    assert (q4["cases_score"], q4["deducted"], q4["score"]) == (20, 20, 0)
    assert f"line {line}: uses torch.logsumexp" in q4["forbidden"]
    assert any(u.startswith(f"line {line}: calls torch.logsumexp (seen at run time") for u in q4["forbidden"])
    assert results["q3"]["score"] == 20 and results["q3"]["forbidden"] == [] and results["total"] == 20
    assert "20 point(s) deducted" in format_summary(results)


def test_a_missing_class_fails_its_question(tmp_path):
    source = PLAIN.read_text(encoding="utf-8").replace("class CustomMaxPool2D(", "class MaxPool(")
    path = tmp_path / "layers.py"
    path.write_text(source, encoding="utf-8")
    results = grade_submission(path, ["q3"], **FAST)
    assert results["q3"]["score"] == 0
    assert results["q3"]["failures"][0]["reason"] == "layers.py defines no class CustomMaxPool2D"


def test_a_folder_of_submissions_gives_one_csv_row_per_student(tmp_path, capsys):
    folder = tmp_path / "submissions"
    planted(folder, name="alice/layers.py")
    planted(folder, "ties", "out = cols.amax(dim=1)", name="bob.py")
    planted(folder, prefix="import no_such_module_for_grading\n", name="carol.py")
    (folder / "notes.txt").write_text("not a submission")
    table = tmp_path / "grades.csv"
    assert (
        hku.main(["--submissions", str(folder), "-q", "q3", "--csv", str(table), "--json", str(tmp_path / "all.json")])
        == 0
    )
    rows = list(csv.DictReader(table.open()))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    assert rows[0]["q3"] == "20" and int(rows[1]["q3"]) < 20 and rows[2]["q3"] == "0"
    assert [r["total"] for r in rows] == [rows[0]["q3"], rows[1]["q3"], "0"]
    assert rows[0]["q1"] == "" and rows[2]["import_error"].startswith("ModuleNotFoundError")
    assert set(json.loads((tmp_path / "all.json").read_text())) == {"alice", "bob", "carol"}
    assert "[3/3] carol: 0/20" in capsys.readouterr().err


def test_cli_exit_codes_and_usage_errors(tmp_path, capsys):
    assert hku.main(["--submission", str(planted(tmp_path)), "-q", "q4"]) == 0
    assert "q4         20/20" in capsys.readouterr().out
    assert hku.main(["--submission", str(planted(tmp_path, "unstable", "shifted = logits")), "-q", "q4"]) == 3
    assert hku.main(["--submission", str(tmp_path / "missing.py")]) == 1  # as every command's missing file
    assert "missing.py: submission not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        hku.main(["-q", "q9"])
    assert "unknown question 'q9'" in capsys.readouterr().err


def test_a_case_draws_the_same_tensors_alone_or_in_sequence():
    """The sandbox restarts after a lost case: case i must not depend on the cases before it."""
    import torch

    first = torch.randn(5, generator=cases.case_generator("q2", 7))
    for i in range(7):
        torch.randn(100, generator=cases.case_generator("q2", i))
    assert torch.equal(torch.randn(5, generator=cases.case_generator("q2", 7)), first)
    assert not torch.equal(torch.randn(5, generator=cases.case_generator("q2", 8)), first)
    assert [c.description for c in cases.question_cases("q2")] == [c.description for c in cases.question_cases("q2")]


def test_autograde_stage_writes_metrics(tmp_path):
    from pipeline.stages import autograde

    out = tmp_path / "reports" / "autograder.json"
    autograde.main(["--out", str(out)])
    data = json.loads(out.read_text())
    assert data["total"] == 80 and data["max_total"] == 80 and data["forbidden_uses"] == 0
    for q in ("q1", "q2", "q3", "q4"):
        assert set(data[q]) == {"score", "max", "passed", "total"}
        assert data[q]["score"] == 20


def test_the_worker_pays_torchs_one_off_costs_before_the_first_timed_case():
    """A process's first backward with an explicit gradient imports sympy (~0.5 s here, against ~2 ms
    per case afterwards): the worker's warm-up does it before any case's clock starts."""
    code = (
        "import sys, torch; from pipeline.grading.worker import warm_up; "
        "before = 'sympy' in sys.modules; warm_up(); print(before, 'sympy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_the_worker_measures_each_cases_output_itself(tmp_path):
    """What a case printed is the difference of the sizes the worker reports at its start and done:
    a fast case's two events reach the sandbox in one read, after the printing (a race that let a
    flood of output pass now and then when the sandbox measured on reading)."""
    path = planted(tmp_path, "unstable", 'print("x" * 99)\nshifted = logits - logits.max(dim=1, keepdim=True).values')
    read_fd, write_fd = os.pipe()
    with open(tmp_path / "captured.txt", "wb") as capture:
        subprocess.run(
            [sys.executable, "-m", "pipeline.grading.worker", str(path), str(write_fd), "0", "1024", "q4:0-2"],
            stdout=capture,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            check=True,
            timeout=120,
        )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as channel:
        events = [json.loads(line) for line in channel.read().splitlines()]
    starts = [e["output"] for e in events if e["event"] == "start"]
    dones = [e["output"] for e in events if e["event"] == "done"]
    assert len(starts) == len(dones) == 3
    assert [d - s for s, d in zip(starts, dones)] == [100, 100, 100]  # 99 x's and a newline per case


def test_a_layer_that_allocates_without_end_fails_with_out_of_memory(tmp_path):
    """The worker caps its own address space: the case fails in its own process, the machine keeps its
    memory (the audit's A_mem_case was stopped only by the kernel's OOM killer)."""
    path = planted(tmp_path, "exit", "blocks = []\nwhile True:\n    blocks.append(torch.ones(2**25))")
    results = grade_submission(path, ["q1", "q4"], memory_limit=256, **FAST)
    assert results["q1"]["score"] == 0 and results["q4"]["score"] == 20
    assert "out of memory" in results["q1"]["failures"][0]["reason"], results["q1"]["failures"][0]
    assert results["sandbox"]["memory_limit_mib"] == 256
