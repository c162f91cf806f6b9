"""params.yaml validation: every bad value fails before training, naming the key."""

from __future__ import annotations

import copy

import pytest

from pipeline.config import ConfigError, load_params, load_variant, typed_section, variant_names
from pipeline.engine import check_model_and_loss

PARAMS = load_params()  # the committed file: for the tests of what it holds
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
    assert ISSUE_VARIANTS <= set(variant_names(PARAMS))
    for name in variant_names(PARAMS):
        check_model_and_loss(load_variant(name, PARAMS))  # model arguments and loss, as train checks them


def test_seed_hyperparameters_are_kept():
    tdm = load_variant("tdm_max", PARAMS)
    assert (tdm.train.optimizer.name, tdm.train.optimizer.lr, tdm.train.batch_size, tdm.train.epochs) == (
        "adam",
        0.001,
        64,
        5,
    )
    assert tdm.data.normalize.mean == [0.5] and tdm.data.normalize.std == [0.5]
    ds = load_variant("ds5220_cnn", PARAMS)
    assert (ds.train.optimizer.name, ds.train.optimizer.lr, ds.train.batch_size, ds.train.epochs, ds.train.loss) == (
        "sgd",
        0.01,
        64,
        10,
        "nll",
    )
    assert load_variant("ds5220_cnn_raw", PARAMS).data.normalize.mode == "none"
    assert load_variant("prac5", PARAMS).train.loss == "one_hot_cross_entropy"
    assert load_variant("hku_simplecnn", PARAMS).model.args["layers"] == "custom"


def test_unknown_variant_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"variants\.nope: unknown variant; allowed: .*prac5"):
        load_variant("nope", PARAMS)


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
        load_variant("tiny", with_change(dotted, value))


def test_best_checkpoint_needs_a_validation_split():
    params = with_change("train.checkpoint", "best_val_accuracy")
    with pytest.raises(
        ConfigError, match=r"variants\.tiny\.train\.checkpoint: 'best_val_accuracy' needs a validation split"
    ):
        load_variant("tiny", params)
    params["variants"]["tiny"]["data"]["val_fraction"] = 0.1  # with one, it is accepted
    assert load_variant("tiny", params).train.checkpoint == "best_val_accuracy"


def test_typed_section_checks_the_value_like_every_param():
    params = {"stats": {"seed": 7, "flag": True, "rate": 1}}
    assert typed_section(params, "stats.seed", int) == 7
    assert typed_section(params, "stats.rate", float) == 1.0  # YAML writes 1.0 back as 1
    with pytest.raises(ConfigError, match=r"^stats\.flag: expected an integer, got True$"):
        typed_section(params, "stats.flag", int)  # a bool is not a count
    with pytest.raises(ConfigError, match=r"^stats\.nope: missing key in params\.yaml$"):
        typed_section(params, "stats.nope", int)
