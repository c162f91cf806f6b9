"""Writers that must not destroy what they should not, and stages whose outputs are one set.

Each test reproduces a fault of the 2026-12-07 audit (../shared/reviews/reliability-2026-12-07.md)
that failed before its fix: ``--out /dev/null`` (as root) replaced the device node with a plain
file, ``--json /dev/stdout`` replaced the link, ``predict --out`` could name the checkpoint it
reads, and a full or read-only reports folder left a new model beside the previous run's
metrics (``train@prac5``). A full disk is simulated by a write that raises ``ENOSPC``; a
read-only folder by ``chmod`` for an ordinary user, by a fake ``EROFS`` as root (root writes
through any mode bits).
"""

from __future__ import annotations

import copy
import errno
import os
import stat
import tempfile
from pathlib import Path

import pytest
import yaml

from pipeline.core.cli import run_stage
from pipeline.core.config import load_params
from pipeline.core.errors import DataError
from pipeline.core.io import OutputError, atomic_path, check_outputs, output_set, write_json, write_text
from pipeline.data.readers.image_folder import read_image_dir

ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[1]


def one_error_line(capsys, exc_info) -> str:
    """The single ``error:`` line a stage printed before exiting 1."""
    err = capsys.readouterr().err.strip().splitlines()
    assert exc_info.value.code == 1 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith((".tmp", ".probe"))]


# --------------------------------------------------------------------------- special files as outputs


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_to_file(path: Path) -> None:
    (path.parent / "real.txt").write_text("kept")
    path.symlink_to("real.txt")


def _link_to_device(path: Path) -> None:
    path.symlink_to("/dev/null")  # as /dev/stdout is a link to /proc/self/fd/1


