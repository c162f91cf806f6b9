"""The HKU A3 grader's rules without a sandbox: what the source inspection attributes to which question,
what the run-time monitor records, how a class is called, and the class table's resume (all in-process)."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pipeline.grading import cases, hku
from pipeline.grading.inspection import inspect_source
from pipeline.grading.monitor import ForbiddenCalls, structure_uses

CLASSES = {cases.QUESTIONS[q].layer: q for q in cases.QUESTIONS}
HEADER = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"


def uses(source: str) -> list[tuple[int, str, tuple]]:
    return [(u.line, u.use, u.questions) for u in inspect_source(HEADER + source, CLASSES)]


def test_a_use_costs_the_questions_whose_class_reaches_it():
    source = (
        "def helper(x):\n    return F.softmax(x, 1)\n"  # line 4-5: reached by q4 only
        "def unused(x):\n    return F.conv2d(x, x)\n"  # line 6-7: reached by nobody
        "class CustomLinear(nn.Module):\n    pass\n"
        "class CustomCrossEntropyLoss(nn.Module):\n    def forward(self, x, t):\n        return helper(x)\n"
    )
    assert uses(source) == [
        (5, "uses torch.nn.functional.softmax", ("q4",)),
        (7, "uses torch.nn.functional.conv2d", ()),  # listed, costs nothing
    ]


def test_code_that_runs_at_import_costs_every_question_but_the_main_guard_nothing():
    source = (
        "import os\nos.system('true')\n"
        "class CustomLinear(nn.Module):\n    pass\n"
        "if __name__ == '__main__':\n    print(F.linear(torch.ones(1), torch.ones(1)))\n"
    )
    found = uses(source)
    assert {q for _, _, qs in found for q in qs} == {"q1", "q2", "q3", "q4"}
    assert {line for line, _, _ in found} == {4, 5}  # the import and its use; nothing from the guard


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Base = nn.Conv2d\nclass CustomConv2D(Base):\n    pass\n", "subclasses torch.nn.Conv2d"),
        ("class CustomConv2D(nn.Module):\n    def forward(self, x):\n        return getattr(F, 'conv2d')(x, x)\n",
         "uses torch.nn.functional.conv2d (through getattr)"),
        ("class CustomConv2D(nn.Module):\n    def forward(self, x):\n        return getattr(F, 'c' + 'onv2d')(x)\n",
         "looks up an attribute of torch.nn.functional by a computed name"),
        ("class CustomConv2D(nn.Module):\n    def __init__(self):\n        self.c = nn.Conv2d(1, 1, 1)\n",
         "uses torch.nn.Conv2d"),
        ("class CustomConv2D(nn.Module):\n    def forward(self, x):\n        return torch.ops.aten.conv2d(x)\n",
         "reaches torch.ops (torch's internals)"),
        ("class CustomConv2D(nn.Module):\n    def forward(self, x):\n        return eval('x')\n",
         "calls eval() (code built at run time)"),
        ("class CustomConv2D(nn.Module):\n    def forward(self, x):\n        nn.init.zeros_(x)\n",
         "uses torch.nn.init.zeros_ outside __init__/reset_parameters"),
    ],
)  # fmt: skip
def test_each_way_to_a_forbidden_operation_is_named_and_attributed(source, expected):
    assert (expected, ("q2",)) in [(use, qs) for _, use, qs in uses(source)]


def test_the_allowed_operations_pass():
    source = (
        "import math\n"
        "class CustomConv2D(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.w = nn.Parameter(torch.empty(3))\n"
        "        nn.init.uniform_(self.w, -1 / math.sqrt(3), 1 / math.sqrt(3))\n"
        "    def forward(self, x):\n        c = F.unfold(x, 3).unfold(1, 2, 1)\n"
        "        y = torch.einsum('ij,jk->ik', c, c) @ c\n"
        "        return torch.stack([y.max(dim=1).values.exp().log(), torch.where(y > 0, y, -y).sum()])\n"
    )
    assert uses(source) == []


def test_the_monitor_records_forbidden_calls_with_the_line_and_nothing_else():
    name = "con" + "v2d"
    x, w = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3)
    with ForbiddenCalls(__file__) as monitor:
        F.unfold(x, 3)
        torch.einsum("ij->j", x[0, 0]) @ x[0, 0]
        vars(F)[name](x, w)  # the line below is the one reported
        line = __import__("sys")._getframe().f_lineno - 1
        torch.ops.aten.max_pool2d(x, [2, 2])
        nn.Linear(4, 2)(x)
    assert monitor.uses == [
        f"line {line}: calls torch.nn.functional.conv2d (seen at run time)",
        f"line {line + 2}: calls torch.ops.aten::max_pool2d (seen at run time)",
        f"line {line + 3}: calls torch._C._nn.linear (seen at run time)",
    ]


def test_the_monitor_sees_torch_layers_subclassed_or_held():
    class Thin(nn.CrossEntropyLoss):
        pass

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.parts = nn.ModuleList([nn.Conv2d(1, 1, 1)])

    assert structure_uses(Thin()) == ["subclasses torch.nn.CrossEntropyLoss (seen at run time)"]
    assert structure_uses(Holder()) == ["holds a torch.nn.Conv2d as self.parts.0 (seen at run time)"]


def test_a_class_is_called_as_the_handout_names_its_arguments():
    """Keywords stride/padding when the constructor has them, else by position; an extra's keyword is
    looked for before it runs (nn.Module's own __init__ takes none)."""

    class Positional(nn.Module):
        def __init__(self, c_in, c_out, k, s=1, p=0):
            super().__init__()
            self.args = (c_in, c_out, k, s, p)

    class Plain(nn.Module):
        pass

    case = next(c for c in cases.question_cases("q2") if dict(c.kwargs).get("padding") == 1 and not c.extra)
    assert cases.construct(Positional, case).args == (*case.args, case.kwargs[0][1], 1)
    assert cases.missing_keywords(Positional, ["stride", "bias"]) == ["stride", "bias"]
    assert cases.missing_keywords(Plain, ["reduction"]) == ["reduction"]
    assert cases.missing_keywords(nn.CrossEntropyLoss, ["reduction"]) == []


def test_base_cases_use_only_what_the_handout_describes():
    for q in cases.QUESTIONS:
        base = [c for c in cases.question_cases(q) if not c.extra]
        assert len(base) >= 40
        for c in base:
            assert all(isinstance(v, int) for v in (*c.args, *dict(c.kwargs).values())), c.description
            assert {k for k, _ in c.kwargs} <= {"stride", "padding"}, c.description
            assert len(c.input_shape) == {"q1": 2, "q2": 4, "q3": 4, "q4": 2}[q], c.description


def test_the_comparison_judges_decoded_results():
    case = cases.question_cases("q1")[0]
    expected = cases.reference_results(case, cases.case_generator("q1", 0))
    good = {"tensors": dict(expected["tensors"])}
    assert cases.compare_results(good, expected) == []
    wrong = {"tensors": {**expected["tensors"], "output": expected["tensors"]["output"] * 0}}
    assert cases.compare_results(wrong, expected)[0].startswith("output: max abs error")
    assert cases.compare_results({"tensors": {"output": "a list"}}, expected) == ["output: expected a tensor, got str"]
    assert cases.compare_results({"raised": "TypeError: x"}, expected) == ["raised TypeError: x"]


def test_resume_skips_graded_students_and_records_the_one_that_killed_the_grader(tmp_path, capsys):
    """What a run killed mid-class leaves (the rows so far and the marker), continued by --resume."""
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("alice", "mallory", "zed"):
        (folder / f"{name}.py").write_text("class CustomMaxPool2D:\n    pass\n")
    table = tmp_path / "grades.csv"
    table.write_text(",".join(hku.CSV_COLUMNS) + "\nalice,,,20,,20,20,0,0,,alice.py\n")
    (tmp_path / "grades.csv.grading").write_text("mallory\n")
    graded = hku.grade_folder(folder, ["q3"], table, resume=True, case_timeout=5.0)
    assert list(graded) == ["zed"]  # alice kept, mallory not run again
    rows = {r["student"]: r for r in csv.DictReader(table.open())}
    assert list(rows) == ["alice", "mallory", "zed"]
    assert rows["alice"]["q3"] == "20" and rows["mallory"]["q3"] == "0"
    assert "killed while grading this submission" in rows["mallory"]["import_error"]
    assert not (tmp_path / "grades.csv.grading").exists()
    assert "mallory: the previous run was killed" in capsys.readouterr().err


def test_cli_refuses_bad_limits_and_a_folder_as_one_submission(tmp_path, capsys):
    for option in ("--case-timeout", "--memory-limit"):
        with pytest.raises(SystemExit):
            hku.main([option, "0"])
        assert "must be positive" in capsys.readouterr().err
    assert hku.main(["--submission", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err
