"""The one training engine every variant goes through.

It reads top to bottom like pytorch/examples' mnist/main.py: data, model,
optimizer, then ``train_one_epoch`` / ``evaluate`` per epoch, then the result.
What differs between assignments (format, normalization, model, optimizer,
loss, schedule, augmentation, precision, checkpoint rule) comes from the
variant's :class:`~pipeline.core.config.VariantConfig`; nothing here asks which
assignment it is running.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from pipeline import models
from pipeline.core.config import (
    ConfigError,
    OptimizerConfig,
    SchedulerConfig,
    TrainConfig,
    TrainingCheckConfig,
    VariantConfig,
)
from pipeline.data.readers import UNLABELLED, ImageSet
from pipeline.training.datasets import BatchAugment, Splits, batches, num_batches
from pipeline.core.errors import PipelineError
from pipeline.core.io import rounded
from pipeline.training.normalizer import Normalizer
from pipeline.training.resume import ResumeFile, data_tensors, fingerprint, interrupt_message, restore_training, training_state
from pipeline.training.checks import TrainingDiverged, divergence_cause, refuse_chance_level

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- set-up


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


def make_optimizer(cfg: OptimizerConfig, params) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
        )
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.name!r}")


def make_scheduler(cfg: SchedulerConfig, optimizer: torch.optim.Optimizer, epochs: int):
    """Stepped once per epoch, as the CSE 849 handout describes CosineAnnealingLR."""
    if cfg.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=cfg.eta_min)
    return None


def autocast(device: torch.device, precision: str):
    """bfloat16 autocast (AMX on this CPU, tensor cores on a GPU); weights stay float32."""
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


# --------------------------------------------------------------------------- one epoch


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    images: int
    seconds: float


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    prepare: InputPipeline,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    cfg: TrainConfig,
    generator: torch.Generator,
    on_step: Callable[[int, float], None] | None = None,
    desc: str = "train",
    on_first_batch: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    first_epoch: bool = True,
) -> EpochStats:
    """One pass over shuffled training batches; returns the mean loss and accuracy.

    ``on_first_batch(x, y)`` sees the epoch's first batch as the model receives it
    (normalized, augmented), before the step; it must not draw from ``generator``.
    ``first_epoch``: whether no update came before this epoch (what a divergence is blamed on).
    """
    model.train()
    device = prepare.device
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    start = time.perf_counter()
    bar = tqdm(total=num_batches(len(labels), cfg.batch_size), desc=desc, leave=False, disable=not sys.stderr.isatty())
    for batch_images, batch_labels in batches(images, labels, cfg.batch_size, generator):
        x = prepare(batch_images, generator)
        y = batch_labels.to(device, non_blocking=True)
        if on_first_batch is not None and seen == 0:
            on_first_batch(x, y)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, cfg.precision):
            output = model(x)
        loss = loss_fn(output.float(), y)
        if not bool(torch.isfinite(loss)):
            # Stop before the step that would make the weights non-finite. The check costs one
            # host sync per step on a GPU; on this project's CPU it is free.
            raise TrainingDiverged(
                f"{desc}: training diverged: the loss is {float(loss.detach())} at batch {seen // cfg.batch_size + 1} "
                f"of {num_batches(len(labels), cfg.batch_size)}: "
                f"{divergence_cause(x, model, optimizer, updated=not first_epoch or seen > 0)}; nothing was saved"
            )
        loss.backward()
        optimizer.step()
        # Accumulate on the device; a .item() per step would synchronize a GPU every batch.
        batch_loss = loss.detach()
        total_loss += batch_loss * len(y)
        correct += (output.detach().argmax(1) == y).sum()
        seen += len(y)
        if on_step is not None:
            on_step(len(y), batch_loss)
        bar.update()
    bar.close()
    seconds = time.perf_counter() - start
    return EpochStats(loss=float(total_loss) / seen, accuracy=int(correct) / seen, images=seen, seconds=seconds)


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    logits: torch.Tensor  # (N, classes), float32 on the CPU


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    prepare: InputPipeline,
    batch_size: int,
    precision: str,
    hflip_average: bool = False,
) -> torch.Tensor:
    """Model outputs for every image, in order, without augmentation.

    ``hflip_average`` (``train.eval_hflip``, test-time augmentation): the log of the mean
    softmax of each image and its left-right mirror. These are valid logits (their softmax
    is that mean), so accuracy and cross-entropy are computed from them unchanged.
    """
    model.eval()
    outputs = []
    for batch_images, _ in batches(images, torch.empty(len(images)), batch_size):
        with autocast(prepare.device, precision):
            x = prepare(batch_images)
            logits = model(x).float()
            if hflip_average:
                mirrored = model(x.flip(-1)).float()
                logits = torch.logsumexp(torch.stack([logits.log_softmax(1), mirrored.log_softmax(1)]), 0) - math.log(2)
        outputs.append(logits.cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, 10)


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    prepare: InputPipeline,
    loss_fn: LossFn,
    batch_size: int,
    precision: str,
    hflip_average: bool = False,
) -> EvalResult:
    """Mean loss (``loss_fn``: the training criterion with ``reduction="sum"``, divided by N) and accuracy."""
    logits = predict_logits(model, images, prepare, batch_size, precision, hflip_average)
    loss = loss_fn(logits, labels)
    accuracy = (logits.argmax(1) == labels).double().mean()
    return EvalResult(loss=float(loss) / len(labels), accuracy=float(accuracy), logits=logits)


# --------------------------------------------------------------------------- the whole run


def epoch_summary(row: dict, stats: EpochStats) -> str:
    """An epoch's log line: training loss and accuracy, validation and test where measured, speed."""
    parts = [f"train loss {stats.loss:.4f} acc {stats.accuracy:.4f}"] + [
        f"{s} loss {row[f'{s}_loss']:.4f} acc {row[f'{s}_accuracy']:.4f}" for s in ("val", "test") if f"{s}_loss" in row
    ]
    return " | ".join([*parts, f"{stats.seconds:.1f} s, {stats.images / stats.seconds:.0f} img/s"])