def _device(path: Path) -> None:
    if not ROOT:
        pytest.skip("creating a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own


def _kind(path: Path) -> str:
    mode = os.lstat(path).st_mode
    return "link" if stat.S_ISLNK(mode) else "fifo" if stat.S_ISFIFO(mode) else "char" if stat.S_ISCHR(mode) else "?"


@pytest.mark.parametrize(
    ("make", "kind", "said"),
    [
        (_fifo, "fifo", "a named pipe"),
        (_link_to_file, "link", "a symbolic link (to real.txt)"),
        (_link_to_device, "link", "a symbolic link (to /dev/null)"),
        (_device, "char", "a character device"),
    ],
)
@pytest.mark.parametrize("writer", ["write_text", "write_json", "atomic_path"])
def test_a_special_file_is_never_replaced_by_a_plain_file(tmp_path, make, kind, said, writer):
    """P_outdev, Q_jsonstdout: refused in one line naming it; the node or link is still there."""
    target = tmp_path / "out.txt"
    make(target)
    with pytest.raises(OutputError) as exc:
        if writer == "write_text":
            write_text(target, "x")
        elif writer == "write_json":
            write_json(target, {"a": 1})
        else:
            with atomic_path(target) as tmp:
                tmp.write_text("x")
    assert (
        str(exc.value)
        == f"{target}: is {said}, not a regular file; refusing to replace it (name a new or regular file)"
    )
    assert _kind(target) == kind and not temporaries(tmp_path)
    if kind == "link" and said.endswith("(to real.txt)"):
        assert (tmp_path / "real.txt").read_text() == "kept"


def test_a_second_writer_of_the_same_output_is_named_by_the_first(tmp_path):
    """CC: a second `convert_mnist` to the same folder removes the first one's temporary as stale; the
    first died with `[Errno 2] No such file or directory: '.cc.<random>.tmp/mnist_test.csv'`."""
    target = tmp_path / "csv"
    with pytest.raises(OutputError, match=r"csv: its temporary \.csv\.\w{8}\.tmp was removed while being written"):
        with atomic_path(target) as first:
            first.mkdir()
            (first / "mnist_train.csv").write_text("first")
            with atomic_path(target) as second:  # what the other process does meanwhile
                second.mkdir()
                (second / "mnist_train.csv").write_text("second")
                (second / "mnist_test.csv").write_text("second")
            (first / "mnist_test.csv").write_text("first")
    assert sorted(p.read_text() for p in target.iterdir()) == ["second", "second"] and not temporaries(tmp_path)


# --------------------------------------------------------------------------- an output that is an input


@pytest.mark.parametrize("spelling", ["same path", "relative", "hard link", "symbolic link"])
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, monkeypatch, spelling):
    """P_outmodel: `predict --model M --out M` overwrote the checkpoint; every spelling of M is caught."""
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "m.pt"
    model.write_bytes(b"weights")
    out = {
        "same path": model,
        "relative": Path("sub/../m.pt"),
        "hard link": tmp_path / "hard.pt",
        "symbolic link": tmp_path / "sym.pt",
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "hard link":
        os.link(model, out)
    elif spelling == "symbolic link":
        out.symlink_to(model)
    with pytest.raises(
        OutputError, match=r"is also an input of this command \(--model .*m\.pt\); refusing to overwrite it"
    ):
        check_outputs([out], {"--model": model})
    assert model.read_bytes() == b"weights"


def test_distinct_outputs_and_missing_inputs_pass(tmp_path):
    check_outputs([tmp_path / "new" / "out.txt"], {"--model": tmp_path / "m.pt", "--labels": None})
    assert not (tmp_path / "new").exists(), "checking must not create folders"
    assert not temporaries(tmp_path)


# --------------------------------------------------------------------------- the commands


@pytest.fixture
def inputs(tmp_path):
    """A checkpoint (never loaded: the checks come first), an images folder, predictions and labels."""
    (tmp_path / "images").mkdir()
    (tmp_path / "m.pt").write_bytes(b"weights")
    (tmp_path / "q1_test.txt").write_text("0\n1\n")
    (tmp_path / "labels.csv").write_text("filename,label\na.png,0\nb.png,1\n")
    (tmp_path / "null").symlink_to("/dev/null")  # what `--out /dev/null` or `--json /dev/stdout` name
    return tmp_path


@pytest.mark.parametrize(
    ("out", "said"), [("m.pt", "is also an input of this command"), ("null", "is a symbolic link")]
)
def test_predict_refuses_its_checkpoint_or_a_special_file_as_out(inputs, out, said):
    """P_outmodel: `predict --model M --out M` replaced the checkpoint by the predictions; P_outdev."""
    from pipeline.inference.predict import run_predict

    with pytest.raises(OutputError, match=said):
        run_predict(inputs / "m.pt", inputs / "images", inputs / out)
    assert (inputs / "m.pt").read_bytes() == b"weights" and (inputs / "null").is_symlink()


@pytest.mark.parametrize(("out", "said"), [("q1_test.txt", "is also an input"), ("null", "is a symbolic link")])
def test_grade_cse849_refuses_its_input_or_a_special_file_as_json(inputs, capsys, out, said):
    """Q_jsonstdout: `--json /dev/stdout` replaced the link (as root); `X --json X` replaced the predictions."""
    from pipeline import __main__ as cli

    argv = ["grade-cse849", str(inputs / "q1_test.txt"), "--labels", str(inputs / "labels.csv")]
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--json", str(inputs / out)])
    assert said in one_error_line(capsys, exc)
    assert (inputs / "q1_test.txt").read_text() == "0\n1\n" and (inputs / "null").is_symlink()


def test_autograde_refuses_its_submission_as_json(inputs, capsys):
    from pipeline.grading.hku import main

    submission = inputs / "layers.py"
    submission.write_text("# a student's file\n")
    assert main(["--submission", str(submission), "--json", str(submission)]) == 1
    assert "is also an input of this command (--submission" in capsys.readouterr().err
    assert submission.read_text() == "# a student's file\n"


def test_export_weights_refuses_to_overwrite_the_checkpoint(inputs):
    from pipeline.stages.export_weights import run

    with pytest.raises(OutputError, match=r"is also an input of this command \(checkpoint "):
        run("m", inputs, inputs / "m.pt")
    assert (inputs / "m.pt").read_bytes() == b"weights"


# --------------------------------------------------------------------------- outputs written as one set


def _olds(tmp_path: Path, names=("model.pt", "a/metrics.json", "a/plots/steps.csv")) -> list[Path]:
    targets = [tmp_path / n for n in names]
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text(f"old {t.name}")
    return targets


def test_an_output_set_replaces_every_target_together(tmp_path):
    targets = _olds(tmp_path)
    with output_set(*targets) as temps:
        for tmp, t in zip(temps, targets, strict=True):
            write_text(tmp, f"new {t.name}")
        assert all(t.read_text() == f"old {t.name}" for t in targets), "nothing replaced before the end"
    assert [t.read_text() for t in targets] == [f"new {t.name}" for t in targets]
    assert not temporaries(tmp_path)


@pytest.mark.parametrize("failure", ["full disk", "full disk, written directly", "bug", "one output forgotten"])
def test_a_failure_inside_an_output_set_keeps_every_previous_output(tmp_path, monkeypatch, failure):
    """F1: the second of three files fails to write; the first (already written) is not renamed either."""
    targets = _olds(tmp_path)
    real_write = Path.write_text

    def full_disk(self, data, *args, **kwargs):
        if "metrics.json" in self.name:  # a write to an open file: errno, no file name
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data, *args, **kwargs)

    if failure == "full disk":
        monkeypatch.setattr(Path, "write_text", full_disk)
    expected = {
        "full disk": (OutputError, f"{targets[1]}: cannot write it: No space left on device \\(ENOSPC\\)"),
        "full disk, written directly": (OutputError, f"{targets[2]}: cannot write it: No space left on device"),
        "bug": (ZeroDivisionError, "division"),
        "one output forgotten": (RuntimeError, f"nothing written for {targets[2]}"),
    }[failure]
    with pytest.raises(expected[0], match=expected[1]), output_set(*targets) as temps:
        write_text(temps[0], "new")
        if failure == "bug":
            print(1 / 0)
        if failure == "full disk, written directly":  # not through pipeline.core.io: which file is not known
            with open(temps[1], "w"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_text(temps[1], "new")
        if failure != "one output forgotten":
            write_text(temps[2], "new")
    assert [t.read_text() for t in targets] == [f"old {t.name}" for t in targets]
    assert not temporaries(tmp_path)


# --------------------------------------------------------------------------- the train stage


@pytest.fixture
def tiny_train(tmp_path, monkeypatch, tiny_raw):
    """A working folder whose params.yaml trains ds5220_mlp on the tiny MNIST, one epoch, and a
    function ``run(epochs)`` that trains it as the stage does (one-line errors, exit 1)."""
    from pipeline.stages.train import train_variant

    params = copy.deepcopy(load_params())
    variant = params["variants"]["ds5220_mlp"]
    variant["data"]["path"] = str(tiny_raw / "mnist")
    monkeypatch.chdir(tmp_path)
    # the tiny set's pixels are random: a model at chance is expected here, and not what is tested
    monkeypatch.setattr("pipeline.training.engine.refuse_chance_level", lambda *args, **kwargs: None, raising=False)

    def run(epochs: int, models_dir: Path = Path("models")) -> None:
        variant["train"]["epochs"] = epochs
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        run_stage(lambda: train_variant("ds5220_mlp", models_dir, Path("reports")))

    return run


OUTPUTS = [
    "models/ds5220_mlp.pt",
    "reports/ds5220_mlp/metrics.json",
    "reports/ds5220_mlp/training.json",
    "reports/ds5220_mlp/timings.json",
    "reports/ds5220_mlp/plots/epochs.csv",
    "reports/ds5220_mlp/plots/steps.csv",
]


@pytest.mark.parametrize(
    ("full", "method"), [("reports/ds5220_mlp/plots/steps.csv", "write_text"), ("models/ds5220_mlp.pt", "write_bytes")]
)
def test_a_full_disk_keeps_the_previous_model_and_reports(tiny_train, tmp_path, monkeypatch, capsys, full, method):
    """F1, F2: a retrain (2 epochs) meets a full disk on one output; the 1-epoch model stays beside its own
    reports (the model used to be replaced first, then the reports failed: a traceback)."""
    tiny_train(epochs=1)
    before = {rel: (tmp_path / rel).read_bytes() for rel in OUTPUTS}
    real_write = getattr(Path, method)

    def full_disk(self, data, *args, **kwargs):
        if Path(full).name in self.name:  # the write to an open file fails: an errno, no file name
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, method, full_disk)
    with pytest.raises(SystemExit) as exc:
        tiny_train(epochs=2)
    line = one_error_line(capsys, exc)
    assert line == f"error: {full}: cannot write it: No space left on device (ENOSPC); nothing was replaced"
    assert {rel: (tmp_path / rel).read_bytes() for rel in OUTPUTS} == before
    assert not temporaries(tmp_path / "models") and not temporaries(tmp_path / "reports")


