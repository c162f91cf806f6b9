"""The CSE 849 mitigation study: rows differ in their augmentation only, the stage on a tiny composite."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from pipeline.core.config import ConfigError, load_params
from pipeline.core.params import load_all
from pipeline.stages import evaluate_mitigation as evaluate_stage
from pipeline.stages import mitigation as stage

REPO = Path(__file__).resolve().parent.parent


def tiny_params(data: Path) -> dict:
    return {
        "variants": {
            "base": {
                "seed": 3,
                "data": {
                    "format": "image_folder",
                    "path": str(data),
                    "normalize": {"mode": "train"},
                    "augment": {"hflip": 0.5},
                    "occlusion": ["digit", "cifar"],
                },
                "model": {"name": "cse849_cnn", "args": {"pool_kernel": 2, "pool_stride": 2}},
                "train": {
                    "epochs": 9,
                    "batch_size": 32,
                    "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
                    "loss": "cross_entropy",
                    "checkpoint": "best_val_accuracy",
                    "eval_hflip": True,
                    "test_every_epoch": False,
                },
            }
        },
        "mitigation_study": {
            "base": "base",
            "epochs": 1,
            "rows": {
                "flip_only": {"hflip": 0.5},
                "blanked": {"hflip": 0.5, "blank": {"p": 1.0, "region": "digit"}},
            },
        },
    }


def test_rows_differ_from_each_other_in_the_augmentation_only():
    params = load_all(REPO / "params.yaml")
    study = params.mitigation_study
    variants = [params.mitigation_row(row) for row in study.rows]
    base = dataclasses.replace(variants[0], name="", data=dataclasses.replace(variants[0].data, augment=None))
    for row, variant in zip(study.rows, variants):
        assert variant.train.epochs == study.epochs and variant.name == f"{study.base}@{row}"
        assert variant.data.augment == study.rows[row]
        same = dataclasses.replace(variant, name="", data=dataclasses.replace(variant.data, augment=None))
        assert same == base
    augments = [v.data.augment for v in variants]
    assert all(augments.count(a) == 1 for a in augments)  # and every row is another remedy


def test_the_stage_declares_the_base_variant_it_trains():
    """dvc.yaml cannot interpolate variants.${mitigation_study.base}: the base is written there by hand."""
    params = load_params(REPO / "params.yaml")
    base = load_all(params).mitigation_study.base
    stage_def = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["mitigation"]["do"]
    assert f"variants.{base}" in stage_def["params"]
    model = params["variants"][base]["model"]["name"]
    assert f"pipeline/models/{model}" in stage_def["deps"]
    assert f"pipeline/data/readers/{params['variants'][base]['data']['format']}.py" in stage_def["deps"]
    assert params["variants"][base]["data"]["path"] in stage_def["deps"]


def test_study_params_errors_name_the_key():
    params = tiny_params(Path("unused"))
    params["mitigation_study"]["rows"]["blanked"]["blank"] = {"p": 1.0}
    with pytest.raises(ConfigError, match=r"mitigation_study.rows.blanked.blank.region: missing"):
        load_all(params)
    params["mitigation_study"]["rows"] = {"only": {"hflip": 0.5}}
    with pytest.raises(ConfigError, match=r"mitigation_study.rows: expected at least two rows"):
        load_all(params)
    params = tiny_params(Path("unused"))
    with pytest.raises(ConfigError, match=r"mitigation_study.rows.other: unknown row; allowed: flip_only, blanked"):
        load_all(params).mitigation_row("other")


def test_stages_train_then_evaluate_one_row(tiny_composite, tmp_path):
    """mitigation@ writes the checkpoint and training record; evaluate_mitigation@ the study's row from them."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(tiny_composite)))
    models, runs, out = tmp_path / "models", tmp_path / "mitigation" / "runs", tmp_path / "mitigation"
    stage.main(["blanked", "--params", str(path), "--models", str(models), "--runs", str(runs)])
    assert sorted(p.name for p in models.iterdir()) == ["blanked.pt"]
    run = json.loads((runs / "blanked.json").read_text())
    assert run["row"] == "blanked" and run["variant"] == "base@blanked" and run["epochs"] == 1
    assert "shortcut" not in run  # the training stage evaluates nothing beyond what fit() measures
    evaluate_stage.main(["blanked", "--models", str(models), "--runs", str(runs), "--out", str(out)])
    row = json.loads((out / "blanked.json").read_text())
    assert {k: row[k] for k in run} == run  # the training record, unchanged, with the tests beside it
    assert row["augment"]["blank"] == {"p": 1.0, "region": "digit"} and row["augment"]["hflip"] == 0.5
    assert 0 <= row["test_accuracy"] <= 1 and 0 <= row["val_accuracy"] <= 1
    assert set(row["occlusion"]) == {"digit_blanked", "cifar_blanked"}
    assert row["counterfactual"]["images"] == 30 and 0 <= row["counterfactual"]["flip_rate"] <= 1
    assert row["shortcut"]["agree_count"] + row["shortcut"]["disagree_count"] == 30
    assert row["train_seconds"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["blanked.json", "runs"]  # no temporary files left


def test_evaluation_of_a_row_without_its_training_names_the_stage(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate_stage.main(["blanked", "--models", str(tmp_path), "--runs", str(tmp_path), "--out", str(tmp_path)])
    assert "blanked.json" in capsys.readouterr().err
