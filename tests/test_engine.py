"""The training engine and the in-memory input pipeline, on small synthetic data."""

from __future__ import annotations

import copy
import dataclasses
import types

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from pipeline.core.config import AugmentConfig, ConfigError, VariantConfig, build
from pipeline.core.errors import PipelineError
from pipeline.training.datasets import BatchAugment, Splits, batches
from pipeline.training.engine import fit
from pipeline.training.normalizer import Normalizer, channel_stats
from pipeline.training.setup import check_model_and_loss, make_loss
from tests.conftest import TINY_LAYOUT, synthetic_digits

# The engine's unit tests use this set-up of their own (TDM 40200's network and optimizer), not
# params.yaml's: an experiment on a real variant must not change what these tests check.
TINY_VARIANT = {
    "seed": 40200,
    "data": {"format": "mnist_csv", "path": "unused", "normalize": {"mode": "fixed", "mean": [0.5], "std": [0.5]}},
    "model": {"name": "tdm_cnn", "args": {"pool": "max"}},
    "train": {
        "epochs": 2,
        "batch_size": 64,
        "optimizer": {"name": "adam", "lr": 0.001},
        "loss": "cross_entropy",
        "log_every_steps": 5,
    },
}


def tiny_variant(**train_changes):
    variant = build(VariantConfig, TINY_VARIANT, "tiny", name="tiny")
    return dataclasses.replace(variant, train=dataclasses.replace(variant.train, **train_changes))


@pytest.fixture(scope="module")
def splits() -> Splits:
    return Splits(train=synthetic_digits(640, 0), val=synthetic_digits(200, 1), test=synthetic_digits(200, 2))


def test_fit_learns_and_reports_every_metric(splits):
    result = fit(tiny_variant(), splits, torch.device("cpu"))
    m = result.metrics
    assert m["test_accuracy"] > 0.9  # the bar position is trivially learnable
    # what experiments compare, the run's facts and this machine's timings, each on its own
    assert set(m) == {"test_accuracy", "test_loss", "val_accuracy", "val_loss"} and m["test_accuracy"] <= 1.0
    assert result.facts == {
        "epochs": 2,
        "checkpoint_epoch": 2,
        "parameters": result.facts["parameters"],
        "train_examples": 640,
        "first_batch": result.facts["first_batch"],
    }
    timing_keys = {"train_seconds", "train_images_per_second", "device", "cpu_capability", "threads", "torch"}
    assert set(result.timings) == timing_keys
    # what picked the kernels (reproduce.py compares it with the committed run's)
    assert result.timings["device"] == "cpu" and result.timings["threads"] == torch.get_num_threads()
    assert result.timings["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert [row["epoch"] for row in result.epochs] == [1, 2]
    assert result.epochs[1]["train_loss"] < result.epochs[0]["train_loss"]
    assert {"val_loss", "val_accuracy", "test_loss", "test_accuracy", "lr"} <= set(result.epochs[0])
    # one step row every 5 steps of batch 64 over 640 images = 10 steps/epoch -> 4 rows
    assert [row["step"] for row in result.steps] == [5, 10, 15, 20]
    assert result.steps[-1]["examples_seen"] == 2 * 640


def test_first_batch_is_the_one_the_model_was_given(splits):
    """DS 5220 Part 0 prints the first training batch's shapes, mean and std: the engine records
    them from the batch it trains on, the same one a fresh shuffle with the variant's seed gives."""
    variant = tiny_variant()
    result = fit(variant, splits, torch.device("cpu"))
    order = torch.randperm(640, generator=torch.Generator().manual_seed(variant.seed))
    first = result.normalizer(splits.train.images[order[: variant.train.batch_size]])
    assert result.facts["first_batch"] == {
        "images_shape": [variant.train.batch_size, 1, 28, 28],
        "labels_shape": [variant.train.batch_size],
        "mean": pytest.approx(float(first.mean()), abs=1e-6),
        "std": pytest.approx(float(first.std()), abs=1e-6),
    }
    raw = splits.train.images[order[: variant.train.batch_size]].float() / 255
    assert result.facts["first_batch"]["mean"] != pytest.approx(float(raw.mean()), abs=1e-3)  # after Normalize


def test_fit_is_deterministic(splits):
    a = fit(tiny_variant(), splits, torch.device("cpu"))
    b = fit(tiny_variant(), splits, torch.device("cpu"))
    assert (a.metrics, a.facts, a.epochs, a.steps) == (b.metrics, b.facts, b.epochs, b.steps)


def test_best_validation_checkpoint_is_kept(splits):
    variant = tiny_variant(checkpoint="best_val_accuracy", epochs=3)
    result = fit(variant, splits, torch.device("cpu"))
    best = max(result.epochs, key=lambda row: row["val_accuracy"])
    assert result.facts["checkpoint_epoch"] == best["epoch"]
    assert result.metrics["test_accuracy"] == best["test_accuracy"]


def test_normalizer_matches_torchvision_totensor_normalize():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
    reference = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])(
        Image.fromarray(pixels)
    )
    ours = Normalizer([0.1307], [0.3081])(torch.from_numpy(pixels)[None, None])[0]
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_channel_stats_match_the_seed_formula():
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    mean, std = channel_stats(images, chunk=7)  # chunking must not change anything
    assert (mean, std) == channel_stats(images, chunk=50)
    for c in range(3):
        assert mean[c] == pytest.approx(float(images[:, c].double().mean() / 255), abs=1e-12)
        assert std[c] == pytest.approx(float(images[:, c].double().std() / 255), abs=1e-12)  # unbiased, as DS 5220


