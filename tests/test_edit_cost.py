"""The edit-cost measure (pipeline.devtools.edit_cost) on a tiny repository it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline.devtools import edit_cost

MODULES = (
    "pipeline/__init__.py",
    "pipeline/core.py",
    "pipeline/pkg/__init__.py",
    "pipeline/pkg/deep/leaf.py",
    "pipeline/pkgx.py",  # shares a prefix with the folder dep pipeline/pkg, not covered by it
    "pipeline/report.py",
    "pipeline/lonely.py",
    "benchmarks/bench.py",
)

# stage -> deps; data deps are mixed in, as in a real dvc.lock
LOCK = {
    "train@a": ["pipeline/__init__.py", "pipeline/core.py", "pipeline/pkg", "data/a"],
    "train@b": ["pipeline/__init__.py", "pipeline/core.py"],
    # the same file named twice (itself and its folder): still one rerun of the stage
    "evaluate@a": ["pipeline/__init__.py", "pipeline/pkg/", "pipeline/pkg/deep/leaf.py"],
    "bench_x": ["benchmarks/bench.py", "pipeline/core.py"],
    "report": ["pipeline/report.py", "pipeline/pkgx.py"],
}
TIMES = {"train@a": 600.0, "train@b": 300.0, "evaluate@a": 60.0, "bench_x": 240}  # report untimed


def make_repo(root: Path, lock: dict = LOCK, times: dict | None = None) -> Path:
    for module in MODULES:
        (root / module).parent.mkdir(parents=True, exist_ok=True)
        (root / module).write_text("x = 1\n")
    # bytecode is not a module, even when it sits under a covered folder
    (root / "pipeline/pkg/__pycache__").mkdir()
    (root / "pipeline/pkg/__pycache__/stale.py").write_text("")
    stages = {
        name: {"cmd": "python -m x", "deps": [{"path": p, "md5": "0"} for p in deps]} for name, deps in lock.items()
    }
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))
    (root / "reports").mkdir()
    doc = {"cpus": 2, "stages": TIMES if times is None else times}
    (root / "reports/timing.json").write_text(json.dumps(doc))
    return root


def costs(root: Path) -> dict[str, edit_cost.ModuleCost]:
    rows = edit_cost.module_costs(
        edit_cost.find_modules(root),
        edit_cost.load_lock_deps(root / "dvc.lock"),
        edit_cost.load_timings(root / "reports/timing.json"),
    )
    return {r.module: r for r in rows}


def test_folder_dep_covers_files_at_any_depth_but_not_a_name_sharing_its_prefix(tmp_path):
    rows = costs(make_repo(tmp_path))
    assert rows["pipeline/pkg/deep/leaf.py"].stages == ["evaluate@a", "train@a"]
    assert rows["pipeline/pkg/__init__.py"].stages == ["evaluate@a", "train@a"]
    assert rows["pipeline/pkgx.py"].stages == ["report"]
    assert "pipeline/pkg/__pycache__/stale.py" not in rows


def test_cost_sums_each_covering_stage_once(tmp_path):
    rows = costs(make_repo(tmp_path))
    # leaf.py is named twice by evaluate@a (file and folder): 600 + 60, not 600 + 2 * 60
    assert rows["pipeline/pkg/deep/leaf.py"].seconds == 660.0
    assert rows["pipeline/core.py"].seconds == 600 + 300 + 240
    assert rows["pipeline/core.py"].minutes == pytest.approx(19.0)
    assert rows["pipeline/lonely.py"].stages == [] and rows["pipeline/lonely.py"].seconds == 0


def test_a_stage_missing_from_timing_is_reported_not_counted_as_zero(tmp_path):
    root = make_repo(tmp_path)
    rows = costs(root)
    assert rows["pipeline/report.py"].untimed == ["report"]
    assert rows["pipeline/core.py"].untimed == []
    table = edit_cost.render(list(rows.values()), {}, markdown=True)
    assert "| `pipeline/report.py` | 0.0+ | report | no |" in table
    assert "covering stages with no time in timing.json (not counted): report" in table


def test_training_closures_and_thresholds(tmp_path):
    rows = list(costs(make_repo(tmp_path)).values())
    # train@a covers __init__, core and the two pkg files; train@b only two
    assert edit_cost.closure_sizes(rows, LOCK) == {"train@": 4, "bench_": 2}
    by_name = {r.module: r for r in rows}
    assert by_name["pipeline/core.py"].training and not by_name["benchmarks/bench.py"].training
    summary = edit_cost.summary_lines(rows, edit_cost.closure_sizes(rows, LOCK))
    assert "modules in one bench_ stage's closure (max over its stages): 2 (not training)" in summary
    # > 10 min: __init__, core, pkg x2 (all training); > 3 min adds bench.py (4.0 min, outside)
    assert "modules costing more than 10 min: 4 (0 outside training closures)" in summary
    assert "modules costing more than 3 min: 5 (1 outside training closures)" in summary
    assert "modules: 8; in some training closure: 4" in summary


def test_markdown_table_is_sorted_by_cost_and_groups_stage_kinds(tmp_path, capsys):
    assert edit_cost.main(["--root", str(make_repo(tmp_path)), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "- seconds from reports/timing.json (run of unknown date, 2 CPUs)" in out
    lines = [line for line in out.splitlines() if line.startswith("| `")]
    order = [line.split("`")[1] for line in lines]
    assert order[:2] == ["pipeline/core.py", "pipeline/__init__.py"]  # 19.0 min, then 16.0 min
    assert lines[0] == "| `pipeline/core.py` | 19.0 | bench_x, train@ x2 | yes |"
    # equal costs (0 s, the untimed report stage included) in name order
    assert order[-3:] == ["pipeline/lonely.py", "pipeline/pkgx.py", "pipeline/report.py"]
    assert lines[-3] == "| `pipeline/lonely.py` | 0.0 | - | no |"


def test_missing_lock_names_the_file(tmp_path, capsys):
    root = make_repo(tmp_path)
    (root / "dvc.lock").unlink()
    assert edit_cost.main(["--root", str(root)]) == 2
    assert f"{root / 'dvc.lock'}: no such file" in capsys.readouterr().err
    assert edit_cost.main(["--root", str(root), "--declared"]) == 2
    assert f"{root / 'dvc.yaml'}: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"cpus": 2}, 'no "stages" mapping'),
        ({"stages": ["train@a"]}, 'no "stages" mapping'),
        ({"stages": {"train@a": "600"}}, "\"stages\".train@a is '600', not a number"),
        ({"stages": {"train@a": True}}, '"stages".train@a is True, not a number'),
    ],
)
def test_bad_timing_names_the_file_and_key(tmp_path, doc, message):
    root = make_repo(tmp_path)
    (root / "reports/timing.json").write_text(json.dumps(doc))
    with pytest.raises(edit_cost.EditCostError, match="timing.json") as err:
        edit_cost.load_timings(root / "reports/timing.json")
    assert message in str(err.value)


def test_lock_without_stages_or_with_bad_deps_names_the_key(tmp_path):
    root = make_repo(tmp_path)
    (root / "dvc.lock").write_text("schema: '2.0'\n")
    with pytest.raises(edit_cost.EditCostError, match="dvc.lock: no 'stages' mapping"):
        edit_cost.load_lock_deps(root / "dvc.lock")
    (root / "dvc.lock").write_text("stages:\n  train@a:\n    deps: [pipeline/core.py]\n")
    with pytest.raises(edit_cost.EditCostError, match="stages.train@a.deps is not a list"):
        edit_cost.load_lock_deps(root / "dvc.lock")


def test_declared_reads_dvc_yaml_as_dvc_expands_it(tmp_path):
    """--declared: the deps of the next regeneration (a foreach and its interpolated folder)."""
    from dvc.repo import Repo

    root = make_repo(tmp_path)
    Repo.init(str(root), no_scm=True).close()
    (root / "params.yaml").write_text("variants:\n  a: {pkg: pkg}\n  b: {pkg: pkg/deep}\n")
    (root / "dvc.yaml").write_text(
        "stages:\n"
        "  train:\n"
        "    foreach: ${variants}\n"
        "    do:\n"
        "      cmd: python -m x ${key}\n"
        "      deps:\n"
        "        - pipeline/core.py\n"
        "        - pipeline/${item.pkg}\n"
    )
    (root / "dvc.lock").unlink()  # the last regeneration's record is not needed
    deps = edit_cost.load_declared_deps(root)
    assert deps == {
        "train@a": ["pipeline/core.py", "pipeline/pkg"],
        "train@b": ["pipeline/core.py", "pipeline/pkg/deep"],
    }
    # no capsys here: DVC's log handler keeps the stream it first sees, and capsys closes its own
    rows = edit_cost.module_costs(
        edit_cost.find_modules(root), deps, edit_cost.load_timings(root / "reports/timing.json")
    )
    out = edit_cost.render(rows, edit_cost.closure_sizes(rows, deps), markdown=True)
    assert "| `pipeline/core.py` | 15.0 | train@ x2 | yes |" in out
    assert "| `pipeline/pkg/deep/leaf.py` | 15.0 | train@ x2 | yes |" in out
    assert "| `pipeline/pkg/__init__.py` | 10.0 | train@a | yes |" in out
    assert "modules in one train@ stage's closure (max over its stages): 3" in out
