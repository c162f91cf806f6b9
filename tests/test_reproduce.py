"""The gate's reproduction check (``pipeline/devtools/reproduce.py``) and its ``params.yaml`` section.

Fast: the verdict rules (byte-identical on the committed run's kernels, test accuracy within
the tolerance elsewhere, with the boundary and a run that recorded no kernels), the table,
the scratch copy (what git would track, without the committed outputs), the one-line errors,
and the ``reproduce`` section's validation. Slow: on the tiny repository of
``tests/tiny_repo.py``, the real ``train`` stage retrained from scratch reproduces the
committed bytes, leaves the checkout untouched, and fails on planted changes: a model byte,
and a metric on a run with other kernels.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch

from pipeline.core.config import ConfigError
from pipeline.core.params import load_all
from pipeline.core.schemas import Timings
from pipeline.devtools import reproduce as rp
from pipeline.devtools.depgraph import StageSpec
from pipeline.training.setup import kernel_facts
from tests.tiny_repo import PARAMS, build_tiny_repo, git

HERE = {"device": "cpu", "cpu_capability": "AVX512", "threads": 2, "torch": "2.14.1+cu130"}
AVX2 = {**HERE, "cpu_capability": "AVX2"}


def outcome(committed=HERE, here=HERE, old=0.9617, new=0.9617, differing=(), tolerance=0.002) -> rp.Outcome:
    return rp.Outcome("ds5220_mlp", dict(committed), dict(here), old, new, tuple(differing), tolerance, 8.0)


def test_the_compared_kernel_facts_are_what_training_records():
    assert set(rp.KERNEL_FACTS) == set(kernel_facts(torch.device("cpu"))) == set(Timings.__optional_keys__)


@pytest.mark.parametrize(
    ("case", "ok", "result"),
    [
        (outcome(), True, "ok: byte-identical"),
        # same kernels: any byte counts, even with the same accuracy (the loss was edited)
        (
            outcome(differing=["reports/v/metrics.json"]),
            False,
            "FAIL: same kernels, but 1 output(s) differ: reports/v/metrics.json",
        ),
        # other kernels: only the test accuracy, within the tolerance (its edge included)
        (outcome(committed=AVX2, new=0.9597, differing=["models/v.pt"]), True, "<= 0.002"),
        (outcome(committed=AVX2, new=0.9596), False, "FAIL: other kernels; |difference| 0.0021 > 0.002"),
        (outcome(here={**HERE, "threads": 1}, new=0.9637), True, "<= 0.002"),
        # a run from before the kernels were recorded cannot claim the same kernels
        (outcome(committed={}, differing=["models/v.pt"]), True, "ok: other kernels"),
        (outcome(committed=AVX2, old=None), False, "FAIL: no test accuracy to compare"),
    ],
)
def test_verdict(case, ok, result):
    assert case.ok is ok
    assert result in case.result


def test_table_puts_committed_and_reproduced_side_by_side():
    rows = rp.table([outcome(), outcome(committed=AVX2, new=0.9640)]).splitlines()
    assert rows[0].split()[:2] == ["variant", "committed"]
    same, other = rows[1].split(), rows[2].split()
    assert "same" in same and same[-2:] == ["ok:", "byte-identical"]
    assert "AVX2," in other and "AVX512," in other  # both runs' kernels when they differ
    assert ["0.9617", "0.9640", "+0.0023", "8", "s", "FAIL:"] == other[other.index("0.9617") : other.index("FAIL:") + 1]
    assert "not recorded" in rp.table([outcome(committed={})])


def test_scratch_copy_holds_what_git_would_track_without_committed_outputs(tmp_path):
    root, dest = tmp_path / "root", tmp_path / "dest"
    files = {
        "pipeline/a.py": "tracked",
        "pipeline/new.py": "untracked, not ignored",
        "pipeline/gone.py": "tracked, then deleted",
        "data/x.npz": "ignored: a data stage's output",
        "models/v.pt": "committed output",
        "reports/v/metrics.json": "committed output",
        ".gitignore": "/data/\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    git("init", "-q", cwd=root)
    git("add", ".gitignore", "pipeline/a.py", "pipeline/gone.py", "models", "reports", cwd=root)
    (root / "pipeline" / "gone.py").unlink()
    (root / "pipeline" / "a.py").write_text("edited in the work tree", encoding="utf-8")
    rp.scratch_copy(root, dest)
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == [".gitignore", "pipeline/a.py", "pipeline/new.py"]
    assert (dest / "pipeline" / "a.py").read_text(encoding="utf-8") == "edited in the work tree"


def test_scratch_copy_outside_git_is_one_line(tmp_path):
    with pytest.raises(rp.ReproduceError, match=r"cannot list the checkout's files with git"):
        rp.scratch_copy(tmp_path, tmp_path / "dest")


def test_missing_data_names_the_dependency_and_the_data_stages(tmp_path):
    stage = StageSpec(name="train@v", cmd="true", deps=("pipeline/a.py", "data/mnist_npz"), param_keys=(), outs=())
    (tmp_path / "dest" / "pipeline").mkdir(parents=True)
    (tmp_path / "dest" / "pipeline" / "a.py").write_text("", encoding="utf-8")
    with pytest.raises(
        rp.ReproduceError, match=r"train@v: dependency data/mnist_npz is missing in .*run the data stages"
    ):
        rp.link_data(tmp_path, tmp_path / "dest", stage)
    (tmp_path / "data" / "mnist_npz").mkdir(parents=True)
    rp.link_data(tmp_path, tmp_path / "dest", stage)
    assert (tmp_path / "dest" / "data" / "mnist_npz").resolve() == (tmp_path / "data" / "mnist_npz").resolve()


def write_outputs(root: Path, metrics: str, kernels: dict) -> None:
    for rel, text in {
        "models/v.pt": "weights",
        "reports/v/metrics.json": metrics,
        "reports/v/timings.json": json.dumps({"train_seconds": 1.0, **kernels}),
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


def test_compare_reads_both_runs_and_names_what_the_stage_did_not_write(tmp_path):
    outs = ("models/v.pt", "reports/v/metrics.json", "reports/v/timings.json")
    stage = StageSpec(name="train@v", cmd="python -m pipeline.stages.train v", deps=(), param_keys=(), outs=outs)
    root, dest = tmp_path / "root", tmp_path / "dest"
    write_outputs(root, '{"test_accuracy": "0.99"}', AVX2)  # a string: no accuracy to compare
    write_outputs(dest, '{"test_accuracy": 0.99}', {**HERE, "threads": 4})
    found = rp.compare(root, dest, stage, "v", 0.002)
    assert (found.committed_kernels["cpu_capability"], found.kernels["threads"]) == ("AVX2", 4)
    assert found.differing == ("reports/v/metrics.json",)  # timings.json is never compared
    assert (found.committed_accuracy, found.accuracy, found.ok) == (None, 0.99, False)
    (dest / "models" / "v.pt").unlink()
    with pytest.raises(
        rp.ReproduceError, match=r"^train@v: `python -m pipeline.stages.train v` did not write models/v.pt$"
    ):
        rp.compare(root, dest, stage, "v", 0.002)


def test_without_a_reproduce_section_the_check_says_so(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("variants: {}\n", encoding="utf-8")
    assert rp.main(["--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: reproduce: reproduce: missing key in params.yaml\n"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"variants": [], "test_accuracy_tolerance": 0.002}, "reproduce.variants: expected at least one variant"),
        ({"variants": ["nope"], "test_accuracy_tolerance": 0.002}, r"reproduce.variants\[0\]: unknown variant 'nope'"),
        (
            {"variants": ["tiny", "tiny"], "test_accuracy_tolerance": 0.002},
            r"reproduce.variants\[1\]: 'tiny' is listed",
        ),
        ({"variants": ["tiny"], "test_accuracy_tolerance": -0.1}, "reproduce.test_accuracy_tolerance: expected"),
        ({"variants": ["tiny"], "test_accuracy_tolerance": 1.0}, "reproduce.test_accuracy_tolerance: expected"),
        ({"variants": ["tiny"]}, "reproduce.test_accuracy_tolerance"),
        ({"variants": ["tiny"], "test_accuracy_tolerance": 0.002, "seeds": 3}, "reproduce.seeds: unknown key"),
    ],
)
def test_the_reproduce_section_is_checked(section, message):
    with pytest.raises(ConfigError, match=message):
        load_all({**copy.deepcopy(PARAMS), "reproduce": section})


def test_the_committed_section_names_known_variants_of_different_families_and_readers():
    params = load_all()
    cfg = params.reproduce
    assert cfg is not None and 0 < cfg.test_accuracy_tolerance < 0.01
    chosen = [params.variant(name) for name in cfg.variants]
    assert len({v.model.name for v in chosen}) == len({v.data.format for v in chosen}) == len(chosen) >= 3


# --------------------------------------------------------------------------- on the tiny repository


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    return build_tiny_repo(tmp_path_factory.mktemp("reproduce") / "repo")


@pytest.fixture
def repo(tiny_repo, tmp_path, monkeypatch) -> Path:
    """A copy of the tiny repository (each test may plant changes in it); training on one
    thread, as the tiny repository's committed run did."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    target = tmp_path / "repo"
    shutil.copytree(tiny_repo, target, symlinks=True)
    return target


