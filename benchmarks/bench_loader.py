"""One epoch of the DS 5220 CNN, the handout's way and the engine's way, in one run.

Handout-style (``seed_style`` in the output's keys): ``torchvision.datasets.MNIST`` with ``ToTensor`` + ``Normalize`` applied
to each PIL image inside a ``DataLoader`` (batch 64, shuffle, ``num_workers`` as
given), SGD lr 0.01, NLL loss. Engine: the same model, optimizer, batch size,
normalization and float32 arithmetic through :func:`pipeline.training.engine.train_one_epoch`
on the in-memory uint8 tensor. Both start from the same weights and both are
evaluated on the test set, so the speed-up is quoted at equal accuracy.

The engine is then timed again with bfloat16 autocast and with channels-last
memory, to show what each adds (or costs) on this CPU.

This stage runs inside ``dvc repro`` right after training stages, on a machine other work
shares, so the five loops are timed the way ``benchmarks/timing_harness.py`` explains: in
interleaved rounds (handout-style, float32, bfloat16, ..., then the same in reverse), ``--repeats``
epochs of each (default 2), every epoch from the same initial weights, the same shuffling
and a fresh optimizer, so every repeat of a loop trains the same model; ten untimed
batches of each loop come first, so one-time set-up costs stay out of the timed epochs. Each loop keeps its
minimum and median epoch time; ``seconds`` and ``speedup_vs_seed_style`` (what the report
shows) come from the minimums, the least disturbed runs, and ``seconds_median`` /
``speedup_vs_seed_style_median`` from the medians. Test accuracy is measured once per loop,
on the model of its last repeat (outside the timed epochs). The load average and core count
before and after and each loop's spread (median / min) give a verdict, ``reliable`` with a
``reliability_note`` (rule: ``timing_harness.judge``).

    .venv/bin/python benchmarks/bench_loader.py                      # the full benchmark (~3-4 min)
    .venv/bin/python benchmarks/bench_loader.py --quick              # a smoke test: 3,200 images, 1 repeat
    .venv/bin/python benchmarks/bench_loader.py --json reports/benchmarks/loader.json   # the DVC stage
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks import timing_harness as harness  # noqa: E402
from pipeline.core.config import OptimizerConfig, TrainConfig  # noqa: E402
from pipeline.core.io import write_json  # noqa: E402
from pipeline.core.params import load_all, require  # noqa: E402
from pipeline.models.ds5220_cnn import DS5220CNN  # noqa: E402
from pipeline.training.engine import evaluate, train_one_epoch  # noqa: E402
from pipeline.training.normalizer import Normalizer, channel_stats  # noqa: E402
from pipeline.training.setup import InputPipeline, make_loss, make_optimizer

MODEL = "ds5220_cnn"  # the network timed (imported directly: this benchmark is about this one model)
LOSS = "nll"  # the DS 5220 handout's criterion (the model ends in log-softmax)
WARMUP_STEPS = 10  # untimed batches of each loop before the timed epochs


def seed_style_epoch(
    model,
    root: str,
    mean: float,
    std: float,
    batch_size: int,
    lr: float,
    workers: int,
    seed: int,
    images: int | None = None,
) -> float:
    """The handout's loop, kept as it is (per-sample PIL -> tensor transforms in a DataLoader);
    ``images``: only the first so many training images (a smoke test), else all."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    train_data = datasets.MNIST(root, train=True, download=False, transform=transform)
    if images is not None:
        train_data = Subset(train_data, range(images))
    torch.manual_seed(seed)
    loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, num_workers=workers)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    start = time.perf_counter()
    for img, label in loader:
        optimizer.zero_grad()
        loss = F.nll_loss(model(img), label)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


ENGINE_LOOPS = [  # label, precision, channels_last
    ("engine_float32", "float32", False),
    ("engine_bfloat16", "bfloat16", False),
    ("engine_float32_channels_last", "float32", True),
    ("engine_bfloat16_channels_last", "bfloat16", True),
]


