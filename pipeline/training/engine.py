"""The one training engine every variant goes through.

It reads top to bottom like pytorch/examples' mnist/main.py: data, model,
optimizer, then ``train_one_epoch`` / ``evaluate`` per epoch, then the result.
What differs between assignments (format, normalization, model, optimizer,
loss, schedule, augmentation, precision, checkpoint rule) comes from the
variant's :class:`~pipeline.core.config.VariantConfig`; nothing here asks which
assignment it is running.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from pipeline import models
from pipeline.core.config import (
    TrainConfig,
    VariantConfig,
)
from pipeline.core.io import rounded
from pipeline.core.params import TrainingCheckConfig
from pipeline.data.readers import UNLABELLED, ImageSet
from pipeline.training.checks import TrainingDiverged, divergence_cause, refuse_chance_level
from pipeline.training.datasets import BatchAugment, Splits, batches, num_batches
from pipeline.training.normalizer import Normalizer
from pipeline.training.resume import (
    ResumeFile,
    data_tensors,
    fingerprint,
    interrupt_message,
    restore_training,
    training_state,
)
from pipeline.training.setup import (
    InputPipeline,
    LossFn,
    Scheduler,
    autocast,
    check_model_and_loss,
    kernel_facts,
    make_loss,
    make_optimizer,
    make_scheduler,
    seed_everything,
    select_device,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- one epoch


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    images: int
    seconds: float
    # (batch size, loss) of every step, in order; the losses stay on the device (no sync per step)
    step_losses: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    first_batch: dict = field(default_factory=dict)  # see first_batch_stats; the first epoch only


def first_batch_stats(x: torch.Tensor, y: torch.Tensor) -> dict:
    """What the handouts print before training (DS 5220 Part 0): shapes, mean and std of
    the first batch the model is given."""
    return {
        "images_shape": list(x.shape),
        "labels_shape": list(y.shape),
        "mean": rounded(x.float().mean()),
        "std": rounded(x.float().std()),
    }


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    prepare: InputPipeline,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    cfg: TrainConfig,
    generator: torch.Generator,
    desc: str = "train",
    first_epoch: bool = True,
) -> EpochStats:
    """One pass over shuffled training batches: the mean loss and accuracy, every step's loss and,
    in the ``first_epoch`` (no update came before it: what a divergence is blamed on), the
    statistics of the first batch as the model receives it (normalized, augmented)."""
    model.train()
    device = prepare.device
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    step_losses: list[tuple[int, torch.Tensor]] = []
    first_batch: dict = {}
    start = time.perf_counter()
    bar = tqdm(total=num_batches(len(labels), cfg.batch_size), desc=desc, leave=False, disable=not sys.stderr.isatty())
    for batch_images, batch_labels in batches(images, labels, cfg.batch_size, generator):
        x = prepare(batch_images, generator)
        y = batch_labels.to(device, non_blocking=True)
        if first_epoch and seen == 0:
            first_batch = first_batch_stats(x, y)
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
        step_losses.append((len(y), batch_loss))
        bar.update()
    bar.close()
    seconds = time.perf_counter() - start
    return EpochStats(
        loss=float(total_loss) / seen,
        accuracy=int(correct) / seen,
        images=seen,
        seconds=seconds,
        step_losses=step_losses,
        first_batch=first_batch,
    )


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


@dataclass
class Training:
    """What :func:`fit` builds before its first epoch, and ``run``: what an epoch changes besides
    model, optimizer, scheduler, generator and curves (all of it kept by :mod:`pipeline.training.resume`)."""

    variant: VariantConfig
    splits: Splits
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler | None
    loss_fn: LossFn
    eval_loss: LossFn  # the criterion with reduction="sum"
    train_input: InputPipeline
    eval_input: InputPipeline
    generator: torch.Generator  # shuffling and augmentation
    result: TrainResult
    run: dict
    first_batch: dict = field(default_factory=dict)
    test_labelled: bool = True  # False: the course's CSE 849 zip, whose test images come without labels

    @property
    def trained(self) -> tuple:
        """``(model, optimizer, scheduler, generator)``: what :mod:`pipeline.training.resume` saves."""
        return (self.model, self.optimizer, self.scheduler, self.generator)


def set_up(variant: VariantConfig, splits: Splits, device: torch.device) -> Training:
    """Seed, then build normalizer, model, optimizer, schedule, criteria and input pipelines, in
    this order: the model's initialization draws from torch's global generator, just seeded."""
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
    return Training(
        variant=variant,
        splits=splits,
        device=device,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        loss_fn=loss_fn,
        eval_loss=eval_loss,
        train_input=InputPipeline(normalizer, device, cfg.channels_last, augment),
        eval_input=InputPipeline(normalizer, device, cfg.channels_last),
        generator=torch.Generator().manual_seed(variant.seed),
        result=TrainResult(model=model, normalizer=normalizer),
        run=dict(epoch=0, step=0, seen=0, seconds=0.0, images=0, best_state=None, best_val=-1.0, best_epoch=cfg.epochs),
        test_labelled=not bool((splits.test.labels == UNLABELLED).any()),
    )


def log_start(t: Training) -> None:
    """One line on what is trained where, and a warning when the test split cannot be scored."""
    splits = t.splits
    log.info(
        "%s: %s on %s, %d parameters, %d train / %s val / %d test images",
        t.variant.name,
        t.variant.model.name,
        t.device,
        models.count_parameters(t.model),
        len(splits.train.labels),
        len(splits.val.labels) if splits.val else 0,
        len(splits.test.labels),
    )
    if not t.test_labelled:
        log.warning(
            "%s: the test split has unlabelled images: no test loss or accuracy (the predict command "
            "writes its predictions)",
            t.variant.name,
        )


def evaluate_split(t: Training, split: ImageSet) -> EvalResult:
    """The model as it is now on ``split``: validation each epoch, test each epoch or once at the end."""
    cfg = t.variant.train
    return evaluate(
        t.model,
        split.images,
        split.labels,
        t.eval_input,
        t.eval_loss,
        cfg.eval_batch_size,
        cfg.precision,
        cfg.eval_hflip,
    )


def record_steps(t: Training, stats: EpochStats) -> None:
    """Count the epoch's steps and examples; every ``log_every_steps`` steps, a row of the step curve."""
    run = t.run
    for examples, loss in stats.step_losses:
        run["step"] += 1
        run["seen"] += examples
        if run["step"] % t.variant.train.log_every_steps == 0:
            t.result.steps.append({"step": run["step"], "examples_seen": run["seen"], "train_loss": rounded(loss)})