def committed_state(root: Path) -> dict[str, bytes]:
    """Every file but git's and DVC's own scratch (``.dvc/tmp``: its locks)."""
    files = (p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts)
    return {str(p.relative_to(root)): p.read_bytes() for p in files if p.relative_to(root).parts[:2] != (".dvc", "tmp")}


@pytest.mark.slow
def test_tiny_retrained_from_scratch_is_byte_identical_and_the_checkout_untouched(repo):
    before = committed_state(repo)
    (outcome,) = rp.reproduce(repo, ["tiny"], 0.002, log=lambda line: None)
    assert outcome.same_kernels and outcome.kernels["threads"] == 1
    assert outcome.ok and outcome.differing == () and outcome.result == "ok: byte-identical"
    assert (
        outcome.accuracy
        == outcome.committed_accuracy
        == json.loads((repo / "reports/tiny/metrics.json").read_text())["test_accuracy"]
    )
    assert outcome.seconds > 0
    assert committed_state(repo) == before
    assert git("status", "--porcelain", cwd=repo) == ""


@pytest.mark.slow
def test_a_planted_model_byte_fails_on_the_same_kernels(repo):
    model = repo / "models" / "tiny.pt"
    data = bytearray(model.read_bytes())
    data[-100] ^= 1  # one bit of a weight: accuracy and every other file unchanged
    model.write_bytes(bytes(data))
    (outcome,) = rp.reproduce(repo, ["tiny"], 0.002, log=lambda line: None)
    assert not outcome.ok and outcome.differing == ("models/tiny.pt",)
    assert outcome.accuracy == outcome.committed_accuracy


