"""Faults of the 2026-12-07 reliability audit in params, models, checkpoints, data and report inputs.

Each was accepted before (a chance-level or gradient-ascent model saved as a success, a
traceback, a params value read one way by the stage and another by DVC, a report showing
``nan%``) and is now refused before any work: exit status 1, one ``error:`` line naming the
key, file or split, and nothing written. The audit's IDs (N06, P13b, Y02, ...) name each case.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from dvc.utils.serialize import parse_yaml

from pipeline.__main__ import main as cli_main
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError, load_params
from pipeline.core.params import load_all
from pipeline.core.schemas import Metrics, SchemaError, check
from pipeline.inference.evaluation import evaluate_checkpoint
from pipeline.inference.schemas import Evaluation
from pipeline.stages.report import run as run_report
from pipeline.stages.train import train_variant
from pipeline.training.checkpoint import CheckpointError, load_checkpoint
from tests.fake_reports import build_fake_repo, write_json
from tests.tiny_folder import make_checkpoint, make_folder_dataset, tiny_variant

REPO = Path(__file__).resolve().parents[1]
PARAMS_TEXT = (REPO / "params.yaml").read_text(encoding="utf-8")


def edited(block: str, pattern: str, replacement: str, text: str = PARAMS_TEXT) -> str:
    """params.yaml with the first line matching ``pattern`` inside the mapping ``block`` (a key at
    two spaces' indent, or a top-level key) replaced; anchored on keys, not on comments."""
    indent = "  " if block in load_params(REPO / "params.yaml").get("variants", {}) else ""
    start = re.search(rf"^{indent}{block}:", text, re.M)
    assert start, block
    end = re.compile(rf"^{indent}\S" if indent else r"^\S", re.M).search(text, start.end())
    stop = end.start() if end else len(text)
    body, count = re.subn(pattern, replacement, text[start.start() : stop], count=1, flags=re.M)
    assert count == 1, (block, pattern)
    return text[: start.start()] + body + text[stop:]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty folder as the working directory (stages read ./params.yaml)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def refused(work, folder: Path, capsys, message: str) -> str:
    """Run ``work`` as a stage does; assert exit status 1, exactly one ``error:`` line matching
    ``message``, no traceback, and nothing new under ``folder``. Returns the error line."""
    before = files_under(folder)
    with pytest.raises(SystemExit) as stop:
        run_stage(work)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert stop.value.code == 1
    assert "Traceback" not in err
    assert len(errors) == 1, err
    assert re.search(message, errors[0]), errors[0]
    assert files_under(folder) == before, "something was written"
    return errors[0]


def train_refuses(workdir: Path, text: str, variant: str, message: str, capsys) -> str:
    (workdir / "params.yaml").write_text(text, encoding="utf-8")
    return refused(lambda: train_variant(variant, workdir / "models", workdir / "reports"), workdir, capsys, message)


MLP = "ds5220_mlp"


# --------------------------------------------------------------------------- params: values


@pytest.mark.parametrize(
    ("block", "pattern", "replacement", "message"),
    [
        # N06: every input became 0 and a chance-level model was saved, exit 0
        (MLP, r"^      normalize: .*$", "      normalize: {mode: fixed, mean: [0.1], std: [.inf]}",
         r"variants\.ds5220_mlp\.data\.normalize\.std\[0\]: must be a finite number, got inf$"),
        # N05: the NaN loss was blamed on the learning rate
        (MLP, r"^      normalize: .*$", "      normalize: {mode: fixed, mean: [.nan], std: [0.3]}",
         r"variants\.ds5220_mlp\.data\.normalize\.mean\[0\]: must be a finite number, got nan$"),
        # N04
        (MLP, r"^      optimizer: .*$", "      optimizer: {name: sgd, lr: 0.01, weight_decay: .inf}",
         r"variants\.ds5220_mlp\.train\.optimizer\.weight_decay: must be a finite number, got inf$"),
        # N02
        (MLP, r"^      optimizer: .*$", "      optimizer: {name: sgd, lr: .inf}",
         r"variants\.ds5220_mlp\.train\.optimizer\.lr: must be a finite number, got inf$"),
        # N07
        (MLP, r"^(      normalize: .*)$", r"\1\n      augment: {random_erasing: {p: 1.0, value: .nan}}",
         r"variants\.ds5220_mlp\.data\.augment\.random_erasing\.value: must be a finite number, got nan$"),
        # N08
        (MLP, r"^(      normalize: .*)$", r"\1\n      augment: {gaussian_noise: {sigma: .inf}}",
         r"variants\.ds5220_mlp\.data\.augment\.gaussian_noise\.sigma: must be a finite number, got inf$"),
        # P13b: the cosine schedule went below 0 and the run ascended the loss, exit 0
        (MLP, r"^(      epochs: .*)$", r"\1\n      scheduler: {name: cosine, eta_min: -0.005}",
         r"variants\.ds5220_mlp\.train\.scheduler\.eta_min: must be >= 0 and below train\.optimizer\.lr "
         r"\(0\.01\), got -0\.005$"),
        # P13: the same, diverging, blamed on the learning rate
        (MLP, r"^(      epochs: .*)$", r"\1\n      scheduler: {name: cosine, eta_min: -1.0}",
         r"train\.scheduler\.eta_min: must be >= 0 .* got -1\.0$"),
        # a schedule that would rise, not fall
        (MLP, r"^(      epochs: .*)$", r"\1\n      scheduler: {name: cosine, eta_min: 0.5}",
         r"train\.scheduler\.eta_min: must be >= 0 and below .* got 0\.5$"),
    ],
    ids=["N06-std-inf", "N05-mean-nan", "N04-weight-decay-inf", "N02-lr-inf", "N07-erasing-nan",
         "N08-noise-inf", "P13b-eta-min-negative", "P13-eta-min-very-negative", "eta-min-above-lr"],
)  # fmt: skip
def test_non_finite_or_out_of_range_params_are_refused_naming_the_key(
    workdir, capsys, block, pattern, replacement, message
):
    train_refuses(workdir, edited(block, pattern, replacement), MLP, message, capsys)


# --------------------------------------------------------------------------- params: random seeds


@pytest.mark.parametrize(
    ("block", "pattern", "replacement", "message"),
    [
        # C27c: torch's "Overflow when unpacking long long" traceback
        (MLP, r"^    seed: .*$", "    seed: 99999999999999999999",
         r"^error: variants\.ds5220_mlp\.seed: a random seed must be an integer from 0 to 4294967295, "
         r"got 99999999999999999999$"),
        (MLP, r"^    seed: .*$", "    seed: -1", r"variants\.ds5220_mlp\.seed: a random seed must be .* got -1$"),
        ("stats", r"^  seed: .*$", "  seed: 4294967296", r"^error: stats\.seed: a random seed must be .* got 4294967296$"),
        ("composite", r"^  seed: .*$", "  seed: -3", r"^error: composite\.seed: a random seed must be .* got -3$"),
        # the seed study runs the variant's seed and the next seeds - 1: the last must fit too
        ("tdm_max", r"^    seed: .*$", "    seed: 4294967295",
         r"^error: variants\.tdm_max\.seed: a random seed \(and the \d+ after it, one per run\) must be an integer "
         r"from 0 to 4294967295, got 4294967295$"),
    ],
    ids=["C27c-overflow", "negative", "stats", "composite", "seed-study-last-run"],
)  # fmt: skip
def test_a_random_seed_outside_what_torch_and_numpy_take_is_refused(
    workdir, capsys, block, pattern, replacement, message
):
    train_refuses(workdir, edited(block, pattern, replacement), MLP, message, capsys)


def test_the_largest_seed_is_accepted_where_no_study_adds_to_it():
    params = load_all(REPO / "params.yaml")
    alone = next(name for name in params.variants if name not in params.study_variants())
    text = edited(alone, r"^    seed: .*$", "    seed: 4294967295")
    assert load_all(load_params_text(text)).variant(alone).seed == 2**32 - 1


def load_params_text(text: str) -> dict:
    return parse_yaml(text, "params.yaml")


# --------------------------------------------------------------------------- params: model arguments


@pytest.mark.parametrize(
    ("block", "pattern", "replacement", "message"),
    [
        # C20b: a traceback from torch.empty after the data had loaded
        (MLP, r"^(      name: ds5220_mlp)$", r'\1\n      args: {hidden: "64"}',
         r"^error: variants\.ds5220_mlp\.model\.args\.hidden: expected an integer, got '64'$"),
        # C20c: a 10-parameter model at chance was saved, exit 0
        (MLP, r"^(      name: ds5220_mlp)$", r"\1\n      args: {hidden: 0}",
         r"^error: variants\.ds5220_mlp\.model\.args\.hidden: a size \(width, kernel, stride\) must be at least 1, "
         r"got 0$"),
        # C20d: torch's "negative dimension" traceback
        (MLP, r"^(      name: ds5220_mlp)$", r"\1\n      args: {hidden: -5}",
         r"model\.args\.hidden: a size .* got -5$"),
        (MLP, r"^(      name: ds5220_mlp)$", r"\1\n      args: {hidden: 64.0}",
         r"model\.args\.hidden: expected an integer, got 64\.0$"),
        ("tdm_max", r"^      args: .*$", "      args: {pool: maxx}",
         r"^error: variants\.tdm_max\.model\.args\.pool: unknown value 'maxx'; allowed: max, avg$"),
        ("hku_simplecnn", r"^      args: .*$", "      args: {layers: custom, conv1_channels: 32, dropout: 1.5}",
         r"^error: variants\.hku_simplecnn\.model\.args\.dropout: must be in \[0\.0, 1\.0\], got 1\.5$"),
        ("hku_simplecnn", r"^      args: .*$", "      args: {layers: Torch}",
         r"model\.args\.layers: unknown value 'Torch'; allowed: custom, torch$"),
    ],
    ids=["C20b-string", "C20c-zero", "C20d-negative", "float-for-int", "unknown-pool", "dropout-1.5", "layers"],
)  # fmt: skip
def test_bad_model_arguments_are_one_line_naming_the_key(workdir, capsys, block, pattern, replacement, message):
    variant = block if block != MLP else MLP
    train_refuses(workdir, edited(block, pattern, replacement), variant, message, capsys)


# --------------------------------------------------------------------------- params: YAML 1.2, as DVC reads


# Scalars that YAML 1.1 (PyYAML) and YAML 1.2 (ruamel.yaml, DVC) read differently, and some they agree on.
SPELLINGS = ["012", "0o12", "on", "off", "yes", "no", "1:30", "1e-3", "1_000", "0x10", ".inf", "~", "2026-12-07"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_params_are_read_exactly_as_dvc_reads_them(tmp_path, spelling):
    path = tmp_path / "params.yaml"
    path.write_text(f"value: {spelling}\n", encoding="utf-8")
    assert load_params(path) == parse_yaml(path.read_text(encoding="utf-8"), str(path))


def test_the_committed_params_read_the_same_for_the_stages_and_dvc():
    ours = load_params(REPO / "params.yaml")
    dvc = parse_yaml(PARAMS_TEXT, "params.yaml")
    assert ours == dvc
    assert json.dumps(ours, sort_keys=True, default=str) == json.dumps(dvc, sort_keys=True, default=str)  # types too


def test_a_zero_padded_integer_is_decimal_as_in_dvc_lock(tmp_path):
    """Y02: PyYAML read `epochs: 012` as octal 10 and trained 10 epochs while dvc.lock recorded 12."""
    path = tmp_path / "params.yaml"
    path.write_text(edited(MLP, r"^      epochs: .*$", "      epochs: 012"), encoding="utf-8")
    assert load_all(path).variant(MLP).train.epochs == 12
    assert parse_yaml(path.read_text(encoding="utf-8"), str(path))["variants"][MLP]["train"]["epochs"] == 12
    path.write_text(edited(MLP, r"^      epochs: .*$", "      epochs: 0o12"), encoding="utf-8")
    assert load_all(path).variant(MLP).train.epochs == 10  # Y06: was refused as "expected an integer"


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        # Y04: the stage read True, DVC recorded the string "on"
        (r"\1\n      channels_last: on", r"variants\.ds5220_mlp\.train\.channels_last: expected true or false, got 'on'$"),
        # YAML 1.1's sexagesimal 1:30 = 90 is the string '1:30' in YAML 1.2
        (r"      epochs: 1:30", r"variants\.ds5220_mlp\.train\.epochs: expected an integer, got '1:30'$"),
    ],
    ids=["Y04-on", "sexagesimal"],
)  # fmt: skip
def test_yaml_1_1_spellings_are_refused_where_dvc_reads_text(workdir, capsys, replacement, message):
    train_refuses(workdir, edited(MLP, r"^(      epochs: .*)$", replacement), MLP, message, capsys)