def test_evaluate_writes_its_six_files_as_one_set(tmp_path, monkeypatch):
    """A full disk at the last figure used to leave the new metrics.json beside the old figures."""
    from matplotlib.figure import Figure

    from pipeline.inference.evaluation import OUTPUT_FILES, evaluate_checkpoint
    from tests.tiny_folder import make_checkpoint, make_folder_dataset, tiny_variant

    make_folder_dataset(tmp_path / "data", n_test=12, metadata=False)
    model = make_checkpoint(tmp_path / "m.pt", tiny_variant(tmp_path / "data"))
    out = tmp_path / "eval"
    out.mkdir()
    for name in OUTPUT_FILES:
        (out / name).write_text("previous")
    real_savefig = Figure.savefig

    def full_disk(self, fname, *args, **kwargs):
        if "misclassified" in str(fname):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_savefig(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", full_disk)
    with pytest.raises(OutputError, match=rf"{out / 'misclassified.png'}: cannot write it: No space left on device"):
        evaluate_checkpoint(model, out)
    assert all((out / name).read_text() == "previous" for name in OUTPUT_FILES) and not temporaries(tmp_path)


def _refuse_writes_under(folder: Path, monkeypatch) -> None:
    """``folder`` read-only: chmod for an ordinary user; as root, a fake EROFS from mkstemp."""
    if not ROOT:
        folder.chmod(0o555)
        return
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).absolute().is_relative_to(folder.absolute()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)


