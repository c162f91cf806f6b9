"""Stage entry points fail before any work, with one line naming the bad key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.stages.train", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_unknown_variant_exits_1_with_the_allowed_names(tmp_path):
    done = run_train("no_such_variant", "--models-dir", str(tmp_path / "m"), "--reports-dir", str(tmp_path / "r"))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: variants.no_such_variant: unknown variant; allowed: ")
    assert "prac5" in last and "cse849" in last
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()  # nothing written


def test_the_console_command_is_the_module_command(tmp_path):
    """`make setup` installs the package: `cnn-pipeline` runs `python -m pipeline` (here: a grader's usage error)."""
    command = Path(sys.executable).parent / "cnn-pipeline"
    assert command.is_file(), "run `make setup`: it installs the package and its console command"
    done = subprocess.run(
        [str(command), "grade-cse849", str(tmp_path / "missing.txt"), "--labels", str(tmp_path / "l.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'missing.txt'}: prediction file not found"


def test_stage_main_parses_sets_up_then_runs_and_turns_expected_errors_into_one_line(tmp_path, capsys):
    import pytest

    from pipeline.core.cli import PARAMS, VARIANT, path_arg, stage_main
    from pipeline.core.errors import PipelineError

    calls = []

    def work(args):
        calls.append(("work", args.variant, args.params, args.out))
        if args.variant == "bad":
            raise PipelineError("variants.bad: unknown variant")

    main = stage_main(
        "Stage ``x``: does a thing.\n\nMore text.",
        [VARIANT, PARAMS, path_arg("--out", "r", "folder")],
        work,
        before=lambda: calls.append(("before",)),
    )
    main(["v1", "--out", str(tmp_path)])
    assert calls == [("before",), ("work", "v1", Path("params.yaml"), tmp_path)]  # Path defaults, in order
    with pytest.raises(SystemExit) as exit_info:
        main(["bad"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: variants.bad: unknown variant"
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    assert "Stage x: does a thing." in shown and "More text" not in shown  # the first paragraph, no reST
    assert "(default: params.yaml)" in shown

    def buggy(args):
        raise KeyError("a bug")

    with pytest.raises(KeyError):  # not an expected error: its traceback is kept
        stage_main(None, [], buggy)([])


def test_a_python_without_the_projects_packages_is_named_before_any_import_fails():
    """DVC runs a stage's `python` from PATH: one that is not the project's environment (here:
    torch hidden from it) gets one line saying so and how to fix it, not a traceback."""
    hide_torch = "import sys; sys.modules['torch'] = None; import pipeline.stages.train"
    done = subprocess.run([sys.executable, "-c", hide_torch], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: {sys.executable} cannot import torch: it is not this project's environment. DVC runs each "
        "stage's `python` from PATH: use `make repro` (it puts .venv/bin first on PATH), or "
        "`source .venv/bin/activate` before `dvc repro` or `dvc exp run`."
    )


def test_stage_commands_import_the_working_directorys_code(tmp_path):
    """`python -m` puts the working directory first, so a queued experiment's temporary copy of
    the code is what runs, never the editable install's checkout (what a console script imports)."""
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "where.py").write_text("import pipeline; print(pipeline.__file__)\n")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.where"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == str(tmp_path / "pipeline" / "__init__.py")