def test_a_repeated_key_names_both_lines(workdir, capsys):
    text = edited(MLP, r"^(      epochs: .*)$", r"\1\n      epochs: 3")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row == "      epochs: 3")
    train_refuses(
        workdir,
        text,
        MLP,
        rf"^error: params\.yaml: line {line}: duplicate key 'epochs' \(first at line {line - 1}\)",
        capsys,
    )


def test_broken_yaml_is_one_line_with_its_position(workdir, capsys):
    text = edited(MLP, r"^      optimizer: .*$", "      optimizer: {name: sgd, lr: 0.01")
    train_refuses(
        workdir, text, MLP, r"^error: params\.yaml: invalid YAML: line \d+, column \d+: .*flow mapping", capsys
    )


def test_a_missing_variants_section_is_named(tmp_path):
    """P04: the message listed the allowed variants as an empty string."""
    raw = load_params(REPO / "params.yaml")
    del raw["variants"]
    with pytest.raises(ConfigError, match=r"unknown variant '\w+'; allowed: none \(params\.yaml has no variants"):
        load_all(raw)


def test_every_committed_value_is_accepted():
    params = load_all(REPO / "params.yaml")
    assert params.variants and all(v.seed >= 0 for v in params.variants.values())


# --------------------------------------------------------------------------- checkpoints


