"""Bytecode and tool caches do not make a stage stale (``.dvcignore``), with bytecode writing on.

Our machines set ``PYTHONDONTWRITEBYTECODE=1``; a user's do not, and there Python writes
``__pycache__/`` into the folders that stages declare as dependencies
(``pipeline/models/<family>``, ``pipeline/data/common``, ...). DVC hashes a folder
dependency with everything in it, so those caches would make the stages stale by themselves.

A tiny DVC repository holds a copy of the ``pipeline`` package and one stage that declares
the whole folder as a dependency. Every module is imported in a subprocess with bytecode
writing on (as ``make test`` on a user's machine does); with the project's ``.dvcignore``
``dvc status`` stays clean, without it the stage is stale, so the rules (not luck) keep it
clean. Tool and editor litter is ignored too, a real new file is not, and no file git
tracks matches a rule (an over-broad rule would hide a code change from DVC).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_repo import REPO, dvc, git, tool_env

pytestmark = pytest.mark.slow

DVC_YAML = """\
stages:
  listing:
    cmd: ls -R pipeline > listing.txt
    deps:
      - pipeline
    outs:
      - listing.txt:
          cache: false
"""

# Imports every module of the package (a package's __main__ would run its command line).
IMPORT_ALL = """\
import importlib, pkgutil, pipeline
assert pipeline.__file__.startswith(%r), pipeline.__file__  # this repository's copy
names = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""

# What tests, linters and editors leave beside the code (one name per .dvcignore rule).
LITTER = [
    ".pytest_cache/v/cache/nodeids",
    ".mypy_cache/3.11/pipeline.data.json",
    ".ruff_cache/0.6.9/12345",
    ".hypothesis/examples/abc",
    "stray.pyo",
    ".__init__.py.swp",
    ".__init__.py.swo",
    "__init__.py~",
    ".#__init__.py",
    "#__init__.py#",
    ".DS_Store",
    ".idea/workspace.xml",
    ".vscode/settings.json",
]


def dvc_repo(root: Path, dvcignore: bool) -> Path:
    """A DVC repository (no git: .dvcignore is DVC's own) with the package and the stage, reproduced."""
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
    (root / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    dvc("init", "-q", "--no-scm", cwd=root)
    dvc("config", "core.analytics", "false", cwd=root)
    if dvcignore:
        shutil.copy2(REPO / ".dvcignore", root / ".dvcignore")
    else:  # what `dvc init` writes: comments only (the project's file before these rules)
        assert all(not line.strip() or line.startswith("#") for line in (root / ".dvcignore").read_text().splitlines())
    dvc("repro", "-q", cwd=root)
    assert stale_stages(root) == []
    return root


def stale_stages(root: Path) -> list[str]:
    return sorted(json.loads(dvc("status", "--json", cwd=root).stdout))


def import_everything_writing_bytecode(root: Path) -> None:
    env = tool_env()
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONPATH"):
        env.pop(name, None)  # a user's machine: bytecode next to the code
    script = IMPORT_ALL % str(root / "pipeline")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) > 50  # every module, not a few
    # bytecode really was written inside the declared folder, down to a model family's package
    assert list((root / "pipeline" / "models" / "prac5_cnn" / "__pycache__").glob("*.pyc"))
    assert list((root / "pipeline" / "data" / "common" / "__pycache__").glob("*.pyc"))


@pytest.mark.parametrize("with_rules", [True, False], ids=["with-dvcignore", "without"])
def test_bytecode_written_by_imports_leaves_dvc_status_clean(tmp_path, with_rules):
    root = dvc_repo(tmp_path / "repo", dvcignore=with_rules)
    import_everything_writing_bytecode(root)
    # with the rules nothing is stale; without them the same caches stale the stage
    assert stale_stages(root) == ([] if with_rules else ["listing"])


def test_tool_and_editor_litter_is_ignored_and_a_real_file_is_not(tmp_path):
    root = dvc_repo(tmp_path / "repo", dvcignore=True)
    family = root / "pipeline" / "models" / "prac5_cnn"
    for rel in LITTER:
        (family / rel).parent.mkdir(parents=True, exist_ok=True)
        (family / rel).write_text("litter\n", encoding="utf-8")
    assert stale_stages(root) == []
    (family / "notes.md").write_text("a real change\n", encoding="utf-8")
    assert stale_stages(root) == ["listing"]


def test_no_file_git_tracks_matches_a_rule(tmp_path):
    """A rule that matched a tracked file (code, params, a committed output) would hide its changes."""
    root = dvc_repo(tmp_path / "repo", dvcignore=True)
    tracked = git("ls-files", cwd=REPO).splitlines()
    assert len(tracked) > 100
    done = dvc("check-ignore", "--details", *tracked, cwd=root, check=False)
    # "<source>:<line>:<pattern>\t<path>"; DVC's own rule for .dvc/ has no source
    assert [line for line in done.stdout.splitlines() if not line.startswith(":.dvc/\t.dvc/")] == []
    # the check can see a match: the rules match what they are for
    done = dvc("check-ignore", "--details", "pipeline/models/x/__pycache__/y.pyc", ".pytest_cache/v/x", cwd=root)
    assert ".dvcignore:" in done.stdout and len(done.stdout.splitlines()) == 2
