"""Speed of the HKU A3 custom layers (pipeline/layers.py) against torch.nn, in one run.

    .venv/bin/python benchmarks/bench_layers.py            # full: 60,000-image epoch
    .venv/bin/python benchmarks/bench_layers.py --quick    # 6,400-image epoch, fewer repeats
    .venv/bin/python benchmarks/bench_layers.py --json reports/benchmarks/layers.json   # the DVC stage

Measures forward + backward (median of ``--repeats`` timed runs after ``--warmup``
untimed ones; custom and torch runs alternate so that background load hits both alike)
on SimpleCNN's shapes at batch 64, float32:

* convolution: 1 -> 32, 5x5 on 28x28 (input without gradient, as SimpleCNN's images),
  32 -> 64, 5x5 on 12x12 (input with gradient, as inside the network);
* max-pooling 2x2: 32 channels 24x24 -> 12x12, 64 channels 8x8 -> 4x4 (ReLU outputs);
* one training epoch of SimpleCNN (Adam, lr 1e-3, batch 64, cross-entropy) on in-memory
  random MNIST-sized data, ``layers="custom"`` (with CustomCrossEntropyLoss) against
  ``layers="torch"`` (with nn.CrossEntropyLoss), both starting from the same weights.

Targets (custom / torch, ratio of the medians): convolution <= 2x, pooling <= 3x, epoch
<= 1.5x. The layer rows also show the ratio of the fastest runs ("best"), which a
loaded machine disturbs less. The epoch is timed once per model.
``torch.set_num_threads`` is left as it is; the thread count and the load average
are printed, because a loaded machine makes every number noisy.

Memory allocator: an unfold-based convolution allocates large temporaries (SimpleCNN's
conv2 at batch 64: 13 MB each for the unfolded input, its gradient and the batched
weight gradient). With glibc's default, adaptive malloc settings those blocks are handed
back to the kernel after every step and page-faulted in again by the next one
(~9,000 minor faults per training step on the machine this was written on; torch's
layers cause none), which costs more than the arithmetic difference. The epoch row
reports the minor page faults per step of each model. ``--tune-malloc`` raises glibc's
mmap and trim thresholds (``mallopt``; the same as the environment variables
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728``) for this process,
i.e. for both models alike, to show the layers' cost without that effect.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from pipeline import layers  # noqa: E402
from pipeline.io import write_json  # noqa: E402
from pipeline.models import create_model  # noqa: E402

BATCH = 64
TARGETS = {"conv": 2.0, "pool": 3.0, "epoch": 1.5}
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 128 << 20


def tune_malloc() -> bool:
    """Keep freed blocks up to 32 MB in the heap (glibc only); True when it took effect."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):  # not glibc
        return False


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_pair(custom: Callable[[], None], reference: Callable[[], None], repeats: int, warmup: int) -> dict:
    """Median (and best) seconds of ``custom`` and ``reference``, timed alternately."""
    for _ in range(warmup):
        custom()
        reference()
    times: dict[str, list[float]] = {"custom": [], "torch": []}
    for i in range(repeats):
        order = (("custom", custom), ("torch", reference)) if i % 2 == 0 else (("torch", reference), ("custom", custom))
        for name, fn in order:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {
        "custom_s": statistics.median(times["custom"]),
        "torch_s": statistics.median(times["torch"]),
        "custom_best_s": min(times["custom"]),
        "torch_best_s": min(times["torch"]),
    }