def test_shuffled_batches_cover_every_sample_once():
    images = torch.arange(10).view(10, 1, 1, 1)
    labels = torch.arange(10)
    got = [b for _, b in batches(images, labels, 3, torch.Generator().manual_seed(0))]
    assert [len(b) for b in got] == [3, 3, 3, 1]
    assert sorted(torch.cat(got).tolist()) == list(range(10))
    assert torch.cat(got).tolist() != list(range(10))


def identity(x_u8: torch.Tensor) -> torch.Tensor:
    return x_u8.float()


def augment(**changes) -> BatchAugment:
    cfg = build(AugmentConfig, changes, "augment")
    return BatchAugment(cfg, TINY_LAYOUT, "augment")


def test_patch_shuffle_only_touches_the_region_and_moves_whole_patches():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 64, 64), dtype=torch.uint8)
    out = augment(patch_shuffle={"p": 1.0, "region": "digit"})(x, identity, g)
    outside = torch.ones(64, 64, dtype=torch.bool)
    outside[36:, 36:] = False
    assert torch.equal(out[:, :, outside], x[:, :, outside].float())
    patches = x[:, :, 36:, 36:].float()
    for i in range(16):  # each new patch is some sample's original patch
        assert any(torch.equal(out[i, :, 36:, 36:], patches[j]) for j in range(16))
    assert not torch.equal(out, x.float())


def test_blank_sets_the_region_to_black_before_normalization():
    g = torch.Generator().manual_seed(0)
    x = torch.full((64, 3, 64, 64), 200, dtype=torch.uint8)
    out = augment(blank={"p": 0.5, "region": "cifar"})(x, lambda u8: u8.float() / 255 - 0.5, g)
    blanked = (out[:, :, :32, :32] == -0.5).flatten(1).all(1)
    untouched = (out == 200 / 255 - 0.5).flatten(1).all(1)
    assert bool((blanked | untouched).all()) and 16 < int(blanked.sum()) < 48
    assert bool((out[:, :, 32:, :] == 200 / 255 - 0.5).all())  # outside the region: never


def test_region_names_are_checked_against_the_data_layout():
    cfg = build(AugmentConfig, {"blank": {"p": 1.0, "region": "photo"}}, "augment")
    with pytest.raises(
        PipelineError, match=r"v.blank.region: unknown region 'photo'; the composite layout has cifar, digit"
    ):
        BatchAugment(cfg, TINY_LAYOUT, "v")
    with pytest.raises(ConfigError, match=r"v.blank.region: the data has no composite layout"):
        BatchAugment(cfg, None, "v")


def test_hflip():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (8, 1, 10, 10), dtype=torch.uint8)
    torch.testing.assert_close(augment(hflip=1.0)(x, identity, g), x.float().flip(-1))


def test_gaussian_noise_equals_torchvision_on_the_same_draws():
    from torchvision.transforms import v2

    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    ours = augment(gaussian_noise={"mean": 0.1, "sigma": 0.3})(x, identity, torch.Generator().manual_seed(5))
    torch.manual_seed(5)  # torchvision draws from the global generator: the same numbers
    theirs = v2.GaussianNoise(mean=0.1, sigma=0.3, clip=False)(x.float())
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    clipped = augment(gaussian_noise={"sigma": 0.3, "clip": True})(x, lambda u8: u8.float() / 255, torch.Generator())
    assert float(clipped.min()) >= 0.0 and float(clipped.max()) <= 1.0


def _erased_boxes(images: torch.Tensor, value: float) -> list[tuple[int, int]]:
    """(height, width) of the erased rectangle of each image, (0, 0) when none."""
    sizes = []
    for image in images:
        mask = (image[0] == value).nonzero()
        sizes.append((0, 0) if len(mask) == 0 else tuple((mask.max(0).values - mask.min(0).values + 1).tolist()))
    return sizes


