"""Interrupted training resumes: a killed run, rerun, gives the bytes of a run that never stopped.

The stage runs as a real subprocess (``python -m pipeline.stages.train``) on a tiny variant
that uses every kind of state a run carries: dropout (torch's global generator), shuffling
and augmentation (the run's own generator), Adam's moments, a cosine schedule, the
best-validation checkpoint and the curves. It is killed with SIGKILL (or interrupted with
SIGINT) after its second (first) epoch's resume state appears, then rerun.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.core.config import VariantConfig, build
from pipeline.training import resume as resume_module
from pipeline.training.datasets import Splits
from pipeline.training.engine import fit
from pipeline.training.resume import ResumeFile, ResumeStore, resumable
from tests.conftest import synthetic_digits
from tests.test_seed_study import tiny_study  # noqa: F401 - a fixture

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 6
VARIANT = {
    "seed": 3,
    "data": {
        "format": "mnist_npz",
        "path": "data/tiny",
        "normalize": {"mode": "train"},
        "val_fraction": 0.25,
        "augment": {"hflip": 0.5, "random_erasing": {"p": 0.5}, "gaussian_noise": {"sigma": 0.1}},
    },
    "model": {"name": "simple_cnn", "args": {"layers": "torch", "conv1_channels": 4, "dropout": 0.25}},
    "train": {
        "epochs": EPOCHS,
        "batch_size": 32,
        "optimizer": {"name": "adam", "lr": 0.003},
        "loss": "cross_entropy",
        "scheduler": {"name": "cosine", "eta_min": 0.0},
        "checkpoint": "best_val_accuracy",
        "channels_last": True,
        "log_every_steps": 4,
    },
}
OUTPUTS = [
    "models/rich.pt",
    "reports/rich/metrics.json",
    "reports/rich/training.json",
    "reports/rich/plots/epochs.csv",
    "reports/rich/plots/steps.csv",
]
STATE = Path(".resume/train@rich/state.pt")


def write_npz(folder: Path, seed: int = 0) -> None:
    """Learnable digits (a bar at row 2*label+4) with a fifth of the labels shuffled, so that the
    validation accuracy moves between epochs and the best-validation rule has a choice to make."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 480), ("test", 120)):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 80, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 2 * label + 4, 4:24] = 150
        noisy = rng.random(n) < 0.2
        y[noisy] = rng.integers(0, 10, int(noisy.sum()))
        with zipfile.ZipFile(folder / f"{split}.npz", "w") as archive:
            for key, array in (("x", x.reshape(n, 784)), ("y", y.astype(np.int64))):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, array, allow_pickle=False)
                archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())


def workdir(path: Path, **train_changes) -> Path:
    variant = {**VARIANT, "train": {**VARIANT["train"], **train_changes}}
    path.mkdir(parents=True)
    write_npz(path / "data" / "tiny")
    (path / "params.yaml").write_text(yaml.safe_dump({"variants": {"rich": variant}}))
    return path