@dataclass
class TrainResult:
    model: nn.Module  # holds the selected checkpoint's weights
    normalizer: Normalizer
    epochs: list[dict] = field(default_factory=list)  # one row per epoch: losses, accuracies, lr
    steps: list[dict] = field(default_factory=list)  # every log_every_steps steps: examples seen, loss
    # Three kinds of result, kept apart so that a retrain with the same params gives the same
    # bytes wherever results are compared: what experiments compare (test/validation accuracy
    # and loss), facts of the run that other stages read, and this machine's timings.
    metrics: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)  # epochs, checkpoint_epoch, parameters, train_examples
    timings: dict = field(default_factory=dict)  # train_seconds, train_images_per_second


def fit(
    variant: VariantConfig,
    splits: Splits,
    device: torch.device | None = None,
    *,
    resume: ResumeFile | None = None,
    on_epoch: Callable[[TrainResult], None] | None = None,
    check: TrainingCheckConfig | None = None,
) -> TrainResult:
    """Train ``variant`` on ``splits``; evaluate on validation (if any) and test after each epoch.

    The checkpoint kept is the last epoch's, or with ``checkpoint: best_val_accuracy``
    the epoch with the highest validation accuracy (the test set never chooses).
    ``resume``: where the run's state is kept at each epoch's end and continued from
    (:mod:`pipeline.training.resume`); ``on_epoch(result)``: called after each epoch with the curves
    so far; ``check``: a final accuracy at chance is refused (:func:`refuse_chance_level`).
    """
    device = device or select_device()
    cfg = variant.train
    check_model_and_loss(variant)
    seed_everything(variant.seed)
    normalizer = Normalizer.from_config(variant.data.normalize, splits.train.images)
    model = models.create_model(variant.model.name, **variant.model.args).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg.optimizer, model.parameters())
    scheduler = make_scheduler(cfg.scheduler, optimizer, cfg.epochs)
    loss_fn = make_loss(cfg.loss, variant.model.name)
    eval_loss = make_loss(cfg.loss, variant.model.name, reduction="sum")
    augment = BatchAugment(variant.data.augment, splits.train.layout, f"variants.{variant.name}.data.augment")
    train_input = InputPipeline(normalizer, device, cfg.channels_last, augment)
    eval_input = InputPipeline(normalizer, device, cfg.channels_last)
    generator = torch.Generator().manual_seed(variant.seed)  # shuffling and augmentation

    def evaluate_split(split: ImageSet) -> EvalResult:
        """The model as it is now on ``split``: validation each epoch, test each epoch or once at the end."""
        return evaluate(
            model, split.images, split.labels, eval_input, eval_loss, cfg.eval_batch_size, cfg.precision, cfg.eval_hflip
        )

    result = TrainResult(model=model, normalizer=normalizer)
    # What an epoch changes besides model, optimizer, scheduler, generators and curves (resume.py)
    run = dict(epoch=0, step=0, seen=0, seconds=0.0, images=0, best_state=None, best_val=-1.0, best_epoch=cfg.epochs)

    def on_step(batch: int, loss: torch.Tensor) -> None:
        run["step"] += 1
        run["seen"] += batch
        if run["step"] % cfg.log_every_steps == 0:
            result.steps.append({"step": run["step"], "examples_seen": run["seen"], "train_loss": rounded(loss)})

    first_batch: dict = {}

    def record_first_batch(x: torch.Tensor, y: torch.Tensor) -> None:
        # What the handouts print before training (DS 5220 Part 0): shapes, mean and std of
        # the first batch the model is given.
        first_batch.update(
            images_shape=list(x.shape),
            labels_shape=list(y.shape),
            mean=rounded(x.float().mean()),
            std=rounded(x.float().std()),
        )

    log.info(
        "%s: %s on %s, %d parameters, %d train / %s val / %d test images",
        variant.name,
        variant.model.name,
        device,
        models.count_parameters(model),
        len(splits.train.labels),
        len(splits.val.labels) if splits.val else 0,
        len(splits.test.labels),
    )
    test_labelled = not bool((splits.test.labels == UNLABELLED).any())
    if not test_labelled:  # the course's CSE 849 zip: its test images come without labels
        log.warning(
            "%s: the test split has unlabelled images: no test loss or accuracy (the predict command "
            "writes its predictions)",
            variant.name,
        )
    trained = (model, optimizer, scheduler, generator)
    key = None if resume is None else fingerprint([asdict(variant), device.type], data_tensors(splits))
    if resume is not None and (saved := resume.load(key)) is not None:
        restore_training(saved, trained, run, first_batch, result)
        log.info("%s: resuming after epoch %d of %d (%s)", variant.name, run["epoch"], cfg.epochs, resume.path)
    with interrupt_message(f"{variant.name} (seed {variant.seed})", cfg.epochs, run, resume):
        for epoch in range(run["epoch"] + 1, cfg.epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            stats = train_one_epoch(
                model,
                splits.train.images,
                splits.train.labels,
                train_input,
                optimizer,
                loss_fn,
                cfg,
                generator,
                on_step,
                desc=f"{variant.name} epoch {epoch}/{cfg.epochs}",
                on_first_batch=record_first_batch if epoch == 1 else None,
                first_epoch=epoch == 1,
            )
            if scheduler is not None:
                scheduler.step()
            run["seconds"] += stats.seconds
            run["images"] += stats.images
            row = {"epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_accuracy": stats.accuracy}
            if splits.val is not None:
                val = evaluate_split(splits.val)
                row.update(val_loss=val.loss, val_accuracy=val.accuracy)
                if cfg.checkpoint == "best_val_accuracy" and val.accuracy > run["best_val"]:
                    run.update(best_val=val.accuracy, best_epoch=epoch, best_state=copy.deepcopy(model.state_dict()))
            if cfg.test_every_epoch and test_labelled:
                test = evaluate_split(splits.test)
                row.update(test_loss=test.loss, test_accuracy=test.accuracy)
            result.epochs.append({k: rounded(v) if isinstance(v, float) else v for k, v in row.items()})
            log.info("%s epoch %d/%d: %s", variant.name, epoch, cfg.epochs, epoch_summary(row, stats))
            run["epoch"] = epoch
            if resume is not None:
                resume.save(training_state(trained, run, first_batch, result), key)
            if on_epoch is not None:
                on_epoch(result)

    best_epoch = run["best_epoch"] if run["best_state"] is not None else cfg.epochs
    if run["best_state"] is not None:
        model.load_state_dict(run["best_state"])
    final = dict(result.epochs[best_epoch - 1])
    if "test_accuracy" not in final and test_labelled:  # the test set is seen once, by the kept checkpoint
        test = evaluate_split(splits.test)
        final.update(test_loss=rounded(test.loss), test_accuracy=rounded(test.accuracy))
    result.facts = {
        "epochs": cfg.epochs,
        "checkpoint_epoch": best_epoch,
        "parameters": models.count_parameters(model),
        "train_examples": len(splits.train.labels),
        "first_batch": first_batch,
    }
    result.timings = {
        "train_seconds": round(run["seconds"], 2),
        "train_images_per_second": round(run["images"] / run["seconds"], 1),
        **kernel_facts(device),
    }
    if test_labelled:
        result.metrics.update(test_accuracy=final["test_accuracy"], test_loss=final["test_loss"])
    else:
        result.metrics["test_labelled"] = False
    if "val_accuracy" in final:
        result.metrics.update(val_accuracy=final["val_accuracy"], val_loss=final["val_loss"])
    if check is not None:
        val_labels = splits.val.labels if splits.val is not None else None
        refuse_chance_level(variant.name, result.metrics, val_labels, splits.test.labels, check.min_above_chance)
    return result
