"""params.yaml validation: every bad value fails before training, naming the key."""

from __future__ import annotations

import copy

import pytest

from pipeline.core.config import ConfigError, load_params
from pipeline.core.params import load_all
from pipeline.training.setup import check_model_and_loss

PARAMS = load_params()  # the committed file: for the tests of what it holds
COMMITTED = load_all(PARAMS)
# The validation tests change a variant written here, so they do not follow the committed ones.
TINY_PARAMS = {
    "variants": {
        "tiny": {
            "seed": 0,
            "data": {"format": "mnist_npz", "path": "data/mnist_npz", "normalize": {"mode": "none"}},
            "model": {"name": "prac5_cnn"},
            "train": {
                "epochs": 1,
                "batch_size": 8,
                "optimizer": {"name": "sgd", "lr": 0.05},
                "loss": "one_hot_cross_entropy",
            },
        }
    }
}
ISSUE_VARIANTS = {
    "tdm_max",
    "tdm_avg",
    "hku_simplecnn",
    "prac5",
    "ds5220_mlp",
    "ds5220_cnn",
    "ds5220_cnn_raw",
    "cse849",
}


def with_change(dotted: str, value) -> dict:
    """A copy of TINY_PARAMS with ``variants.tiny.<dotted>`` set (or deleted when value is ...)."""
    params = copy.deepcopy(TINY_PARAMS)
    node = params["variants"]["tiny"]
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[part]
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return params


def test_committed_params_are_valid_and_name_every_issue_variant():
    assert ISSUE_VARIANTS <= set(COMMITTED.variants)
    for variant in COMMITTED.variants.values():
        check_model_and_loss(variant)  # model arguments and loss, as train checks them


def test_seed_hyperparameters_are_kept():
    tdm = COMMITTED.variant("tdm_max")
    assert (tdm.train.optimizer.name, tdm.train.optimizer.lr, tdm.train.batch_size, tdm.train.epochs) == (
        "adam",
        0.001,
        64,
        5,
    )
    assert tdm.data.normalize.mean == [0.5] and tdm.data.normalize.std == [0.5]
    ds = COMMITTED.variant("ds5220_cnn")
    assert (ds.train.optimizer.name, ds.train.optimizer.lr, ds.train.batch_size, ds.train.epochs, ds.train.loss) == (
        "sgd",
        0.01,
        64,
        10,
        "nll",
    )
    assert COMMITTED.variant("ds5220_cnn_raw").data.normalize.mode == "none"
    assert COMMITTED.variant("prac5").train.loss == "one_hot_cross_entropy"
    assert COMMITTED.variant("hku_simplecnn").model.args["layers"] == "custom"


def test_unknown_variant_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"variants\.nope: unknown variant; allowed: .*prac5"):
        COMMITTED.variant("nope")


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        (
            "train.optimizer.name",
            "adagrad",
            r"variants\.tiny\.train\.optimizer\.name: unknown value 'adagrad'; allowed: sgd, adam, adamw",
        ),
        ("train.optimizer.lr", 0, r"variants\.tiny\.train\.optimizer\.lr: must be positive"),
        ("train.optimizer.lr", -0.1, r"variants\.tiny\.train\.optimizer\.lr: must be positive"),
        ("train.batch_size", 0, r"variants\.tiny\.train\.batch_size: must be positive"),
        ("train.epochs", -1, r"variants\.tiny\.train\.epochs: must be positive"),
        ("train.epochs", 2.5, r"variants\.tiny\.train\.epochs: expected an integer"),
        ("train.epochs", ..., r"variants\.tiny\.train\.epochs: missing key"),
        ("train.lr", 0.1, r"variants\.tiny\.train\.lr: unknown key; allowed keys: .*optimizer"),
        ("data.format", "parquet", r"variants\.tiny\.data\.format: unknown value 'parquet'; allowed: mnist_csv"),
        ("train.precision", "float16", r"variants\.tiny\.train\.precision: unknown value 'float16'"),
        ("seed", ..., r"variants\.tiny\.seed: missing key"),
    ],
)
def test_bad_values_fail_with_the_key(dotted, value, message):
    with pytest.raises(ConfigError, match=message):
        load_all(with_change(dotted, value)).variant("tiny")