def run_epoch(t: Training, epoch: int) -> None:
    """Train one epoch, step the schedule, measure validation (and test), keep the best checkpoint."""
    variant, cfg, run, splits = t.variant, t.variant.train, t.run, t.splits
    lr = t.optimizer.param_groups[0]["lr"]
    stats = train_one_epoch(
        t.model,
        splits.train.images,
        splits.train.labels,
        t.train_input,
        t.optimizer,
        t.loss_fn,
        cfg,
        t.generator,
        desc=f"{variant.name} epoch {epoch}/{cfg.epochs}",
        first_epoch=epoch == 1,
    )
    t.first_batch.update(stats.first_batch)
    record_steps(t, stats)
    if t.scheduler is not None:
        t.scheduler.step()
    run["seconds"] += stats.seconds
    run["images"] += stats.images
    row = {"epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_accuracy": stats.accuracy}
    if splits.val is not None:
        val = evaluate_split(t, splits.val)
        row.update(val_loss=val.loss, val_accuracy=val.accuracy)
        if cfg.checkpoint == "best_val_accuracy" and val.accuracy > run["best_val"]:
            run.update(best_val=val.accuracy, best_epoch=epoch, best_state=copy.deepcopy(t.model.state_dict()))
    if cfg.test_every_epoch and t.test_labelled:
        test = evaluate_split(t, splits.test)
        row.update(test_loss=test.loss, test_accuracy=test.accuracy)
    t.result.epochs.append({k: rounded(v) if isinstance(v, float) else v for k, v in row.items()})
    log.info("%s epoch %d/%d: %s", variant.name, epoch, cfg.epochs, epoch_summary(row, stats))
    run["epoch"] = epoch


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
    t = set_up(variant, splits, device)
    log_start(t)
    epochs = variant.train.epochs
    key = None if resume is None else fingerprint([asdict(variant), device.type], data_tensors(splits))
    if resume is not None and (saved := resume.load(key)) is not None:
        restore_training(saved, t.trained, t.run, t.first_batch, t.result)
        log.info("%s: resuming after epoch %d of %d (%s)", variant.name, t.run["epoch"], epochs, resume.path)
    with interrupt_message(f"{variant.name} (seed {variant.seed})", epochs, t.run, resume):
        for epoch in range(t.run["epoch"] + 1, epochs + 1):
            run_epoch(t, epoch)
            if resume is not None:
                resume.save(training_state(t.trained, t.run, t.first_batch, t.result), key)
            if on_epoch is not None:
                on_epoch(t.result)
    finish(t)
    if check is not None:
        val_labels = splits.val.labels if splits.val is not None else None
        refuse_chance_level(variant.name, t.result.metrics, val_labels, splits.test.labels, check.min_above_chance)
    return t.result


def finish(t: Training) -> None:
    """Load the kept checkpoint, test it if no epoch did, and fill the result's metrics, facts and timings."""
    run, result, cfg = t.run, t.result, t.variant.train
    if run["best_state"] is not None:
        t.model.load_state_dict(run["best_state"])
    final = dict(result.epochs[run["best_epoch"] - 1])
    if "test_accuracy" not in final and t.test_labelled:  # the test set is seen once, by the kept checkpoint
        test = evaluate_split(t, t.splits.test)
        final.update(test_loss=rounded(test.loss), test_accuracy=rounded(test.accuracy))
    result.facts = {
        "epochs": cfg.epochs,
        "checkpoint_epoch": run["best_epoch"],
        "parameters": models.count_parameters(t.model),
        "train_examples": len(t.splits.train.labels),
        "first_batch": t.first_batch,
    }
    result.timings = {
        "train_seconds": round(run["seconds"], 2),
        "train_images_per_second": round(run["images"] / run["seconds"], 1),
        **kernel_facts(t.device),
    }
    if t.test_labelled:
        result.metrics.update(test_accuracy=final["test_accuracy"], test_loss=final["test_loss"])
    else:
        result.metrics["test_labelled"] = False
    if "val_accuracy" in final:
        result.metrics.update(val_accuracy=final["val_accuracy"], val_loss=final["val_loss"])
