"""What a training run is built from, before its first step: the device and its kernels, the
random seeds, the loss, optimizer and scheduler (by table, from the variant's names), the
precision, and the input pipeline (augmentation on the fly, normalization). The loop itself is
:mod:`pipeline.training.engine`."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from pipeline import models
from pipeline.core.config import (
    ConfigError,
    OptimizerConfig,
    SchedulerConfig,
    VariantConfig,
)
from pipeline.core.errors import PipelineError
from pipeline.training.datasets import BatchAugment
from pipeline.training.normalizer import Normalizer

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Scheduler = torch.optim.lr_scheduler.LRScheduler


DEVICE_ENV = "CNN_PIPELINE_DEVICE"  # the device when no --device is given (DVC runs stages without flags)


def select_device(choice: str | None = None) -> torch.device:
    """The device named by ``choice``, else by ``$CNN_PIPELINE_DEVICE``, else ``auto``: CUDA when
    present (the CSE 849 handout's stride-1 model on a GPU), otherwise the CPU. A named device
    that this machine lacks is an error, not a silent fallback."""
    choice = choice or os.environ.get(DEVICE_ENV) or "auto"
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except (RuntimeError, ValueError):
        raise PipelineError(f"device {choice!r}: not a device name (auto, cpu, cuda, cuda:1, mps)") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(device.type, False):
        raise PipelineError(f"device {choice!r}: not available on this machine (auto picks what is)")
    return device


def kernel_facts(device: torch.device) -> dict:
    """What picks the kernels a run used, hence the order its float sums take: the same params
    give the same bytes where these match (``pipeline/devtools/reproduce.py`` compares them)."""
    return {
        "device": device.type,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # AVX2, AVX512, ...: oneDNN's kernels
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (dropout, initialization) and ask for deterministic kernels."""
    # cuBLAS is deterministic only with a fixed workspace, set before its first use (CUDA only;
    # an explicit setting in the environment wins).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False


#: Criteria every variant can use; a model family may add its own (``LOSSES`` in its package).
BUILTIN_LOSSES: dict[str, Callable[[str], LossFn]] = {
    "cross_entropy": lambda reduction: lambda out, y: F.cross_entropy(out, y, reduction=reduction),
    # the model already ends in log-softmax (DS 5220)
    "nll": lambda reduction: lambda out, y: F.nll_loss(out, y, reduction=reduction),
    # Practical 5 feeds one-hot probability targets
    "one_hot_cross_entropy": lambda reduction: (
        lambda out, y: F.cross_entropy(out, F.one_hot(y, out.shape[1]).to(out.dtype), reduction=reduction)
    ),
}


def available_losses(model_name: str) -> dict[str, Callable[..., LossFn]]:
    """The built-in criteria plus those of the model's own assignment (HKU A3's cross-entropy)."""
    return {
        **BUILTIN_LOSSES,
        **{
            name: (lambda reduction, f=factory: f(reduction=reduction))
            for name, factory in models.family_losses(model_name).items()
        },
    }


def make_loss(name: str, model_name: str, reduction: str = "mean") -> LossFn:
    """The training criterion by name; ``reduction="sum"`` is used to average over a whole test set."""
    losses = available_losses(model_name)
    if name not in losses:
        raise ConfigError(f"unknown loss {name!r} for model {model_name!r}; allowed: {', '.join(sorted(losses))}")
    return losses[name](reduction)


def check_model_and_loss(variant: VariantConfig) -> None:
    """The params checks that need the model families: name, arguments, loss.

    Run before any data is read, so a typo fails at once and names its key.
    """
    key = f"variants.{variant.name}"
    try:
        models.check_args(variant.model.name, variant.model.args, f"{key}.model")
    except PipelineError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(key) else f"{key}.model.name: {message}") from None
    losses = available_losses(variant.model.name)
    if variant.train.loss not in losses:
        raise ConfigError(
            f"{key}.train.loss: unknown value {variant.train.loss!r} for model "
            f"{variant.model.name!r}; allowed: {', '.join(sorted(losses))}"
        )


#: Optimizers by ``train.optimizer.name``, built from its config and the model's parameters.
OPTIMIZERS: dict[str, Callable[[OptimizerConfig, Iterable[nn.Parameter]], torch.optim.Optimizer]] = {
    "sgd": lambda cfg, params: torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
    ),
    "adam": lambda cfg, params: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
    "adamw": lambda cfg, params: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
}

#: Learning-rate schedules by ``train.scheduler.name``; ``None`` keeps the rate constant.
SCHEDULERS: dict[str, Callable[[SchedulerConfig, torch.optim.Optimizer, int], Scheduler | None]] = {
    "none": lambda cfg, optimizer, epochs: None,
    "cosine": lambda cfg, optimizer, epochs: torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs, eta_min=cfg.eta_min
    ),
}


def make_optimizer(cfg: OptimizerConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.name`` (:data:`OPTIMIZERS`)."""
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {cfg.name!r}; allowed: {', '.join(sorted(OPTIMIZERS))}")
    return OPTIMIZERS[cfg.name](cfg, params)


def make_scheduler(cfg: SchedulerConfig, optimizer: torch.optim.Optimizer, epochs: int) -> Scheduler | None:
    """Stepped once per epoch, as the CSE 849 handout describes CosineAnnealingLR."""
    if cfg.name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {cfg.name!r}; allowed: {', '.join(sorted(SCHEDULERS))}")
    return SCHEDULERS[cfg.name](cfg, optimizer, epochs)


def autocast(device: torch.device, precision: str):
    """bfloat16 autocast (AMX or AVX-512 BF16 where the CPU has them, tensor cores on a GPU); weights stay float32."""
    if precision == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class InputPipeline:
    """uint8 batch -> normalized float batch on the device, augmented when training.

    The batch crosses to the device as uint8 (a quarter of float32's bytes) and is
    converted, normalized and augmented there, so a GPU is fed efficiently; on the CPU
    the transfer is a no-op and the arithmetic is the same.
    """

    def __init__(
        self, normalizer: Normalizer, device: torch.device, channels_last: bool, augment: BatchAugment | None = None
    ) -> None:
        self.normalizer = normalizer
        self.device = device
        self.channels_last = channels_last
        self.augment = augment

    def __call__(self, images_u8: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        images_u8 = images_u8.to(self.device, non_blocking=True)
        if generator is not None and self.augment is not None and self.augment.active:
            x = self.augment(images_u8, self.normalizer, generator)
        else:
            x = self.normalizer(images_u8)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