@pytest.mark.slow
def test_on_other_kernels_the_accuracy_decides(repo, capsys):
    """A committed run on another CPU (its timings.json says AVX2): bytes are not compared,
    the test accuracy is, and a metric planted 0.01 higher fails; the command exits 1."""
    timings = repo / "reports" / "tiny" / "timings.json"
    timings.write_text(json.dumps({**json.loads(timings.read_text()), "cpu_capability": "AVX2"}), encoding="utf-8")
    (outcome,) = rp.reproduce(repo, ["tiny"], 0.002, log=lambda line: None)
    assert not outcome.same_kernels and outcome.ok and outcome.difference == 0.0
    metrics = repo / "reports" / "tiny" / "metrics.json"
    values = json.loads(metrics.read_text())
    metrics.write_text(
        json.dumps({**values, "test_accuracy": round(values["test_accuracy"] + 0.01, 6)}), encoding="utf-8"
    )
    params = repo / "params.yaml"
    params.write_text(
        params.read_text() + "reproduce:\n  variants: [tiny]\n  test_accuracy_tolerance: 0.002\n", encoding="utf-8"
    )
    assert rp.main(["--root", str(repo)]) == 1
    out, err = capsys.readouterr()
    assert "FAIL: other kernels; |difference| 0.0100 > 0.002" in out
    assert err == "error: reproduce: tiny did not reproduce the committed results\n"