def test_a_checkpoint_whose_classes_disagree_with_its_outputs_is_refused(tmp_path, capsys):
    """E_twoclasses: two class names on a 10-output model evaluated with exit 0 (macro F1 0.978 for 0.961)."""
    data = tmp_path / "data"
    make_folder_dataset(data)
    variant = tiny_variant(data)
    good = make_checkpoint(tmp_path / "good.pt", variant)
    assert len(load_checkpoint(good).classes) == 10
    for classes in (["a", "b"], [str(i) for i in range(11)]):
        payload = torch.load(good, weights_only=True)
        payload["classes"] = classes
        bad = tmp_path / f"bad{len(classes)}.pt"
        torch.save(payload, bad)
        with pytest.raises(
            CheckpointError, match=rf"bad{len(classes)}\.pt: lists {len(classes)} classes but the model has 10 outputs"
        ):
            load_checkpoint(bad)
    refused(
        lambda: evaluate_checkpoint(bad, tmp_path / "eval", expected_variant="tiny"),
        tmp_path,
        capsys,
        r"^error: .*bad11\.pt: lists 11 classes but the model has 10 outputs",
    )


# --------------------------------------------------------------------------- data


def write_npz(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    np.savez(path, x=rng.integers(0, 256, (n, 784), dtype=np.uint8), y=rng.integers(0, 10, n).astype(np.int64))


@pytest.mark.parametrize(
    ("train_rows", "test_rows", "message"),
    [
        # G_emptytrain: a ZeroDivisionError traceback
        (0, 5, r"^error: data/mnist_npz: the train split \(mnist_npz\) has no images$"),
        # G_empty: a whole epoch trained, then the same traceback
        (5, 0, r"^error: data/mnist_npz: the test split \(mnist_npz\) has no images$"),
    ],
    ids=["G_emptytrain", "G_empty"],
)
def test_an_empty_split_is_one_line_before_training(workdir, capsys, train_rows, test_rows, message):
    write_npz(workdir / "data" / "mnist_npz" / "train.npz", train_rows)
    write_npz(workdir / "data" / "mnist_npz" / "test.npz", test_rows)
    train_refuses(workdir, PARAMS_TEXT, "prac5", message, capsys)


def test_a_hold_out_that_empties_a_split_is_refused(workdir, capsys):
    write_npz(workdir / "data" / "mnist_npz" / "train.npz", 1)
    write_npz(workdir / "data" / "mnist_npz" / "test.npz", 3)
    text = edited("prac5", r"^(      path: data/mnist_npz.*)$", r"\1\n      val_fraction: 0.9")
    train_refuses(
        workdir,
        text,
        "prac5",
        r"^error: data/mnist_npz: val_fraction 0\.9 of the 1 training images holds out 1, leaving 0 to train on",
        capsys,
    )


def test_a_text_file_named_npz_is_named_for_what_it_is(workdir, capsys):
    """G_notzip: numpy took it for a pickle and advised loading it unsafely."""
    write_npz(workdir / "data" / "mnist_npz" / "train.npz", 5)
    (workdir / "data" / "mnist_npz" / "test.npz").write_text("label,pixels\n1,2\n")
    error = train_refuses(
        workdir,
        PARAMS_TEXT,
        "prac5",
        r"^error: data/mnist_npz/test\.npz: not a \.npz file \(a zip archive of arrays x and y\); "
        r"it starts with b'label,pi'$",
        capsys,
    )
    assert "pickle" not in error and "unsafe" not in error


@pytest.mark.parametrize("remove", [["val"], ["val", "test"]])
def test_check_data_fails_on_a_dataset_the_training_reader_refuses(tmp_path, capsys, remove):
    """H_noval_cd: check-data printed "val missing" and exited 0 for a folder training refuses."""
    root = tmp_path / "ds"
    make_folder_dataset(root)
    cli_main(["check-data", str(root)])  # the whole dataset passes
    capsys.readouterr()
    for split in remove:
        shutil.rmtree(root / split)
    refused(
        lambda: cli_main(["check-data", str(root)]),
        tmp_path,
        capsys,
        rf"^error: .*ds: no {' or '.join(remove)} folder; training needs train/, val/ and test/$",
    )


def test_check_data_fails_on_an_empty_split(tmp_path, capsys):
    root = tmp_path / "ds"
    make_folder_dataset(root)
    for image in (root / "val").rglob("*.png"):
        image.unlink()
    refused(
        lambda: cli_main(["check-data", str(root)]),
        tmp_path,
        capsys,
        r"^error: .*ds/val: no image files$",
    )


# --------------------------------------------------------------------------- report inputs


@pytest.mark.parametrize(
    ("value", "schema", "message"),
    [
        ({"test_accuracy": float("nan")}, Metrics, r"^m\.json: test_accuracy: expected a finite number, got nan$"),
        ({"test_accuracy": 1.7}, Metrics, r"^m\.json: test_accuracy: expected a fraction in \[0, 1\], got 1\.7$"),
        ({"test_accuracy": -0.1}, Metrics, r"test_accuracy: expected a fraction in \[0, 1\], got -0\.1$"),
        ({"test_accuracy": 0.9, "test_loss": -3}, Metrics, r"test_loss: expected a non-negative number .* got -3$"),
        ({"val_loss": float("inf")}, Metrics, r"val_loss: expected a finite number, got inf$"),
        (
            {"misclassified": 1, "macro": {"precision": 1.2, "recall": 0.5, "f1": 0.5}, "per_class": {}},
            Evaluation,
            r"^m\.json: macro\.precision: expected a fraction in \[0, 1\], got 1\.2$",
        ),
    ],
    ids=["RP4-nan", "RP5-170%", "negative", "negative-loss", "inf-loss", "precision"],
)
def test_report_inputs_must_be_finite_and_in_range(value, schema, message):
    with pytest.raises(SchemaError, match=message):
        check(value, schema, "m.json")
    assert check({"test_accuracy": 0.0, "test_loss": 0.0}, Metrics, "m.json")  # the bounds themselves pass
    assert check({"test_accuracy": 1, "test_loss": 12.5}, Metrics, "m.json")


@pytest.mark.parametrize(("text", "shown"), [("NaN", "nan"), ("1.7", "1.7")], ids=["RP4", "RP5"])
def test_the_report_refuses_a_hand_edited_metric(tmp_path, capsys, text, shown):
    """RP4/RP5: a hand-edited metrics.json made the report show `nan%` or `170.00%`, exit 0."""
    root = build_fake_repo(tmp_path / "repo")
    metrics = root / "reports" / MLP / "metrics.json"
    write_json(metrics, {"test_accuracy": 0.5, "test_loss": 1.0})
    metrics.write_text(metrics.read_text(encoding="utf-8").replace("0.5", text), encoding="utf-8")
    refused(
        lambda: run_report(root),
        root,
        capsys,
        rf"^error: .*reports/ds5220_mlp/metrics\.json: test_accuracy: expected a (finite number|fraction in \[0, 1\]), "
        rf"got {re.escape(shown)}$",
    )


def test_a_decoded_copy_changed_in_place_is_not_served(tiny_composite, tmp_path, caplog):
    """H_npyflip: bytes of .decoded/val.npy overwritten at the same size came back as pixels, no message."""
    from pipeline.data.common.decoded import DECODED, decoded_paths, load_decoded
    from pipeline.data.readers import read_split

    copy = tmp_path / "composite"
    shutil.copytree(tiny_composite, copy)
    truth = read_split("image_folder", copy, "val")
    array_path, _ = decoded_paths(copy / "val")
    assert array_path.parent.name == DECODED and load_decoded(copy / "val", truth.files) is not None
    size = array_path.stat().st_size
    with open(array_path, "r+b") as handle:  # the audit's edit: same size, so names and sizes still match
        handle.seek(size - 500)
        handle.write(b"\xff" * 100)
    assert array_path.stat().st_size == size
    assert load_decoded(copy / "val", truth.files) is None
    assert "does not match its checksum" in caplog.text
    again = read_split("image_folder", copy, "val")  # decoded from the PNGs: the true pixels
    assert torch.equal(again.images, truth.images)