def test_random_erasing_matches_torchvision_in_distribution():
    """Draws cannot be shared (torchvision draws per image from the global generator), so the
    rectangles' sizes are compared: the same distribution of heights, widths and misses."""
    from scipy.stats import ks_2samp
    from torchvision.transforms import v2

    n, scale, ratio = 3000, [0.5, 0.95], [1.0, 3.0]  # large, tall rectangles: about 6% find no fit in 10 tries
    x = torch.ones(n, 1, 20, 20)
    ours = augment(random_erasing={"p": 1.0, "scale": scale, "ratio": ratio, "value": -7.0})
    ours_sizes = _erased_boxes(ours(x.to(torch.uint8), identity, torch.Generator().manual_seed(0)), -7.0)
    torch.manual_seed(0)
    transform = v2.RandomErasing(p=1.0, scale=scale, ratio=ratio, value=-7.0)
    their_sizes = _erased_boxes(torch.stack([transform(image) for image in x]), -7.0)
    for k in (0, 1):  # heights, then widths (0 = nothing erased)
        ours_k = [s[k] for s in ours_sizes]
        theirs_k = [s[k] for s in their_sizes]
        assert ks_2samp(ours_k, theirs_k).pvalue > 0.001
    miss_ours = sum(s == (0, 0) for s in ours_sizes) / n
    miss_theirs = sum(s == (0, 0) for s in their_sizes) / n
    assert 0.02 < miss_theirs and abs(miss_ours - miss_theirs) < 0.03
    # p: the share of images touched
    some = augment(random_erasing={"p": 0.3})(x.to(torch.uint8), identity, torch.Generator().manual_seed(1))
    touched = (some == 0).flatten(1).any(1).double().mean()
    assert abs(float(touched) - 0.3) < 0.04


def test_one_hot_cross_entropy_equals_index_cross_entropy():
    logits = torch.randn(5, 10)
    labels = torch.tensor([0, 3, 9, 1, 1])
    torch.testing.assert_close(
        make_loss("one_hot_cross_entropy", "tdm_cnn")(logits, labels),
        make_loss("cross_entropy", "tdm_cnn")(logits, labels),
    )


def test_test_set_seen_only_by_the_kept_checkpoint_when_asked(splits):
    variant = tiny_variant(checkpoint="best_val_accuracy", test_every_epoch=False)
    result = fit(variant, splits, torch.device("cpu"))
    assert all("test_accuracy" not in row for row in result.epochs)
    assert 0.9 < result.metrics["test_accuracy"] <= 1.0
    assert result.facts["checkpoint_epoch"] == max(result.epochs, key=lambda r: r["val_accuracy"])["epoch"]


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("model.name", "resnet", r"variants\.tiny\.model\.name: unknown model 'resnet'; allowed: .*prac5_cnn"),
        (
            "model.args",
            {"width": 2},
            r"variants\.tiny\.model\.args\.width: model 'prac5_cnn' takes no such argument; allowed: softmax_output",
        ),
        (
            "train.loss",
            "mse",
            r"variants\.tiny\.train\.loss: unknown value 'mse' for model 'prac5_cnn'; allowed: cross_entropy, nll",
        ),
        # HKU A3's own loss comes with its model family: not available to other models
        ("train.loss", "custom_cross_entropy", r"variants\.tiny\.train\.loss: unknown value 'custom_cross_entropy'"),
    ],
)
def test_model_and_loss_are_checked_against_the_model_families(dotted, value, message):
    raw = copy.deepcopy({**TINY_VARIANT, "model": {"name": "prac5_cnn"}})
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    variant = build(VariantConfig, raw, "variants.tiny", name="tiny")  # the params checks that need no model code pass
    with pytest.raises(ConfigError, match=message):
        check_model_and_loss(variant)


def test_a_model_argument_without_default_must_be_given(monkeypatch):
    """A family whose ``build`` needs an argument: params without it fail naming the key, before any data."""
    from pipeline import models

    monkeypatch.setattr(models, "family", lambda name: types.SimpleNamespace(build=lambda width, depth=2: None))
    with pytest.raises(PipelineError, match=r"variants\.tiny\.model\.args\.width: model 'wide' needs this argument"):
        models.check_args("wide", {"depth": 3}, "variants.tiny.model")
    models.check_args("wide", {"width": 8}, "variants.tiny.model")  # the default covers depth


def test_the_hku_loss_is_available_to_its_model():
    raw = {**TINY_VARIANT, "model": {"name": "simple_cnn"}}
    variant = build(VariantConfig, {**raw, "train": {**raw["train"], "loss": "custom_cross_entropy"}}, "v", name="tiny")
    check_model_and_loss(variant)
    logits, labels = torch.randn(8, 10, dtype=torch.float64), torch.arange(8) % 10
    torch.testing.assert_close(
        make_loss("custom_cross_entropy", "simple_cnn")(logits, labels),
        torch.nn.functional.cross_entropy(logits, labels),
    )


def test_flip_averaged_predictions_are_the_mean_softmax_of_image_and_mirror():
    from pipeline.training.engine import predict_logits
    from pipeline.training.setup import InputPipeline

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 6, 5))
    images = torch.randint(0, 256, (7, 3, 4, 6), dtype=torch.uint8)
    prepare = InputPipeline(Normalizer([0.5] * 3, [0.25] * 3), torch.device("cpu"), channels_last=False)
    averaged = predict_logits(model, images, prepare, 3, "float32", hflip_average=True)
    with torch.no_grad():
        x = prepare(images)
        expected = (model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2
        plain = predict_logits(model, images, prepare, 3, "float32")
    torch.testing.assert_close(averaged.softmax(1), expected)
    torch.testing.assert_close(averaged.exp().sum(1), torch.ones(7))  # log-probabilities: valid logits
    torch.testing.assert_close(plain, model(x))
    assert not torch.allclose(averaged.softmax(1), plain.softmax(1))