def _no_training(monkeypatch) -> None:
    def trained(*args, **kwargs):
        raise AssertionError("trained although an output could not be written")

    monkeypatch.setattr("pipeline.stages.train.fit", trained)
    monkeypatch.setattr("pipeline.stages.train.load_splits", trained)


@pytest.mark.parametrize(
    ("read_only", "named"), [("reports", "reports/ds5220_mlp/plots/epochs.csv"), ("models", "models/ds5220_mlp.pt")]
)
def test_a_read_only_output_folder_is_refused_before_training(
    tiny_train, tmp_path, monkeypatch, capsys, read_only, named
):
    """F3b, F3: a read-only reports folder used to get a new model and no reports (a read-only models
    folder: a traceback naming a temporary), in both cases after the whole training."""
    previous = {"models": tmp_path / "models" / "ds5220_mlp.pt", "reports": tmp_path / "reports" / "keep.txt"}
    for path in previous.values():
        path.parent.mkdir()
        path.write_bytes(b"previous")
    _refuse_writes_under(tmp_path / read_only, monkeypatch)
    _no_training(monkeypatch)
    try:
        with pytest.raises(SystemExit) as exc:
            tiny_train(epochs=1)
    finally:
        (tmp_path / read_only).chmod(0o755)
    line = one_error_line(capsys, exc)
    reason = "Read-only file system (EROFS)" if ROOT else "Permission denied (EACCES)"
    assert line == f"error: {named}: cannot write it: {reason}; nothing was replaced"
    assert all(path.read_bytes() == b"previous" for path in previous.values())
    assert not (tmp_path / "reports" / "ds5220_mlp").exists() and not temporaries(tmp_path)


