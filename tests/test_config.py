"""params.yaml validation: every bad value fails before training, naming the key."""

from __future__ import annotations

import copy

import pytest

from pipeline.config import ConfigError, load_params, load_variant, variant_names

PARAMS = load_params()
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


def with_change(variant: str, dotted: str, value) -> dict:
    """A copy of params.yaml with ``variants.<variant>.<dotted>`` set (or deleted when value is ...)."""
    params = copy.deepcopy(PARAMS)
    node = params["variants"][variant]
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
        variant = load_variant(name, PARAMS)
        assert variant.name == name
        assert variant.train.epochs > 0


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
            r"variants\.prac5\.train\.optimizer\.name: unknown value 'adagrad'; allowed: sgd, adam, adamw",
        ),
        ("train.optimizer.lr", 0, r"variants\.prac5\.train\.optimizer\.lr: must be positive"),
        ("train.optimizer.lr", -0.1, r"variants\.prac5\.train\.optimizer\.lr: must be positive"),
        ("train.batch_size", 0, r"variants\.prac5\.train\.batch_size: must be positive"),
        ("train.epochs", -1, r"variants\.prac5\.train\.epochs: must be positive"),
        ("train.epochs", 2.5, r"variants\.prac5\.train\.epochs: expected an integer"),
        ("train.epochs", ..., r"variants\.prac5\.train\.epochs: missing key"),
        ("train.lr", 0.1, r"variants\.prac5\.train\.lr: unknown key; allowed keys: .*optimizer"),
        ("data.format", "parquet", r"variants\.prac5\.data\.format: unknown value 'parquet'; allowed: mnist_csv"),
        ("train.precision", "float16", r"variants\.prac5\.train\.precision: unknown value 'float16'"),
        ("seed", ..., r"variants\.prac5\.seed: missing key"),
    ],
)
def test_bad_values_fail_with_the_key(dotted, value, message):
    with pytest.raises(ConfigError, match=message):
        load_variant("prac5", with_change("prac5", dotted, value))


def test_best_checkpoint_needs_a_validation_split():
    params = with_change("prac5", "train.checkpoint", "best_val_accuracy")
    with pytest.raises(ConfigError, match=r"train\.checkpoint: 'best_val_accuracy' needs a validation split"):
        load_variant("prac5", params)
