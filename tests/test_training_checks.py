"""A run that diverges or ends at chance is refused, and the message blames what the evidence shows."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError, VariantConfig, build, load_params
from pipeline.core.params import TrainingCheckConfig, load_all
from pipeline.data.readers import ImageSet
from pipeline.training.checks import TrainingAtChance, divergence_cause, refuse_chance_level
from pipeline.training.datasets import Splits
from pipeline.training.engine import TrainingDiverged, fit
from tests.conftest import synthetic_digits

REPO = Path(__file__).resolve().parents[1]


def model_and_optimizer(**settings) -> tuple[nn.Module, torch.optim.Optimizer]:
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.param_groups[0].update(settings)  # as a schedule or unchecked params would set them
    return model, optimizer


@pytest.mark.parametrize(
    ("x", "settings", "updated", "expected"),
    [
        (torch.full((2, 4), float("nan")), {}, True, "the input batch is not finite (check data.normalize"),
        (torch.ones(2, 4), {"weight_decay": float("inf")}, True, "train.optimizer.weight_decay is inf"),
        (torch.ones(2, 4), {"lr": float("inf")}, True, "train.optimizer.lr is inf"),
        (torch.ones(2, 4), {"lr": -0.25}, True, "the learning rate is negative (-0.25; check train.scheduler.eta_min)"),
        (torch.ones(2, 4), {}, False, "the model's output is not finite before any update"),
        (torch.ones(2, 4), {}, True, "the outputs overflowed after updates at learning rate 0.1 (a smaller"),
    ],
)
def test_divergence_is_blamed_on_what_the_evidence_shows(x, settings, updated, expected):
    model, optimizer = model_and_optimizer(**settings)
    cause = divergence_cause(x, model, optimizer, updated)
    assert cause.startswith(expected)
    # the learning rate is named as the remedy only when inputs and settings are sound
    assert ("a smaller train.optimizer.lr" in cause) == expected.startswith("the outputs overflowed")


def test_non_finite_weights_are_named():
    model, optimizer = model_and_optimizer()
    with torch.no_grad():
        model.bias[0] = float("inf")
    assert divergence_cause(torch.ones(2, 4), model, optimizer, True).startswith("the weights (bias) became non-finite")


def variant(**changes) -> VariantConfig:
    raw = {
        "seed": 0,
        "data": {"format": "mnist_csv", "path": "unused", "normalize": {"mode": "fixed", "mean": [0.5], "std": [0.5]}},
        "model": {"name": "tdm_cnn"},
        "train": {"epochs": 2, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.001}, "loss": "cross_entropy"},
    }
    for key, value in changes.items():
        section, name = key.split("__")
        raw[section] = {**raw[section], name: value}
    return build(VariantConfig, raw, "test", name="checked")


@pytest.fixture(scope="module")
def splits() -> Splits:
    return Splits(train=synthetic_digits(640, 0), val=synthetic_digits(200, 1), test=synthetic_digits(200, 2))


def test_a_non_finite_input_is_not_blamed_on_the_learning_rate(splits):
    sound = variant()  # params validation refuses a NaN mean (audit N05); here it gets past that
    normalize = dataclasses.replace(sound.data.normalize, mean=[float("nan")])
    bad = dataclasses.replace(sound, data=dataclasses.replace(sound.data, normalize=normalize))
    with pytest.raises(TrainingDiverged) as info:
        fit(bad, splits, torch.device("cpu"))
    message = str(info.value)
    assert message.startswith("checked epoch 1/2: training diverged: the loss is nan at batch 1 of 20: ")
    assert "the input batch is not finite (check data.normalize and data.augment)" in message
    assert "train.optimizer.lr" not in message and message.endswith("nothing was saved")


def test_a_run_at_chance_is_refused_and_one_that_learned_is_not(splits):
    check = TrainingCheckConfig(min_above_chance=0.05)
    learned = fit(variant(), splits, torch.device("cpu"), check=check)  # the bar is trivially learnable
    assert learned.metrics["test_accuracy"] > 0.9
    # all-zero inputs (audit N06's `std: .inf`): every image looks the same, the model answers one class
    zeros = dataclasses.replace(
        splits, train=ImageSet(torch.zeros_like(splits.train.images), splits.train.labels, splits.train.classes)
    )
    with pytest.raises(TrainingAtChance, match=r"^checked: the final val(idation)? accuracy 0\.\d{4} is at chance"):
        fit(variant(), zeros, torch.device("cpu"), check=check)
    assert fit(variant(), zeros, torch.device("cpu")).metrics  # no check asked: the caller decides


def test_chance_is_the_most_frequent_class_share_plus_the_margin():
    labels = torch.tensor([0] * 6 + [1] * 2 + [2] * 2)  # always answering 0 scores 0.6
    refuse_chance_level("v", {"test_accuracy": 0.66}, None, labels, 0.05)  # 0.66 >= 0.65: accepted
    with pytest.raises(TrainingAtChance, match=r"^v: the final test accuracy 0\.6400 is at chance \(always answering "):
        refuse_chance_level("v", {"test_accuracy": 0.64}, None, labels, 0.05)
    with pytest.raises(TrainingAtChance, match="final val accuracy 0.1000"):
        refuse_chance_level("v", {"val_accuracy": 0.1, "test_accuracy": 0.9}, labels, labels, 0.05)
    refuse_chance_level("v", {"test_labelled": False}, None, torch.tensor([-1, -1]), 0.05)  # nothing to check


def test_the_train_stage_refuses_a_chance_run_and_keeps_the_previous_outputs(tmp_path, monkeypatch, tiny_raw, capsys):
    """Audit N06/P13b: a run that learned nothing exits 1 with one line; the previous model, metrics
    and curves stay byte for byte (the curves written during the run are put back)."""
    from pipeline.stages.train import train_variant

    params = copy.deepcopy(load_params())
    params["variants"]["ds5220_mlp"]["data"]["path"] = str(tiny_raw / "mnist")  # random pixels: chance
    params["variants"]["ds5220_mlp"]["train"]["epochs"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    previous = {
        "models/ds5220_mlp.pt": b"previous model",
        "reports/ds5220_mlp/metrics.json": b'{"test_accuracy": 0.96}\n',
        "reports/ds5220_mlp/plots/epochs.csv": b"epoch,test_accuracy\n1,0.96\n",
        "reports/ds5220_mlp/plots/steps.csv": b"step,train_loss\n",
    }
    for rel, data in previous.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    with pytest.raises(SystemExit) as exit_info:
        run_stage(lambda: train_variant("ds5220_mlp"))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ds5220_mlp: the final test accuracy 0.") and "is at chance" in err[-1]
    assert "training_check.min_above_chance asks for 0.05 more" in err[-1]
    assert {rel: (tmp_path / rel).read_bytes() for rel in previous} == previous
    assert not (tmp_path / "reports/ds5220_mlp/training.json").exists()


@pytest.mark.parametrize("value", [-0.01, 1.0, float("nan"), "high"])
def test_the_margin_is_validated(value):
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["training_check"]["min_above_chance"] = value
    with pytest.raises(ConfigError, match=r"^training_check\.min_above_chance: "):
        load_all(params)


def test_no_committed_run_is_near_the_check():
    """The committed results (every train@, mitigation row and seed-study run) clear chance plus the
    margin with room to spare: chance on these ten-class test sets is at most 0.1135 (MNIST's "1")."""
    margin = load_all(REPO / "params.yaml").training_check.min_above_chance
    accuracies = [
        yaml.safe_load(path.read_text())[key]
        for path in REPO.glob("reports/*/metrics.json")
        for key in ("test_accuracy", "val_accuracy")
        if key in yaml.safe_load(path.read_text())
    ]
    accuracies += [yaml.safe_load(p.read_text())["test_accuracy"] for p in REPO.glob("reports/mitigation/*.json")]
    accuracies += [
        run["test_accuracy"]
        for p in REPO.glob("reports/seed_study/runs/*.json")
        for run in yaml.safe_load(p.read_text())["runs"]
    ]
    assert len(accuracies) > 20 and min(accuracies) > 2 * (0.1135 + margin)