def test_a_models_dir_that_is_a_file_is_refused_before_training(tiny_train, tmp_path, monkeypatch, capsys):
    """U_modelsfile: was refused only after the whole training."""
    (tmp_path / "mfile").write_text("not a folder")
    _no_training(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        tiny_train(epochs=1, models_dir=Path("mfile"))
    assert (
        one_error_line(capsys, exc)
        == "error: mfile/ds5220_mlp.pt: cannot create its folder: mfile is a file, not a folder"
    )
    assert (tmp_path / "mfile").read_text() == "not a folder"


def test_a_folder_that_takes_no_files_is_named_not_its_temporary(capsys):
    """P_outproc: `--out /proc/x.txt` named '/proc/.x.txt.<random>.tmp'."""
    with pytest.raises(SystemExit) as exc:
        run_stage(lambda: write_text("/proc/x.txt", "1\n"))
    assert one_error_line(capsys, exc).startswith("error: /proc/x.txt: cannot write it: ")


@pytest.mark.parametrize("study", ["seed_study", "mitigation"])
def test_a_study_output_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch, study):
    """The seed study (N trainings) and a mitigation row check their output as train does, before the work."""
    from pipeline.studies import mitigation, seed_study

    (tmp_path / "blocker").write_text("not a folder")
    out = tmp_path / "blocker" / "runs"
    module = seed_study if study == "seed_study" else mitigation

    def trained(*args, **kwargs):
        raise AssertionError("trained although the output could not be written")

    monkeypatch.setattr(module, "load_splits", trained)
    monkeypatch.setattr(module, "fit", trained)
    with pytest.raises(NotADirectoryError, match=r"runs/\w+\.json: cannot create its folder: .*blocker is a file"):
        if study == "seed_study":
            seed_study.seed_study("tdm_max", REPO / "params.yaml", REPO / "reports", out)
        else:
            mitigation.mitigation("flip_only", REPO / "params.yaml", tmp_path / "models", out)


# --------------------------------------------------------------------------- reading


def test_predict_skipping_non_images_skips_a_link_loop_too(tmp_path):
    """`predict --skip-non-images` logs and leaves out a link loop, as any file that is not an image."""
    import numpy as np

    from pipeline.inference.predict import read_images_skipping
    from tests.tiny_folder import write_png

    write_png(tmp_path / "a.png", np.full((28, 28), 7, dtype=np.uint8))
    (tmp_path / "b.png").symlink_to("b.png")
    images, files = read_images_skipping(tmp_path, (28, 28), 1)
    assert files == ["a.png"] and images.shape == (1, 1, 28, 28) and int(images.max()) == 7


def test_a_folder_given_as_a_checkpoint_is_called_a_folder(tmp_path):
    """K_dir: `--model some.pt/` (a folder) said "no such checkpoint (train it first ...)"."""
    from pipeline.training.checkpoint import load_checkpoint

    (tmp_path / "m.pt").mkdir()
    with pytest.raises(IsADirectoryError, match=r"m\.pt: is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path / "m.pt")


@pytest.mark.parametrize("links", [("l1.png", "l2.png"), ("self.png", "self.png")])
def test_a_symbolic_link_loop_among_the_images_is_one_line(tmp_path, links):
    """P_symloop: `os.scandir(...).is_dir()` raised OSError ELOOP, shown as a traceback."""
    first, second = links
    (tmp_path / first).symlink_to(second)
    if first != second:
        (tmp_path / second).symlink_to(first)
    with pytest.raises(DataError, match=rf"{first}: cannot be read: Too many levels of symbolic links"):
        read_image_dir(tmp_path, size=(28, 28), channels=1)


def test_a_byte_order_mark_before_the_predictions_is_read_past(tmp_path):
    """Q_bom: a q1_test.txt saved with a BOM was refused: "line 1: '\\ufeff0' is not a class index 0-9"."""
    from pipeline.grading.cse849 import read_predictions

    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf0\n7\n")
    assert read_predictions(tmp_path / "bom.txt") == [0, 7]
