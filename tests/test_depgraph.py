"""The dependency-graph checker (pipeline/devtools/depgraph/).

* unit tests on a tiny fake DVC repository built in tmp_path;
* ``test_repository_graph_is_honest``: the real dvc.yaml declares exactly the code each stage imports;
* a planted import on a copy of the real repository is reported for every evaluate@* stage.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from pipeline.devtools import depgraph
from pipeline.devtools.depgraph import Problem, check, entry_files, import_closure
from pipeline.report.inputs import stage_for

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- a fake repository
PARAMS = """\
variants:
  a:
    data: {format: fmt_a, path: data/a}
    model: {name: fam_a}
  b:
    data: {format: fmt_b, path: data/b}
    model: {name: fam_b}
"""

FILES = {
    "pipeline/__init__.py": "VERSION = '0'\n",  # code: a dep of every stage that imports the package
    "pipeline/stages/__init__.py": '"""Entry points."""\n',  # a package marker: not a dep
    "pipeline/helper.py": "import os\n\ndef helper():\n    return os.sep\n",
    "pipeline/late.py": "VALUE = 1\n",
    "pipeline/stages/train.py": """\
        import sys

        from pipeline.helper import helper
        from pipeline.models import create_model
        from pipeline.data.readers import read_split


        def main(argv):
            from pipeline import late  # an import inside a function
            return late.VALUE


        if __name__ == "__main__":
            main(sys.argv[1:])
        """,
    "pipeline/stages/show.py": "from pipeline.models import create_model\n",
    "pipeline/models/__init__.py": """\
        import importlib


        def create_model(name):
            return importlib.import_module(f"pipeline.models.{name}").build()
        """,
    "pipeline/models/fam_a/__init__.py": "from . import net\n\ndef build():\n    return net.Net()\n",
    "pipeline/models/fam_a/net.py": "class Net:\n    pass\n",
    "pipeline/models/fam_b/__init__.py": "def build():\n    return None\n",
    "pipeline/data/__init__.py": "",
    "pipeline/data/readers/__init__.py": """\
        import importlib

        from pipeline.data.errors import DataError


        def read_split(fmt, path):
            return importlib.import_module(f"pipeline.data.readers.{fmt}").read(path)
        """,
    "pipeline/data/readers/fmt_a.py": "from ..errors import DataError\n\ndef read(path):\n    return path\n",
    "pipeline/data/readers/fmt_b.py": "def read(path):\n    return path\n",
    "pipeline/data/errors.py": "class DataError(Exception):\n    pass\n",
    "tools/tool.py": "import pipeline.helper\n",
}

TRAIN_DEPS = [
    "pipeline/__init__.py",
    "pipeline/stages/train.py",
    "pipeline/helper.py",
    "pipeline/late.py",
    "pipeline/models/__init__.py",
    "pipeline/models/${item.model.name}",
    "pipeline/data/errors.py",
    "pipeline/data/readers/__init__.py",
    "pipeline/data/readers/${item.data.format}.py",
    "${item.data.path}",
]
SHOW_DEPS = [
    "pipeline/__init__.py",
    "pipeline/stages/show.py",
    "pipeline/models/__init__.py",
    "pipeline/models/fam_a",
    "models/a.pt",
]
TOOL_DEPS = ["tools/tool.py", "pipeline/__init__.py", "pipeline/helper.py"]


def _yaml_list(items: list[str], indent: int) -> str:
    return "\n".join(" " * indent + f"- {item}" for item in items)


def write_fake_repo(root: Path, train_deps=TRAIN_DEPS, show_deps=SHOW_DEPS, tool_deps=TOOL_DEPS) -> Path:
    """A DVC repository (no git) with a foreach stage over params and two plain stages."""
    from dvc.repo import Repo

    if not (root / ".dvc").exists():
        Repo.init(str(root), no_scm=True).close()
    (root / "params.yaml").write_text(PARAMS)
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text))
    (root / "dvc.yaml").write_text(
        "stages:\n"
        "  train:\n"
        "    foreach: ${variants}\n"
        "    do:\n"
        "      cmd: OMP_NUM_THREADS=1 python -m pipeline.stages.train ${key}\n"
        "      deps:\n" + _yaml_list(train_deps, 8) + "\n"
        "  show:\n"
        "    cmd: python -m pipeline.stages.show\n"
        "    deps:\n" + _yaml_list(show_deps, 6) + "\n"
        "  tool:\n"
        "    cmd: python tools/tool.py --flag\n"
        "    deps:\n" + _yaml_list(tool_deps, 6) + "\n"
    )
    return root


def replace(items: list[str], old: str, *new: str) -> list[str]:
    assert old in items
    out = []
    for item in items:
        out.extend(new if item == old else [item])
    return out


def of_kind(problems: list[Problem], kind: str) -> list[Problem]:
    return [p for p in problems if p.kind == kind]


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return write_fake_repo(tmp_path)


def test_fake_repo_is_honest(fake: Path):
    stages = {s.name: s for s in depgraph.load_stages(fake)}
    assert set(stages) == {
        "train@a",
        "train@b",
        "show",
        "tool",
    }  # DVC's own foreach expansion
    assert "data/a" in stages["train@a"].deps and "pipeline/models/fam_a" in stages["train@a"].deps
    assert check(fake) == []


def test_missing_import_inside_a_function_is_reported_with_its_chain(fake: Path):
    write_fake_repo(fake, train_deps=replace(TRAIN_DEPS, "pipeline/late.py"))
    missing = of_kind(check(fake), "missing")
    assert {(p.stage, p.path) for p in missing} == {
        ("train@a", "pipeline/late.py"),
        ("train@b", "pipeline/late.py"),
    }
    chain = missing[0].chain
    assert chain[0] == f"$ OMP_NUM_THREADS=1 python -m pipeline.stages.train {missing[0].stage[-1]}"
    assert chain[-2:] == (
        "pipeline/stages/train.py:9",
        "pipeline/late.py",
    )  # line 9: inside main()
    assert "pipeline/stages/train.py:9" in str(missing[0])


def test_new_file_imported_but_not_declared_is_reported(fake: Path):
    (fake / "pipeline/fresh.py").write_text("X = 2\n")
    (fake / "pipeline/helper.py").write_text(
        "def helper():\n    try:\n        import pipeline.fresh\n    except ImportError:\n        pass\n"
    )
    problems = check(fake)
    assert {(p.kind, p.stage, p.path) for p in problems} == {
        ("missing", "train@a", "pipeline/fresh.py"),
        ("missing", "train@b", "pipeline/fresh.py"),
        ("missing", "tool", "pipeline/fresh.py"),
    }
    tool = next(p for p in problems if p.stage == "tool")
    assert tool.chain[1:] == (
        "tools/tool.py:1",
        "pipeline/helper.py:3",
        "pipeline/fresh.py",
    )


def test_extra_declared_python_file_is_reported(fake: Path):
    (fake / "pipeline/unused.py").write_text("")
    write_fake_repo(
        fake,
        show_deps=[
            *SHOW_DEPS,
            "pipeline/unused.py",
            "pipeline/helper.py",
            "data/not_code.csv",
        ],
    )
    problems = check(fake)
    assert {(p.kind, p.stage, p.path) for p in problems} == {
        ("extra", "show", "pipeline/unused.py"),
        ("extra", "show", "pipeline/helper.py"),
        ("orphan", None, "pipeline/unused.py"),  # imported by no stage either
    }


def test_a_leaf_package_is_one_unit_of_code(fake: Path):
    # The readers package (no sub-packages) as one dep: it covers its files and is declared
    # rightly even though train@a runs only fmt_a, like a model family or pipeline/data/common.
    deps = [d for d in TRAIN_DEPS if not d.startswith("pipeline/data/readers")] + ["pipeline/data/readers"]
    write_fake_repo(fake, train_deps=deps)
    problems = check(fake)
    assert of_kind(problems, "missing") == []
    assert of_kind(problems, "extra") == []


def test_a_larger_folder_must_be_imported_whole(fake: Path):
    # pipeline/data holds a sub-package: declaring all of it hides code the stage never runs.
    deps = [d for d in TRAIN_DEPS if not d.startswith("pipeline/data")] + ["pipeline/data"]
    write_fake_repo(fake, train_deps=deps)
    problems = check(fake)
    assert of_kind(problems, "missing") == []
    extra = of_kind(problems, "extra")
    assert {(p.stage, p.path) for p in extra} == {("train@a", "pipeline/data"), ("train@b", "pipeline/data")}
    assert "pipeline/data/readers/fmt_b.py" in next(p for p in extra if p.stage == "train@a").detail


def test_plugin_rule_requires_the_family_folder(fake: Path):
    write_fake_repo(fake, train_deps=replace(TRAIN_DEPS, "pipeline/models/${item.model.name}"))
    missing = of_kind(check(fake), "missing")
    assert {(p.stage, p.path) for p in missing} == {
        ("train@a", "pipeline/models/fam_a/__init__.py"),
        ("train@a", "pipeline/models/fam_a/net.py"),
        ("train@b", "pipeline/models/fam_b/__init__.py"),
    }
    net = next(p for p in missing if p.path.endswith("net.py"))
    assert "pipeline/models/__init__.py (plugin rule: variant a uses model fam_a)" in net.chain


def test_plugin_rule_checkpoint_dep_touches_the_variant_but_not_its_reader(fake: Path):
    # `show` touches variant a through models/a.pt only: it needs fam_a, not fam_b.
    write_fake_repo(
        fake,
        show_deps=replace(SHOW_DEPS, "pipeline/models/fam_a", "pipeline/models/fam_b"),
    )
    problems = check(fake)
    assert {(p.kind, p.stage, p.path) for p in problems} == {
        ("missing", "show", "pipeline/models/fam_a/__init__.py"),
        ("missing", "show", "pipeline/models/fam_a/net.py"),
        ("extra", "show", "pipeline/models/fam_b"),
    }


def test_reader_rule_needs_the_data_dep(fake: Path):
    # Without the variant's data as a dep, the stage reads no data: its reader is not needed.
    write_fake_repo(fake, train_deps=replace(TRAIN_DEPS, "${item.data.path}"))
    problems = check(fake)
    assert {(p.kind, p.stage, p.path) for p in problems} == {
        ("extra", "train@a", "pipeline/data/readers/fmt_a.py"),
        ("extra", "train@b", "pipeline/data/readers/fmt_b.py"),
        (
            "orphan",
            None,
            "pipeline/data/readers/fmt_a.py",
        ),  # now no stage reads with them
        ("orphan", None, "pipeline/data/readers/fmt_b.py"),
    }


def test_orphans_and_allowlist(fake: Path):
    (fake / "pipeline/timing.py").write_text("")
    (fake / "pipeline/stray.py").write_text("")
    problems = check(fake)
    assert problems == [Problem("orphan", None, "pipeline/stray.py")]  # timing.py is allowlisted


def test_suggest_prints_a_foreach_template(fake: Path, capsys):
    assert depgraph.main(["--root", str(fake), "--suggest"]) == 0
    out = capsys.readouterr().out
    assert "train:  # foreach template" in out
    assert "  - pipeline/models/${item.model.name}\n" in out
    assert "  - pipeline/data/readers/${item.data.format}.py\n" in out
    assert "show:\n  - pipeline/stages/show.py\n" in out


def test_a_package_marker_is_no_dep_until_it_holds_code(fake: Path):
    """An __init__.py with a docstring only (or empty) runs nothing: neither required nor accepted;
    one statement in it makes it code, required like any module."""
    assert check(fake) == []  # pipeline/stages/__init__.py (a docstring) and data/__init__.py (empty) undeclared
    write_fake_repo(fake, show_deps=[*SHOW_DEPS, "pipeline/stages/__init__.py"])
    [extra] = of_kind(check(fake), "extra")
    assert (extra.stage, extra.path) == ("show", "pipeline/stages/__init__.py") and "marker" in extra.detail
    write_fake_repo(fake)
    (fake / "pipeline/stages/__init__.py").write_text('"""Entry points."""\n\nimport os\n')
    missing = {(p.stage, p.path) for p in of_kind(check(fake), "missing")}
    assert missing == {(s, "pipeline/stages/__init__.py") for s in ("train@a", "train@b", "show")}


def test_cli_exits_1_on_problems(fake: Path, capsys):
    write_fake_repo(fake, train_deps=replace(TRAIN_DEPS, "pipeline/late.py"))
    assert depgraph.main(["--root", str(fake)]) == 1
    assert "[missing] train@a: pipeline/late.py" in capsys.readouterr().out


def test_entry_files(fake: Path):
    assert entry_files("A=1 B=2 python -u -m pipeline.stages.train a", fake) == [
        "pipeline/__init__.py",
        "pipeline/stages/__init__.py",
        "pipeline/stages/train.py",
    ]
    assert entry_files("python tools/tool.py --json x.json", fake) == ["tools/tool.py"]
    (fake / "pipeline/__main__.py").write_text("")
    assert entry_files("python -m pipeline predict", fake) == [
        "pipeline/__init__.py",
        "pipeline/__main__.py",
    ]
    assert entry_files("echo hi && python3 -m pipeline.nothing", fake) == []


def test_import_closure_relative_and_submodule_imports(fake: Path):
    closure = import_closure(["pipeline/models/fam_a/__init__.py", "pipeline/data/readers/fmt_a.py"], fake)
    assert set(closure) == {
        "pipeline/models/fam_a/__init__.py",
        "pipeline/models/fam_a/net.py",  # from . import net
        "pipeline/data/readers/fmt_a.py",
        "pipeline/data/errors.py",  # from ..errors import DataError
    }
    # `from pkg import name` where name is not a module: only the package's __init__.
    closure = import_closure(["pipeline/stages/show.py"], fake)
    assert set(closure) == {
        "pipeline/stages/show.py",
        "pipeline/__init__.py",
        "pipeline/models/__init__.py",
    }


# ----------------------------------------------------------------------------- the real repository
def test_repository_graph_is_honest():
    problems = check(ROOT)
    assert problems == [], "dvc.yaml code deps disagree with the imports:\n" + "\n".join(map(str, problems))


def test_the_reports_table_of_writers_names_every_declared_output():
    """Each reports/ output of dvc.yaml, as DVC expands it, is named by the report's hint table
    as the stage that declares it (a folder output: a file inside it)."""
    wrong = []
    for stage in depgraph.load_stages(ROOT):
        for out in stage.outs:
            if not out.startswith("reports/"):
                continue
            probe = out if Path(out).suffix else f"{out}/some_file.json"
            if stage_for(probe) != stage.name:
                wrong.append(f"{probe}: {stage_for(probe)} (dvc.yaml: {stage.name})")
    assert wrong == [], "pipeline/report/inputs.py WRITERS disagrees with dvc.yaml:\n" + "\n".join(wrong)


def copy_repository(dest: Path) -> Path:
    """dvc.yaml, params.yaml, .dvc/config (+ no_scm) and the code trees: enough for DVC and the checker."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(ROOT / name, dest / name)
    (dest / ".dvc").mkdir()
    config = (ROOT / ".dvc/config").read_text() if (ROOT / ".dvc/config").exists() else ""
    if "[core]" in config:
        config = config.replace("[core]", "[core]\n    no_scm = true", 1)
    else:
        config += "\n[core]\n    no_scm = true\n"
    (dest / ".dvc/config").write_text(config)
    for tree in ("pipeline", "benchmarks"):
        shutil.copytree(ROOT / tree, dest / tree, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_planted_import_is_reported_for_every_evaluate_stage(tmp_path: Path):
    repo = copy_repository(tmp_path)
    before = set(check(repo))

    (repo / "pipeline/planted.py").write_text('"""Planted by the test."""\n')
    evaluate = repo / "pipeline/stages/evaluate.py"
    text = evaluate.read_text() + "\n\ndef _planted():\n    from pipeline import planted\n    return planted\n"
    evaluate.write_text(text)
    line = text.splitlines().index("    from pipeline import planted") + 1
    after = set(check(repo))

    evaluate_stages = sorted(s.name for s in depgraph.load_stages(repo) if s.name.startswith("evaluate@"))
    assert evaluate_stages, "dvc.yaml has no evaluate@* stage"
    new = after - before
    assert sorted(p.stage for p in new) == evaluate_stages
    for problem in new:
        assert (problem.kind, problem.path) == ("missing", "pipeline/planted.py")
        assert problem.chain[-2:] == (
            f"pipeline/stages/evaluate.py:{line}",
            "pipeline/planted.py",
        )
    assert before - after == set()