def loop_fields(runs: list[float], base: dict) -> dict:
    """A loop's timing fields; ``base`` is the handout-style loop's (the same dict for that loop itself)."""
    stats = harness.summarize(runs)
    return {
        "seconds": stats["min_s"],  # the least disturbed epoch: what the report shows
        "seconds_min": stats["min_s"],
        "seconds_median": stats["median_s"],
        "spread": stats["spread"],
        "runs_s": stats["runs_s"],
        "speedup_vs_seed_style": base["min_s"] / stats["min_s"],
        "speedup_vs_seed_style_median": base["median_s"] / stats["median_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the handout-style loop")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--params", default="params.yaml", help="reads benchmarks.loader (default: %(default)s)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="epochs of each loop, interleaved (default 2; 1 with --quick)"
    )
    parser.add_argument(
        "--images", type=int, default=None, help="training images per epoch (default all 60,000; 3,200 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test: 3,200 images, 1 repeat")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="wait up to this many seconds for the 1-minute load average to fall below the busy "
        "threshold before timing (default 0: a just-finished stage still counts in it for a minute or two)",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 2)
    n_images = args.images if args.images is not None else (3200 if args.quick else None)
    if repeats < 1 or (n_images is not None and n_images < 1):
        parser.error("--repeats and --images must be at least 1")

    # Its own params block, not variants.ds5220_cnn: tuning that variant must not rerun
    # (and re-time) this benchmark, which measures the handout's fixed set-up.
    settings = require(load_all(args.params).benchmarks.loader, "benchmarks.loader")
    seed = settings.seed
    root = settings.data
    cfg = TrainConfig(
        epochs=1,
        batch_size=settings.batch_size,
        loss=LOSS,
        optimizer=OptimizerConfig(name="sgd", lr=settings.lr),
    )
    train = datasets.MNIST(root, train=True, download=False)
    test = datasets.MNIST(root, train=False, download=False)
    train_images, test_images = train.data[:, None].contiguous(), test.data[:, None].contiguous()
    (mean,), (std,) = channel_stats(train_images)  # of all 60,000 images, also in a smoke test
    train_labels = train.targets
    if n_images is not None:
        n_images = min(n_images, len(train_labels))
        train_images, train_labels = train_images[:n_images], train_labels[:n_images]
    normalizer = Normalizer([mean], [std])
    cpu = torch.device("cpu")

    torch.manual_seed(seed)
    initial = DS5220CNN()
    last_model: dict[str, torch.nn.Module] = {}  # each loop's model after its latest repeat
    settings_of = {"seed_style": ("float32", False), **{label: (p, cl) for label, p, cl in ENGINE_LOOPS}}

    def score(model, precision="float32", channels_last=False) -> float:
        prepare = InputPipeline(normalizer, cpu, channels_last)
        return evaluate(
            model, test_images, test.targets, prepare, make_loss(LOSS, MODEL, reduction="sum"), 1000, precision
        ).accuracy

    def loops(images: int) -> dict:
        """The five loops as callables, each training a fresh copy of ``initial`` on the first ``images`` images."""

        def seed_style() -> float:
            model = copy.deepcopy(initial)
            seconds = seed_style_epoch(
                model, root, mean, std, cfg.batch_size, cfg.optimizer.lr, args.workers, seed, images
            )
            last_model["seed_style"] = model
            return seconds

        def engine(label: str, precision: str, channels_last: bool):
            def run() -> float:
                model = copy.deepcopy(initial)
                if channels_last:
                    model = model.to(memory_format=torch.channels_last)
                run_cfg = dataclasses.replace(cfg, precision=precision, channels_last=channels_last)
                prepare = InputPipeline(normalizer, cpu, channels_last)
                stats = train_one_epoch(
                    model,
                    train_images[:images],
                    train_labels[:images],
                    prepare,
                    make_optimizer(cfg.optimizer, model.parameters()),
                    make_loss(LOSS, MODEL),
                    run_cfg,
                    torch.Generator().manual_seed(seed),
                )
                last_model[label] = model
                return stats.seconds  # the training loop only

            return run

        return {"seed_style": seed_style, **{label: engine(label, p, cl) for label, p, cl in ENGINE_LOOPS}}

    threads = torch.get_num_threads()
    settled = (
        harness.wait_for_calm(args.settle, harness.load_threshold(harness.cores(), threads)) if args.settle > 0 else 0.0
    )
    # Warm-up, untimed: a few batches of each loop, so one-time costs (oneDNN kernels for
    # bfloat16 and channels-last, first-touch memory) do not land in the first timed epoch.
    for warm in loops(min(WARMUP_STEPS * cfg.batch_size, len(train_labels))).values():
        warm()
    before = harness.machine_state()
    times = harness.interleave(loops(len(train_labels)), repeats)
    after = harness.machine_state()

    base = harness.summarize(times["seed_style"])
    results = {}
    for label, runs in times.items():
        precision, channels_last = settings_of[label]
        results[label] = {
            **loop_fields(runs, base),
            "test_accuracy": score(last_model[label], precision, channels_last),
        }

    images_text = f"{len(train_labels):,}"
    print(
        f"DS 5220 CNN, one epoch of {images_text} MNIST images, batch {cfg.batch_size}, SGD lr {cfg.optimizer.lr}, "
        f"{threads} threads, {before['cores']} cores, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
        f"{repeats} interleaved repeat(s) of each loop"
    )
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in before['load_average'])}"
        + (f" (after waiting {settled:.0f} s to settle)" if settled else "")
        + f", after: {' '.join(f'{x:.2f}' for x in after['load_average'])}"
    )
    print(
        f"{'loop':34s} {'min s':>8s} {'median s':>9s} {'spread':>7s} {'speed-up':>9s} {'(median)':>9s} {'test acc':>9s}"
    )
    for label, r in results.items():
        print(
            f"{label:34s} {r['seconds_min']:8.2f} {r['seconds_median']:9.2f} {r['spread']:7.2f} "
            f"{r['speedup_vs_seed_style']:8.2f}x {r['speedup_vs_seed_style_median']:8.2f}x {r['test_accuracy']:9.4f}"
        )
    seed_r, engine_r = results["seed_style"], results["engine_float32"]
    ok_speed = engine_r["speedup_vs_seed_style"] >= 2.0
    ok_acc = abs(engine_r["test_accuracy"] - seed_r["test_accuracy"]) <= 0.003
    print(
        f"target: engine float32 >= 2x the handout-style loop (minimums): {'PASS' if ok_speed else 'MISS'} "
        f"({engine_r['speedup_vs_seed_style']:.2f}x; medians {engine_r['speedup_vs_seed_style_median']:.2f}x); "
        f"same test accuracy within 0.3 points: "
        f"{'PASS' if ok_acc else 'MISS'} ({100 * (engine_r['test_accuracy'] - seed_r['test_accuracy']):+.2f} points)"
    )
    reliable, note = harness.judge(before, after, threads, {label: r["spread"] for label, r in results.items()})
    print(harness.verdict_line(reliable, note))
    if args.json:
        write_json(
            args.json,
            {
                "batch_size": cfg.batch_size,
                "threads": threads,
                "workers": args.workers,
                "images": len(train_labels),
                "repeats": repeats,
                "cores": before["cores"],
                "cores_after": after["cores"],
                "settle_waited_s": settled,
                "load_average_before": before["load_average"],
                "load_average_after": after["load_average"],
                "reliable": reliable,
                "reliability_note": note,
                "results": results,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