def stage(work: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user runs it
    command = [sys.executable, "-m", "pipeline.stages.train", "rich"]
    return subprocess.Popen(
        command,
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


def default_sigint() -> None:
    """Ctrl-C as in a terminal, even when the tests run as a background job (`make test &`, CI
    runners): a non-interactive shell starts background commands with SIGINT ignored, children
    inherit that, and a Python started so never turns SIGINT into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=300)
    return process.returncode, err


def saved_epoch(work: Path) -> int:
    return saved_epoch_at(work / STATE)


def stop_after(process: subprocess.Popen, work: Path, epoch: int, sig: int) -> int:
    """Send ``sig`` once the state of ``epoch`` exists; the epoch saved at that moment."""
    deadline = time.monotonic() + 240
    while (done := saved_epoch(work)) < epoch:
        assert process.poll() is None, f"the run ended before epoch {epoch}: {finish(process)}"
        assert time.monotonic() < deadline, "no resume state appeared"
        time.sleep(0.01)
    process.send_signal(sig)
    return done


def outputs(work: Path) -> dict[str, bytes]:
    return {rel: (work / rel).read_bytes() for rel in OUTPUTS}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, bytes]:
    work = workdir(tmp_path_factory.mktemp("resume") / "whole")
    code, err = finish(stage(work))
    assert code == 0, err
    assert not (work / ".resume").exists()  # removed once the stage completed
    epochs = list(csv.DictReader(io.StringIO((work / OUTPUTS[3]).read_text())))
    assert len(epochs) == EPOCHS and len({row["val_accuracy"] for row in epochs}) > 1  # the rule had a choice
    return outputs(work)


def test_a_run_killed_mid_run_resumes_to_the_same_bytes(tmp_path, uninterrupted):
    work = workdir(tmp_path / "killed")
    process = stage(work)
    stop_after(process, work, 2, signal.SIGKILL)
    code, _ = finish(process)
    assert code == -signal.SIGKILL
    kept = saved_epoch(work)
    assert 2 <= kept < EPOCHS
    assert not (work / "models" / "rich.pt").exists()  # nothing but the live curves was written
    # the curves written so far are the first rows of the finished run's (what dvc plots show draws)
    live = (work / OUTPUTS[3]).read_text().splitlines()
    assert len(live) - 1 in (kept - 1, kept) and live == uninterrupted[OUTPUTS[3]].decode().splitlines()[: len(live)]

    code, err = finish(stage(work))
    assert code == 0, err
    assert f"resuming after epoch {kept} of {EPOCHS}" in err
    assert outputs(work) == uninterrupted
    assert not (work / ".resume").exists()


def test_ctrl_c_is_one_line_and_the_rerun_resumes(tmp_path, uninterrupted):
    work = workdir(tmp_path / "interrupted")
    (work / "reports" / "rich" / "plots").mkdir(parents=True)
    previous = b"epoch,test_accuracy\n1,0.5\n"  # a previous run's curves: put back when the run stops
    (work / OUTPUTS[3]).write_bytes(previous)
    process = stage(work)
    stop_after(process, work, 1, signal.SIGINT)
    code, err = finish(process)
    assert code == 130
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    match = re.fullmatch(
        r"interrupted: rich \(seed 3\): interrupted in epoch (\d) of 6; epochs 1-(\d) are kept in "
        r"\.resume/train@rich/state\.pt: a rerun resumes from epoch (\d)",
        lines[-1],
    )
    assert match, lines[-1]
    stopped, kept, again = map(int, match.groups())
    assert kept == saved_epoch(work) == stopped - 1 == again - 1
    assert (work / OUTPUTS[3]).read_bytes() == previous

    code, err = finish(stage(work))
    assert code == 0, err
    assert f"resuming after epoch {kept} of {EPOCHS}" in err
    assert outputs(work) == uninterrupted


# --------------------------------------------------------------------------- the fingerprint, in-process


def tiny(**train_changes) -> VariantConfig:
    raw = {**VARIANT, "data": {**VARIANT["data"], "format": "mnist_csv", "val_fraction": 0.0}}
    variant = build(VariantConfig, raw, "tiny", name="tiny")
    return dataclasses.replace(variant, train=dataclasses.replace(variant.train, epochs=3, **train_changes))


@pytest.fixture(scope="module")
def splits() -> Splits:
    return Splits(train=synthetic_digits(256, 0), val=synthetic_digits(64, 1), test=synthetic_digits(64, 2))


class Stop(Exception):
    """Stands for a kill right after an epoch's state was written."""


def stopped_after_epoch(variant: VariantConfig, splits: Splits, state: ResumeFile, epoch: int) -> None:
    def stop(so_far) -> None:
        if len(so_far.epochs) == epoch:
            raise Stop

    with pytest.raises(Stop):
        fit(variant, splits, torch.device("cpu"), resume=state, on_epoch=stop)


def summary(result) -> tuple:
    weights = {k: v.contiguous() for k, v in result.model.state_dict().items()}
    return result.epochs, result.steps, result.metrics, result.facts, weights


def same(a: tuple, b: tuple) -> bool:
    return a[:4] == b[:4] and a[4].keys() == b[4].keys() and all(torch.equal(a[4][k], b[4][k]) for k in a[4])


def test_same_params_resume_and_changed_params_start_fresh(tmp_path, splits, caplog):
    state = ResumeFile(tmp_path / "state.pt")
    stopped_after_epoch(tiny(), splits, state, 2)
    with caplog.at_level(logging.INFO):
        resumed = summary(fit(tiny(), splits, torch.device("cpu"), resume=state))
    assert "resuming after epoch 2 of 3" in caplog.text
    assert same(resumed, summary(fit(tiny(), splits, torch.device("cpu"))))

    state = ResumeFile(tmp_path / "other.pt")  # the first one now holds the finished run
    stopped_after_epoch(tiny(), splits, state, 2)
    changed = tiny(optimizer=dataclasses.replace(tiny().train.optimizer, lr=0.001))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        fresh = summary(fit(changed, splits, torch.device("cpu"), resume=state))
    stale = [r.getMessage() for r in caplog.records if "starting fresh" in r.getMessage()]
    assert stale == [f"{state.path}: params, data or code changed since it was saved; starting fresh"]
    assert "resuming" not in caplog.text
    assert same(fresh, summary(fit(changed, splits, torch.device("cpu"))))


@pytest.mark.parametrize("change", ["code", "data"])
def test_changed_code_or_data_start_fresh(tmp_path, splits, caplog, monkeypatch, change):
    state = ResumeFile(tmp_path / "state.pt")
    stopped_after_epoch(tiny(), splits, state, 2)
    if change == "code":  # what an edit of any loaded pipeline module does to the digest
        digest = resume_module.code_digest()
        monkeypatch.setattr(resume_module, "code_digest", lambda: digest + "edited")
    else:
        splits = dataclasses.replace(splits, train=synthetic_digits(256, 9))
    with caplog.at_level(logging.INFO):
        fresh = summary(fit(tiny(), splits, torch.device("cpu"), resume=state))
    assert "changed since it was saved; starting fresh" in caplog.text and "resuming" not in caplog.text
    monkeypatch.undo()
    assert same(fresh, summary(fit(tiny(), splits, torch.device("cpu"))))


def test_code_digest_covers_every_loaded_module_of_the_package_by_its_file(tmp_path, monkeypatch):
    """By file, not by name: a stage run with ``python -m`` is loaded as ``__main__``."""
    package = tmp_path / "pipeline"
    (package / "stages").mkdir(parents=True)
    files = {
        "__main__": package / "stages" / "train.py",  # `python -m pipeline.stages.train`
        "elsewhere": tmp_path / "other.py",
        "pipeline.__main__": package / "__main__.py",  # `cnn-pipeline train`: the dispatcher
    }
    for name, path in files.items():
        path.write_text("A = 1\n")
        module = type(sys)(name)
        module.__file__ = str(path)
        monkeypatch.setitem(sys.modules, f"test_resume_fake_{name}", module)
    first = resume_module.code_digest(package)
    (tmp_path / "other.py").write_text("A = 2\n")  # outside the package: not part of the closure
    (package / "__main__.py").write_text("A = 2\n")  # decides nothing in a run
    assert resume_module.code_digest(package) == first
    (package / "stages" / "train.py").write_text("A = 2\n")
    assert resume_module.code_digest(package) != first


def test_an_unreadable_or_foreign_state_starts_fresh(tmp_path, splits, caplog):
    state = ResumeFile(tmp_path / "state.pt")
    state.path.write_bytes(b"not a torch file")
    with caplog.at_level(logging.INFO):
        result = summary(fit(tiny(), splits, torch.device("cpu"), resume=state))
    assert "unreadable resume state" in caplog.text and "starting fresh" in caplog.text
    assert same(result, summary(fit(tiny(), splits, torch.device("cpu"))))


def test_a_state_is_removed_with_its_stage_only_on_success(tmp_path):
    with resumable("train@x", tmp_path / ".resume") as store:
        store.run().save({"a": 1}, "key")
        assert store.run().load("key") == {"a": 1}
    assert not (tmp_path / ".resume").exists()  # the folder goes with the last state in it
    with pytest.raises(RuntimeError), resumable("train@x", tmp_path / ".resume") as store:
        store.run().save({"a": 1}, "key")
        raise RuntimeError("crash")
    assert (tmp_path / ".resume" / "train@x" / "state.pt").is_file()  # kept for the rerun
    other = ResumeStore("train@y", tmp_path / ".resume")
    other.run().save({"b": 2}, "key")
    ResumeStore("train@x", tmp_path / ".resume").clear()
    assert other.run().load("key") == {"b": 2}  # another stage's state is left alone


def test_resume_states_are_ignored_by_git_and_dvc():
    assert "/.resume/" in (REPO / ".gitignore").read_text().splitlines()
    assert "/.resume/" in (REPO / ".dvcignore").read_text().splitlines()


# --------------------------------------------------------------------------- under DVC


@pytest.mark.slow
def test_kill_9_during_dvc_repro_then_dvc_repro_gives_the_same_bytes(tmp_path):
    """The issue's check as a user meets it: `dvc repro` killed with SIGKILL (the whole process
    group: DVC and the stage) mid-training, then `dvc repro` again."""
    from tests.tiny_repo import BIN, build_tiny_repo, dvc, tool_env

    origin = build_tiny_repo(tmp_path / "origin")
    runs = {}
    for name in ("whole", "killed"):
        repo = tmp_path / name
        shutil.copytree(origin, repo, symlinks=True)
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["variants"]["tiny"]["train"]["epochs"] = 40  # a window to kill it in
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        if name == "killed":
            process = subprocess.Popen(
                [str(BIN / "dvc"), "repro", "train@tiny"], cwd=repo, env=tool_env(), start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 240
            while saved_epoch_at(repo / ".resume" / "train@tiny" / "state.pt") < 2:
                assert process.poll() is None, "dvc repro ended before the second epoch's state"
                assert time.monotonic() < deadline
                time.sleep(0.01)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            assert 2 <= saved_epoch_at(repo / ".resume" / "train@tiny" / "state.pt") < 40
        done = dvc("repro", "train@tiny", cwd=repo)
        assert ("resuming after epoch" in done.stdout + done.stderr) == (name == "killed")
        assert not (repo / ".resume").exists()
        assert "changed" not in dvc("status", "train@tiny", cwd=repo).stdout
        runs[name] = {p: (repo / p).read_bytes() for p in ("models/tiny.pt", *TINY_REPORTS)}
    assert runs["killed"] == runs["whole"]


TINY_REPORTS = [
    "reports/tiny/metrics.json",
    "reports/tiny/training.json",
    "reports/tiny/plots/epochs.csv",
    "reports/tiny/plots/steps.csv",
]


def saved_epoch_at(path: Path) -> int:
    """The last finished epoch in a resume state (0: none yet). The file is replaced atomically,
    so a read never sees half of it; it may be removed between two reads (the run completed)."""
    try:
        return torch.load(path, weights_only=True)["state"]["run"]["epoch"]
    except FileNotFoundError:
        return 0


# --------------------------------------------------------------------------- the seed study's runs


def test_an_interrupted_seed_study_reads_its_finished_runs_back(tiny_study, monkeypatch, caplog):  # noqa: F811
    from pipeline.studies import seed_study

    root, _, _ = tiny_study
    monkeypatch.chdir(root)  # .resume/ lives in the working directory (the repository root under DVC)
    out = root / "reports" / "seed_study" / "runs"
    args = ("tdm_max", root / "params.yaml", root / "reports", out)
    whole = seed_study.seed_study(*args)
    assert not (root / ".resume").exists()
    (out / "tdm_max.json").unlink()

    real_fit = seed_study.fit

    def stop(so_far) -> None:
        raise Stop

    def stopped_in_the_last_run(variant, splits, device, **options):
        if variant.seed == 40202:  # "killed" once its first epoch's state is written
            options["on_epoch"] = stop
        return real_fit(variant, splits, device, **options)

    monkeypatch.setattr(seed_study, "fit", stopped_in_the_last_run)
    with pytest.raises(Stop):
        seed_study.seed_study(*args)
    states = root / ".resume" / "seed_study@tdm_max"
    assert sorted(p.name for p in states.iterdir()) == ["seed-40201.pt", "seed-40202.pt"]
    assert not (out / "tdm_max.json").exists()

    monkeypatch.setattr(seed_study, "fit", real_fit)
    with caplog.at_level(logging.INFO):
        again = seed_study.seed_study(*args)
    assert caplog.text.count("resuming after epoch 1 of 1") == 2  # both runs read back, none retrained
    timeless = lambda payload: [{**run, "train_seconds": None} for run in payload["runs"]]  # noqa: E731
    assert timeless(again) == timeless(whole) and again["test_accuracy"] == whole["test_accuracy"]
    assert not (root / ".resume").exists()