def test_best_checkpoint_needs_a_validation_split():
    params = with_change("train.checkpoint", "best_val_accuracy")
    with pytest.raises(
        ConfigError, match=r"variants\.tiny\.train\.checkpoint: 'best_val_accuracy' needs a validation split"
    ):
        load_all(params).variant("tiny")
    params["variants"]["tiny"]["data"]["val_fraction"] = 0.1  # with one, it is accepted
    assert load_all(params).variant("tiny").train.checkpoint == "best_val_accuracy"


def test_the_whole_file_loads_as_one_typed_tree():
    params = load_all()
    assert list(params.variants) == list(PARAMS["variants"])  # every entry, in the file's order
    prac5 = params.variant("prac5")
    assert prac5.name == "prac5" and prac5.train.optimizer.lr == PARAMS["variants"]["prac5"]["train"]["optimizer"]["lr"]
    assert params.comparison("pooling").a == "tdm_max" and params.stats.seed == PARAMS["stats"]["seed"]
    assert params.analysis.classwise_norms.variant == PARAMS["analysis"]["classwise_norms"]["variant"]
    assert params.seed_study.seeds == PARAMS["seed_study"]["seeds"] >= 2
    study = params.mitigation_study
    row = next(iter(study.rows))
    assert params.mitigation_row(row).name == f"{study.base}@{row}"
    assert params.mitigation_row(row).train.epochs == study.epochs
    assert params.mitigation_row(row).data.augment == study.rows[row]
    assert params.composite.layout == PARAMS["composite"]["layout"]


def _changed(dotted: str, value) -> dict:
    params = copy.deepcopy(PARAMS)
    *parents, last = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    return params


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("stats.seed", True, r"^stats\.seed: expected an integer, got True$"),
        (
            "composite.train_agreement",
            1.5,
            r"^composite\.train_agreement: must be a probability in \[0, 1\], got 1\.5$",
        ),
        ("analysis.comparisons.pooling.b", "nope", r"^analysis\.comparisons\.pooling\.b: unknown variant 'nope'"),
        ("analysis.classwise_norms.variant", "nope", r"^analysis\.classwise_norms\.variant: unknown variant 'nope'$"),
        ("seed_study.comparisons", ["pooling", "nope"], r"^seed_study\.comparisons\[1\]: 'nope' is not a key of"),
        ("seed_study.seeds", 1, r"^seed_study\.seeds: at least 2 runs"),
        ("mitigation_study.base", "prac5", r"^mitigation_study\.base: 'prac5' is not trained on composite images"),
        (
            "mitigation_study.rows.blanked_twice",
            {"hflip": 2.0},
            r"^mitigation_study\.rows\.blanked_twice\.hflip: must be",
        ),
        ("analysis.padding.strides", [0], r"^analysis\.padding: kernel_size and strides must be positive"),
        ("extras", {}, r"^extras: unknown top-level key; allowed: "),
        ("stats", 3, r"^stats: expected a mapping, got 3$"),
        ("variants", ["prac5"], r"^variants: expected a mapping, got \['prac5'\]$"),
        ("variants.prac5", "sgd", r"^variants\.prac5: expected a mapping, got 'sgd'$"),
        ("analysis.padding", [3], r"^analysis\.padding: expected a mapping, got \[3\]$"),
    ],
)
def test_a_mistake_anywhere_in_the_file_is_named_by_its_key(dotted, value, message):
    with pytest.raises(ConfigError, match=message):
        load_all(_changed(dotted, value))


def test_a_missing_section_is_named_when_a_stage_needs_it():
    params = load_all({"variants": copy.deepcopy(PARAMS["variants"])})  # a repository with only variants
    assert params.seed_study is None and params.analysis.padding.kernel_size == 3  # padding has defaults
    with pytest.raises(ConfigError, match=r"^seed_study: missing key in params\.yaml$"):
        params.study_variants()
    with pytest.raises(ConfigError, match=r"^mitigation_study: missing key in params\.yaml$"):
        params.mitigation_row("any")
    with pytest.raises(ConfigError, match=r"^analysis\.comparisons\.pooling: no such comparison; allowed: none$"):
        params.comparison("pooling")
