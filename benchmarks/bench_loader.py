"""One epoch of the DS 5220 CNN, the seed's way and the engine's way, in one run.

Seed-style: ``torchvision.datasets.MNIST`` with ``ToTensor`` + ``Normalize`` applied
to each PIL image inside a ``DataLoader`` (batch 64, shuffle, ``num_workers`` as
given), SGD lr 0.01, NLL loss. Engine: the same model, optimizer, batch size,
normalization and float32 arithmetic through :func:`pipeline.engine.train_one_epoch`
on the in-memory uint8 tensor. Both start from the same weights and both are
evaluated on the test set, so the speed-up is quoted at equal accuracy.

The engine is then timed again with bfloat16 autocast and with channels-last
memory, to show what each adds (or costs) on this CPU.

Run on an otherwise idle machine:  ``.venv/bin/python benchmarks/bench_loader.py``
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
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from pipeline.config import load_variant  # noqa: E402
from pipeline.datasets import Normalizer, channel_stats  # noqa: E402
from pipeline.engine import InputPipeline, evaluate, make_loss, make_optimizer, train_one_epoch  # noqa: E402
from pipeline.io import write_json  # noqa: E402
from pipeline.models import create_model  # noqa: E402


def seed_style_epoch(model, root: str, mean: float, std: float, batch_size: int, lr: float, workers: int, seed: int) -> float:
    """The seed's loop, kept as it is (per-sample PIL -> tensor transforms in a DataLoader)."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    train_data = datasets.MNIST(root, train=True, download=False, transform=transform)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the seed-style loop")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    variant = load_variant("ds5220_cnn")
    cfg = variant.train
    root = variant.data.path
    train = datasets.MNIST(root, train=True, download=False)
    test = datasets.MNIST(root, train=False, download=False)
    train_images, test_images = train.data[:, None].contiguous(), test.data[:, None].contiguous()
    (mean,), (std,) = channel_stats(train_images)
    normalizer = Normalizer([mean], [std])
    cpu = torch.device("cpu")

    torch.manual_seed(variant.seed)
    initial = create_model(variant.model.name)
    results = {}

    def score(model, precision="float32", channels_last=False) -> float:
        prepare = InputPipeline(normalizer, cpu, channels_last)
        return evaluate(model, test_images, test.targets, prepare, cfg.loss, 1000, precision).accuracy

    model = copy.deepcopy(initial)
    seconds = seed_style_epoch(model, root, mean, std, cfg.batch_size, cfg.optimizer.lr, args.workers, variant.seed)
    results["seed_style"] = {"seconds": seconds, "test_accuracy": score(model)}

    for label, precision, channels_last in [
        ("engine_float32", "float32", False),
        ("engine_bfloat16", "bfloat16", False),
        ("engine_float32_channels_last", "float32", True),
        ("engine_bfloat16_channels_last", "bfloat16", True),
    ]:
        model = copy.deepcopy(initial)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        run_cfg = dataclasses.replace(cfg, precision=precision, channels_last=channels_last)
        prepare = InputPipeline(normalizer, cpu, channels_last)
        stats = train_one_epoch(model, train_images, train.targets, prepare, make_optimizer(cfg.optimizer, model.parameters()),
                                make_loss(cfg.loss), run_cfg, torch.Generator().manual_seed(variant.seed))
        results[label] = {"seconds": stats.seconds, "test_accuracy": score(model, precision, channels_last)}

    base = results["seed_style"]
    print(f"DS 5220 CNN, one epoch of 60,000 MNIST images, batch {cfg.batch_size}, SGD lr {cfg.optimizer.lr}, "
          f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'loop':34s} {'seconds':>8s} {'speed-up':>9s} {'test acc':>9s}")
    for label, r in results.items():
        r["speedup_vs_seed_style"] = base["seconds"] / r["seconds"]
        print(f"{label:34s} {r['seconds']:8.2f} {r['speedup_vs_seed_style']:8.2f}x {r['test_accuracy']:9.4f}")
    engine = results["engine_float32"]
    ok_speed = engine["speedup_vs_seed_style"] >= 2.0
    ok_acc = abs(engine["test_accuracy"] - base["test_accuracy"]) <= 0.003
    print(f"target: engine float32 >= 2x the seed-style loop: {'PASS' if ok_speed else 'MISS'} "
          f"({engine['speedup_vs_seed_style']:.2f}x); same test accuracy within 0.3 points: "
          f"{'PASS' if ok_acc else 'MISS'} ({100 * (engine['test_accuracy'] - base['test_accuracy']):+.2f} points)")
    if args.json:
        write_json(args.json, {"batch_size": cfg.batch_size, "threads": torch.get_num_threads(),
                               "workers": args.workers, "results": results})


if __name__ == "__main__":
    main()
