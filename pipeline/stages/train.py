"""Stage ``train@<variant>``: train one variant from params.yaml.

Writes ``models/<variant>.pt``; under ``reports/<variant>/``: ``metrics.json`` (test and
validation accuracy and loss: what experiments compare), ``training.json`` (epochs,
kept epoch, parameters, training examples), ``timings.json`` (this machine's speed, apart
so that a retrain changes no other file) and the per-epoch / per-step curves in ``plots/``.

The curves are rewritten after every epoch, so ``dvc plots show`` draws a run in progress
(and put back as they were if the run fails). A resume state is kept in
``.resume/train@<variant>/`` (:mod:`pipeline.training.resume`): a rerun after a kill or Ctrl-C
continues from the last finished epoch, to the same bytes; it is removed once the outputs
are written. A run that diverges or ends at chance (``training_check``) writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.allocator import retain_freed_memory
from pipeline.core.cli import DEVICE, MODELS_DIR, REPORTS_DIR, VARIANT, stage_main
from pipeline.core.io import check_outputs, live_curves, output_set, write_csv, write_json
from pipeline.core.params import load_all
from pipeline.core.schemas import Metrics, Timings, TrainingFacts, check
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.datasets import load_splits
from pipeline.training.engine import fit
from pipeline.training.resume import resumable
from pipeline.training.setup import check_model_and_loss, select_device


def train_variant(
    name: str, models_dir: Path = Path("models"), reports_dir: Path = Path("reports"), device: str | None = None
) -> dict:
    params = load_all()  # the whole file validated before any data is read
    variant = params.variant(name)
    check_model_and_loss(variant)  # model name, arguments and loss too
    out = reports_dir / name
    outputs = (models_dir / f"{name}.pt", out / "plots" / "epochs.csv", out / "plots" / "steps.csv")
    outputs += (out / "training.json", out / "timings.json", out / "metrics.json")
    check_outputs(outputs)  # a read-only or mistyped folder is refused before the training, not after it
    splits = load_splits(variant.data, variant.seed)
    # a resume state per epoch (.resume/train@<name>/, removed once the outputs are written), and
    # the curves rewritten per epoch for `dvc plots show` (put back if the run fails)
    with resumable(f"train@{name}") as store, live_curves(outputs[1], outputs[2]) as show:
        result = fit(
            variant,
            splits,
            select_device(device),
            resume=store.run(),
            on_epoch=lambda so_far: show(so_far.epochs, so_far.steps),
            check=params.training_check,
        )
        input_shape = tuple(splits.train.images.shape[1:])
        # one set: a failure on any file (a full disk) leaves the previous model beside its own reports
        with output_set(*outputs) as (model, epochs, steps, training, timings, metrics):
            save_checkpoint(model, variant, result.model, result.normalizer, input_shape, splits.classes)
            write_csv(epochs, result.epochs)
            write_csv(steps, result.steps)
            # the shapes the report and the studies read (pipeline/core/schemas.py)
            write_json(training, check(result.facts, TrainingFacts, f"{name}/training.json"))
            write_json(timings, check(result.timings, Timings, f"{name}/timings.json"))
            write_json(metrics, check(result.metrics, Metrics, f"{name}/metrics.json"))
    return result.metrics


main = stage_main(
    __doc__,
    [VARIANT, MODELS_DIR, REPORTS_DIR, DEVICE],
    lambda args: train_variant(args.variant, args.models_dir, args.reports_dir, args.device),
    before=retain_freed_memory,  # no page faults for the per-step temporaries (pipeline/allocator.py)
)


if __name__ == "__main__":
    main()