def _step(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        for p in module.parameters():
            p.grad = None
        if x.requires_grad:
            x.grad = None
        module(x).backward(upstream)

    return run


def bench_conv(c_in: int, c_out: int, hw: int, input_grad: bool, gen: torch.Generator, repeats: int, warmup: int):
    reference = nn.Conv2d(c_in, c_out, 5)
    custom = layers.CustomConv2D(c_in, c_out, 5)
    custom.load_state_dict(reference.state_dict())
    x = torch.randn(BATCH, c_in, hw, hw, generator=gen).requires_grad_(input_grad)
    upstream = torch.randn(BATCH, c_out, hw - 4, hw - 4, generator=gen)
    return time_pair(_step(custom, x, upstream), _step(reference, x, upstream), repeats, warmup)


def bench_pool(channels: int, hw: int, gen: torch.Generator, repeats: int, warmup: int):
    x = torch.randn(BATCH, channels, hw, hw, generator=gen).clamp_(min=0).requires_grad_(True)  # ReLU outputs
    upstream = torch.randn(BATCH, channels, hw // 2, hw // 2, generator=gen)
    return time_pair(
        _step(layers.CustomMaxPool2D(2), x, upstream), _step(nn.MaxPool2d(2), x, upstream), repeats, warmup
    )


def train_epoch(
    model: nn.Module, loss_fn: nn.Module, images: torch.Tensor, labels: torch.Tensor, order: torch.Tensor
) -> tuple[float, float]:
    """Seconds for one epoch of Adam steps over ``images`` in the given order, and minor page faults per step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    faults = minor_faults()
    start = time.perf_counter()
    for first in range(0, len(order), BATCH):
        idx = order[first : first + BATCH]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images[idx]), labels[idx])
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    steps = -(-len(order) // BATCH)
    return seconds, (minor_faults() - faults) / steps


def bench_epoch(n_images: int, seed: int, warmup_steps: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n_images, 1, 28, 28, generator=gen)
    labels = torch.randint(0, 10, (n_images,), generator=gen)
    order = torch.randperm(n_images, generator=gen)
    torch.manual_seed(seed)
    reference = create_model("simple_cnn", layers="torch")
    custom = create_model("simple_cnn", layers="custom")
    custom.load_state_dict(reference.state_dict())  # same starting weights
    runs = {
        "torch": (reference, nn.CrossEntropyLoss()),
        "custom": (custom, layers.CustomCrossEntropyLoss()),
    }
    warm = order[: warmup_steps * BATCH]
    for model, loss_fn in runs.values():  # warm-up on copies, so both epochs start from the same state
        clone = create_model("simple_cnn", layers="torch" if model is reference else "custom")
        clone.load_state_dict(model.state_dict())
        train_epoch(clone, loss_fn, images, labels, warm)
    torch.manual_seed(seed)
    t_torch, faults_torch = train_epoch(reference, runs["torch"][1], images, labels, order)
    torch.manual_seed(seed)  # the same dropout masks
    t_custom, faults_custom = train_epoch(custom, runs["custom"][1], images, labels, order)
    return {
        "custom_s": t_custom, "torch_s": t_torch,
        "custom_faults_per_step": faults_custom, "torch_faults_per_step": faults_torch,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=None, help="images in the timed epoch (default 60000; 6400 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a 6,400-image epoch and fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per layer benchmark (default 30; 10 with --quick)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before timing (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument(
        "--tune-malloc", action="store_true",
        help="raise glibc's mmap/trim thresholds for this process (both models) - see the module docstring",
    )
    args = parser.parse_args(argv)
    n_images = args.images if args.images is not None else (6400 if args.quick else 60000)
    repeats = args.repeats if args.repeats is not None else (10 if args.quick else 30)
    if n_images < BATCH or repeats < 1:
        parser.error("--images must be at least one batch (64) and --repeats at least 1")

    malloc_tuned = tune_malloc() if args.tune_malloc else False
    if args.tune_malloc and not malloc_tuned:
        print("--tune-malloc: mallopt is not available here (not glibc); running with the defaults")
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    load_before = os.getloadavg()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()} ({os.cpu_count()} CPUs); "
        f"malloc {'tuned (--tune-malloc)' if malloc_tuned else 'defaults'}; "
        f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}"
    )
    rows = []

    def record(kind: str, name: str, timing: dict, unit: str = "ms") -> None:
        custom, reference = timing["custom_s"], timing["torch_s"]
        ratio = custom / reference
        row = {"kind": kind, "name": name, **timing, "ratio": ratio, "target": TARGETS[kind]}
        row["pass"] = ratio <= TARGETS[kind]
        best = ""
        if "custom_best_s" in timing:
            row["ratio_best"] = timing["custom_best_s"] / timing["torch_best_s"]
            best = f"{row['ratio_best']:>7.2f}x"
        rows.append(row)
        scale = 1e3 if unit == "ms" else 1.0
        print(
            f"  {name:<42}{custom * scale:>9.2f}{reference * scale:>9.2f} {unit:<2}{ratio:>7.2f}x{best:>9}"
            f"   <= {TARGETS[kind]:.1f}x  {'PASS' if row['pass'] else 'MISS'}",
            flush=True,
        )

    print(
        f"  {'forward+backward, batch 64, float32':<42}{'custom':>9}{'torch':>9}{'':3}{'ratio':>8}{'(best)':>9}"
        f"   target (ratio of medians)"
    )
    record("conv", "conv 1->32 5x5, 28x28 (no input grad)", bench_conv(1, 32, 28, False, gen, repeats, args.warmup))
    record("conv", "conv 32->64 5x5, 12x12", bench_conv(32, 64, 12, True, gen, repeats, args.warmup))
    record("pool", "max-pool 2x2, 32ch 24x24 -> 12x12", bench_pool(32, 24, gen, repeats, args.warmup))
    record("pool", "max-pool 2x2, 64ch 8x8 -> 4x4", bench_pool(64, 8, gen, repeats, args.warmup))
    steps = -(-n_images // BATCH)
    record("epoch", f"SimpleCNN epoch, {n_images} images ({steps} steps)", bench_epoch(n_images, args.seed, 10), unit="s")

    epoch = rows[-1]
    print(
        f"  minor page faults per training step: custom {epoch['custom_faults_per_step']:.0f}, "
        f"torch {epoch['torch_faults_per_step']:.0f}"
    )
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    passed = sum(r["pass"] for r in rows)
    print(f"{passed}/{len(rows)} within target")
    if args.json:
        payload = {
            "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_name(), "malloc_tuned": malloc_tuned,
            "images": n_images, "repeats": repeats,
            "warmup": args.warmup, "seed": args.seed, "load_average_before": load_before,
            "load_average_after": load_after, "results": rows,
        }
        write_json(args.json, payload)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
