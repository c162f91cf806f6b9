"""What makes a training run fail instead of being saved: a non-finite loss, or a result at chance.

:func:`pipeline.training.engine.train_one_epoch` stops at the first non-finite loss
(:class:`TrainingDiverged`, with :func:`divergence_cause` naming what the evidence points
to), and :func:`pipeline.training.engine.fit` refuses a final accuracy at chance level
(:func:`refuse_chance_level`, threshold ``training_check.min_above_chance`` in params.yaml):
a run whose loss grew without becoming infinite, or whose inputs were all zeros, ends there.
Either way the stage exits 1 with one line and writes nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.core.errors import PipelineError


class TrainingDiverged(PipelineError):
    """The loss became NaN or infinite: the stage stops, names the step, and writes nothing."""


class TrainingAtChance(PipelineError):
    """The final accuracy is at chance level: the run is refused rather than saved as a success."""


def divergence_cause(x: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, updated: bool) -> str:
    """What the evidence at a non-finite loss points to; the learning rate only when nothing else does.

    ``x``: the batch the model was given; ``updated``: whether any optimizer step came before.
    """
    if not bool(torch.isfinite(x).all()):
        return "the input batch is not finite (check data.normalize and data.augment)"
    group = optimizer.param_groups[0]
    for key in ("lr", "weight_decay", "momentum"):
        value = group.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            return f"train.optimizer.{key} is {value}"
    if group["lr"] < 0:
        return f"the learning rate is negative ({group['lr']:g}; check train.scheduler.eta_min)"
    if not updated:
        return "the model's output is not finite before any update (check the model's arguments and data.normalize)"
    broken = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    where = f"the weights ({', '.join(broken[:2])}) became non-finite" if broken else "the outputs overflowed"
    # finite inputs and settings, finite losses until now: the updates overshot
    return f"{where} after updates at learning rate {group['lr']:g} (a smaller train.optimizer.lr is the usual remedy)"


def refuse_chance_level(name: str, metrics: dict, val_labels, test_labels, margin: float) -> None:
    """Refuse a final validation or test accuracy below chance + ``margin``.

    Chance is what always answering the split's most frequent class scores (1/classes on a
    balanced split). ``val_labels``/``test_labels``: the splits' label tensors (None: no split).
    """
    for labels, key in ((val_labels, "val_accuracy"), (test_labels, "test_accuracy")):
        if labels is None or key not in metrics:
            continue
        chance = float(torch.bincount(labels).max()) / len(labels)
        if metrics[key] < chance + margin:
            raise TrainingAtChance(
                f"{name}: the final {key.replace('_', ' ')} {metrics[key]:.4f} is at chance (always answering the "
                f"most frequent class scores {chance:.4f}; training_check.min_above_chance asks for {margin:g} "
                f"more): the model learned nothing; nothing was saved"
            )
