"""HKU Assignment 3, Questions 1-4: the grading cases (what ``autograder.py -q qN`` checks).

Each question checks one of the seed's classes against its torch reference with the
*same* parameters copied in:

==  ==========================  =====================
q1  ``CustomLinear``            ``nn.Linear``
q2  ``CustomConv2D``            ``nn.Conv2d``
q3  ``CustomMaxPool2D``         ``nn.MaxPool2d``
q4  ``CustomCrossEntropyLoss``  ``nn.CrossEntropyLoss``
==  ==========================  =====================

A question runs many *cases*: randomized configurations drawn from a seeded generator
(batch sizes, channel counts, square and rectangular kernels, int and pair strides and
paddings, non-square inputs, float32 and float64) followed by fixed edge cases (1x1
kernels, a kernel as large as the input, ties in max-pooling, all-negative inputs with
padding, logits of magnitude 1e4, ...). A case passes when the forward output and the
gradients of the input and of every parameter (for a random upstream gradient) agree
with the reference within the tolerance of its dtype (:data:`TOLERANCES`), and when the
layer raises nothing.

Every case draws its tensors from its own generator, seeded from the base seed, the
question and the case's index (:func:`case_generator`): a case gives the same tensors
whether it runs alone, after others, or in a fresh process after a crashed one (the
sandbox in :mod:`pipeline.grading.sandbox` restarts from the next case).

Scoring (partial credit): ``score = floor(POINTS_PER_QUESTION * passed / total)``; a
question earns its 20 points only when every one of its cases passes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pipeline.errors import PipelineError

POINTS_PER_QUESTION = 20
SEED = 20240303  # base seed; each question derives its own so it can run alone
RANDOM_CASES = 40  # randomized configurations per question (edge cases come on top)


@dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= atol * max(1, max|expected|) + rtol * |expected|`` elementwise.

    The absolute part scales with the largest reference value, so a gradient summed
    over thousands of terms, or a loss of 1e4, is judged relative to its own size.
    """

    rtol: float
    atol: float


#: Tolerances per dtype: float32 allows for a different summation order than torch's
#: kernels (oneDNN / MKL); float64 is ~8 orders of magnitude tighter.
FLOAT32_TOLERANCE = Tolerance(rtol=1e-4, atol=1e-5)
FLOAT64_TOLERANCE = Tolerance(rtol=1e-10, atol=1e-12)
TOLERANCES = {torch.float32: FLOAT32_TOLERANCE, torch.float64: FLOAT64_TOLERANCE}

DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------- comparison


def compare(name: str, actual, expected: torch.Tensor) -> str | None:
    """None when ``actual`` matches ``expected``; otherwise a one-line reason."""
    if actual is None:
        return f"{name}: missing (None)"
    if not isinstance(actual, torch.Tensor):
        return f"{name}: expected a tensor, got {type(actual).__name__}"
    if tuple(actual.shape) != tuple(expected.shape):
        return f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
    if actual.dtype != expected.dtype:
        return f"{name}: dtype {actual.dtype} != expected {expected.dtype}"
    actual, expected = actual.detach(), expected.detach()
    if not torch.equal(torch.isfinite(actual), torch.isfinite(expected)):
        return f"{name}: non-finite values where the reference has finite ones (or vice versa)"
    finite = torch.isfinite(expected)
    if not torch.equal(actual[~finite], expected[~finite]):  # inf must match inf of the same sign
        return f"{name}: infinite values differ from the reference"
    if expected.numel() == 0:
        return None
    tol = TOLERANCES.get(expected.dtype, FLOAT32_TOLERANCE)
    a, e = actual[finite].double(), expected[finite].double()
    if e.numel() == 0:
        return None
    scale = max(1.0, float(e.abs().max()))
    err = (a - e).abs()
    allowed = tol.atol * scale + tol.rtol * e.abs()
    if bool((err > allowed).any()):
        worst = int((err - allowed).argmax())
        return (
            f"{name}: max abs error {float(err.max()):.3g} (at a value {float(e[worst]):.6g}; "
            f"tolerance rtol={tol.rtol:g}, atol={tol.atol:g}*{scale:.3g})"
        )
    return None


def _randn(gen: torch.Generator, shape, dtype, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64).mul_(scale).to(dtype)


def _copy_parameters(custom: nn.Module, reference: nn.Module) -> str | None:
    """Copy the reference's weight and bias into the custom layer; a reason on mismatch."""
    for name in ("weight", "bias"):
        ref_p = getattr(reference, name)
        cus_p = getattr(custom, name, None)
        if ref_p is None:
            if cus_p is not None:
                return f"{name}: expected None (bias=False), got a tensor"
            continue
        if not isinstance(cus_p, torch.Tensor):
            return f"{name}: missing parameter"
        if tuple(cus_p.shape) != tuple(ref_p.shape):
            return f"{name}: parameter shape {tuple(cus_p.shape)} != torch's {tuple(ref_p.shape)}"
        with torch.no_grad():
            cus_p.copy_(ref_p)
    return None


def _check_module(
    custom: nn.Module, reference: nn.Module, x: torch.Tensor, gen: torch.Generator, with_params: bool
) -> list[str]:
    """Forward + backward of both modules on the same input; list of mismatches."""
    problems: list[str] = []
    if with_params:
        reason = _copy_parameters(custom, reference)
        if reason:
            return [reason]
    x_ref = x.clone().requires_grad_(True)
    x_cus = x.clone().requires_grad_(True)
    y_ref = reference(x_ref)
    y_cus = custom(x_cus)
    problem = compare("output", y_cus, y_ref)
    if problem:
        return [problem]
    upstream = _randn(gen, y_ref.shape, y_ref.dtype)
    y_ref.backward(upstream)
    y_cus.backward(upstream.clone())
    problems += filter(None, [compare("grad input", x_cus.grad, x_ref.grad)])
    if with_params:
        for name in ("weight", "bias"):
            ref_p = getattr(reference, name)
            if ref_p is not None:
                problem = compare(f"grad {name}", getattr(custom, name).grad, ref_p.grad)
                if problem:
                    problems.append(problem)
    return problems


@dataclass(frozen=True)
class Case:
    """One check: ``check(impl, gen)`` builds the layers from ``impl`` (a module defining the
    seed's classes) and returns the mismatches against torch (empty when it passes)."""

    description: str
    check: Callable[[Any, torch.Generator], list[str]]


# --------------------------------------------------------------------------- q1 linear


def _linear_case(batch_shape, in_f, out_f, bias, dtype, scale=1.0) -> Case:
    def check(impl, gen: torch.Generator) -> list[str]:
        reference = nn.Linear(in_f, out_f, bias=bias, dtype=dtype)
        custom = impl.CustomLinear(in_f, out_f, bias=bias).to(dtype)
        x = _randn(gen, (*batch_shape, in_f), dtype, scale)
        return _check_module(custom, reference, x, gen, with_params=True)

    return Case(f"Linear({in_f}, {out_f}, bias={bias}) x={(*batch_shape, in_f)} {_dt(dtype)}", check)


def linear_cases(rng: random.Random) -> Iterator[Case]:
    for _ in range(RANDOM_CASES):
        batch = (rng.randint(1, 8),) if rng.random() < 0.8 else (rng.randint(1, 3), rng.randint(1, 4))
        yield _linear_case(batch, rng.randint(1, 24), rng.randint(1, 24), rng.random() < 0.8, rng.choice(DTYPES))
    for dtype in DTYPES:  # edge cases
        yield _linear_case((1,), 1, 1, True, dtype)  # a single weight
        yield _linear_case((64,), 1024, 512, True, dtype)  # SimpleCNN's fc1
        yield _linear_case((64,), 512, 10, False, dtype)
        yield _linear_case((3,), 5, 4, True, dtype, scale=1e3)  # large inputs


# --------------------------------------------------------------------------- q2 conv


def _conv_case(n, c_in, c_out, hw, kernel, stride, padding, bias, dtype, unbatched=False) -> Case:
    def check(impl, gen: torch.Generator) -> list[str]:
        reference = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias, dtype=dtype)
        custom = impl.CustomConv2D(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias).to(dtype)
        shape = (c_in, *hw) if unbatched else (n, c_in, *hw)
        return _check_module(custom, reference, _randn(gen, shape, dtype), gen, with_params=True)

    return Case(
        f"Conv2d({c_in}, {c_out}, k={kernel}, s={stride}, p={padding}, bias={bias}) "
        f"x={'' if unbatched else f'{n}x'}{c_in}x{hw[0]}x{hw[1]} {_dt(dtype)}",
        check,
    )


def _int_or_pair(rng: random.Random, low: int, high: int):
    return rng.randint(low, high) if rng.random() < 0.5 else (rng.randint(low, high), rng.randint(low, high))


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_cases(rng: random.Random) -> Iterator[Case]:
    for _ in range(RANDOM_CASES):
        kernel = _int_or_pair(rng, 1, 5)
        stride = _int_or_pair(rng, 1, 3)
        padding = _int_or_pair(rng, 0, 2)
        (kh, kw), (ph, pw) = _pair(kernel), _pair(padding)
        hw = (rng.randint(max(1, kh - 2 * ph), 12), rng.randint(max(1, kw - 2 * pw), 12))
        yield _conv_case(  # up to 8 input channels: both of CustomConv2D's unfold layouts occur
            rng.randint(1, 4),
            rng.randint(1, 8),
            rng.randint(1, 5),
            hw,
            kernel,
            stride,
            padding,
            rng.random() < 0.8,
            rng.choice(DTYPES),
        )
    for dtype in DTYPES:  # edge cases
        yield _conv_case(2, 3, 4, (5, 7), 1, 1, 0, True, dtype)  # 1x1 kernel
        yield _conv_case(2, 3, 2, (5, 7), (5, 7), 1, 0, True, dtype)  # kernel == input: 1x1 output
        yield _conv_case(2, 2, 3, (4, 4), 6, 1, 1, True, dtype)  # kernel == padded input
        yield _conv_case(2, 2, 3, (9, 8), 2, 4, 0, True, dtype)  # stride > kernel (skipped pixels)
        yield _conv_case(1, 2, 3, (6, 5), (3, 1), (2, 1), (1, 0), False, dtype)  # rectangular everything
        yield _conv_case(1, 3, 2, (6, 6), 3, 1, 1, True, dtype, unbatched=True)  # (C, H, W) input
        yield _conv_case(2, 1, 32, (28, 28), 5, 1, 0, True, dtype)  # SimpleCNN conv1
        yield _conv_case(2, 32, 64, (12, 12), 5, 1, 0, True, dtype)  # SimpleCNN conv2


# --------------------------------------------------------------------------- q3 max-pool


_POOL_INPUTS = ("normal", "relu", "integers", "zeros", "negative")


def _pool_input(gen: torch.Generator, shape, dtype, kind: str) -> torch.Tensor:
    if kind == "relu":  # many exact ties at 0, as after ReLU in SimpleCNN
        return _randn(gen, shape, dtype).clamp_(min=0)
    if kind == "integers":  # ties between equal positive values
        return torch.randint(0, 3, shape, generator=gen).to(dtype)
    if kind == "zeros":
        return torch.zeros(shape, dtype=dtype)
    if kind == "negative":  # every value < 0: zero padding would win, -inf must not
        return -_randn(gen, shape, dtype).abs_() - 0.5
    return _randn(gen, shape, dtype)


def _pool_case(n, c, hw, kernel, stride, padding, dtype, kind: str, unbatched=False) -> Case:
    def check(impl, gen: torch.Generator) -> list[str]:
        reference = nn.MaxPool2d(kernel, stride=stride, padding=padding)
        custom = impl.CustomMaxPool2D(kernel, stride=stride, padding=padding)
        shape = (c, *hw) if unbatched else (n, c, *hw)
        return _check_module(custom, reference, _pool_input(gen, shape, dtype, kind), gen, with_params=False)

    return Case(
        f"MaxPool2d(k={kernel}, s={stride}, p={padding}) x={'' if unbatched else f'{n}x'}{c}x{hw[0]}x{hw[1]} "
        f"{kind} {_dt(dtype)}",
        check,
    )


def pool_cases(rng: random.Random) -> Iterator[Case]:
    for _ in range(RANDOM_CASES):
        kernel = _int_or_pair(rng, 1, 4)
        (kh, kw) = _pair(kernel)
        stride = None if rng.random() < 0.4 else _int_or_pair(rng, 1, 3)
        padding = 0 if rng.random() < 0.5 else (rng.randint(0, kh // 2), rng.randint(0, kw // 2))
        ph, pw = _pair(padding)
        hw = (rng.randint(max(1, kh - 2 * ph), 13), rng.randint(max(1, kw - 2 * pw), 13))
        yield _pool_case(
            rng.randint(1, 4),
            rng.randint(1, 4),
            hw,
            kernel,
            stride,
            padding,
            rng.choice(DTYPES),
            rng.choice(_POOL_INPUTS),
        )
    for dtype in DTYPES:  # edge cases
        yield _pool_case(2, 3, (8, 8), 2, None, 0, dtype, "zeros")  # every window a 4-way tie
        yield _pool_case(2, 3, (8, 6), 2, None, 0, dtype, "relu")  # SimpleCNN's pooling, ties at 0
        yield _pool_case(2, 3, (7, 9), 2, None, 0, dtype, "integers")  # odd sizes: last row/column dropped
        yield _pool_case(2, 2, (6, 6), 3, 1, 1, dtype, "negative")  # padding must never win
        yield _pool_case(2, 2, (5, 4), (3, 2), (2, 1), (1, 1), dtype, "zeros")  # ties and padding
        yield _pool_case(2, 2, (5, 7), (5, 7), None, 0, dtype, "relu")  # kernel == input: global max
        yield _pool_case(2, 2, (5, 7), 1, None, 0, dtype, "normal")  # 1x1 kernel: identity
        yield _pool_case(1, 3, (6, 6), 2, 1, 1, dtype, "integers", unbatched=True)  # (C, H, W) input


# --------------------------------------------------------------------------- q4 loss


def _loss_case(n, classes, reduction, dtype, scale=1.0, mixed_signs=False) -> Case:
    def check(impl, gen: torch.Generator) -> list[str]:
        logits = _randn(gen, (n, classes), dtype, scale)
        if mixed_signs:  # every row has one logit of +scale and one of -scale
            logits[:, 0], logits[:, -1] = scale, -scale
        target = torch.randint(0, classes, (n,), generator=gen)
        reference = nn.CrossEntropyLoss(reduction=reduction)
        custom = impl.CustomCrossEntropyLoss(reduction=reduction)
        x_ref = logits.clone().requires_grad_(True)
        x_cus = logits.clone().requires_grad_(True)
        loss_ref, loss_cus = reference(x_ref, target), custom(x_cus, target.clone())
        problem = compare("loss", loss_cus, loss_ref)
        if problem:
            return [problem]
        upstream = _randn(gen, loss_ref.shape, dtype) if loss_ref.dim() else torch.ones((), dtype=dtype)
        loss_ref.backward(upstream)
        loss_cus.backward(upstream.clone())
        return list(filter(None, [compare("grad logits", x_cus.grad, x_ref.grad)]))

    return Case(
        f"CrossEntropy(reduction={reduction!r}) logits={n}x{classes} scale={scale:g}"
        f"{' +-' if mixed_signs else ''} {_dt(dtype)}",
        check,
    )


def _bad_reduction_case() -> Case:
    def check(impl, gen: torch.Generator) -> list[str]:
        try:
            impl.CustomCrossEntropyLoss(reduction="average")
        except ValueError as exc:
            missing = [name for name in ("mean", "sum", "none") if name not in str(exc)]
            return [f"the ValueError does not name {missing}"] if missing else []
        return ["reduction='average' did not raise ValueError"]

    return Case("CrossEntropy(reduction='average') raises ValueError naming the allowed values", check)


def loss_cases(rng: random.Random) -> Iterator[Case]:
    for _ in range(RANDOM_CASES):
        yield _loss_case(
            rng.randint(1, 16),
            rng.randint(2, 12),
            rng.choice(("mean", "sum", "none")),
            rng.choice(DTYPES),
            scale=rng.choice((0.1, 1.0, 5.0, 30.0)),
        )
    for dtype in DTYPES:  # edge cases: stability at extreme logits
        for reduction in ("mean", "sum", "none"):
            yield _loss_case(8, 10, reduction, dtype, scale=1e4)
        yield _loss_case(8, 10, "mean", dtype, scale=1e4, mixed_signs=True)
        yield _loss_case(64, 10, "mean", dtype)  # SimpleCNN's batch
        yield _loss_case(1, 2, "none", dtype)  # smallest problem
    yield _bad_reduction_case()


# --------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    title: str
    layer: str  # the class of the submission the question grades
    cases: Callable[[random.Random], Iterator[Case]]


QUESTIONS: dict[str, Question] = {
    "q1": Question("Fully-connected layer (CustomLinear)", "CustomLinear", linear_cases),
    "q2": Question("Convolutional layer (CustomConv2D)", "CustomConv2D", conv_cases),
    "q3": Question("Pooling layer (CustomMaxPool2D)", "CustomMaxPool2D", pool_cases),
    "q4": Question("Cross-entropy loss (CustomCrossEntropyLoss)", "CustomCrossEntropyLoss", loss_cases),
}


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def select_questions(names: list[str]) -> list[str]:
    """``["q3", "all", ...]`` -> the distinct question ids in the seed's order; ValueError naming the allowed ones."""
    selected: list[str] = []
    for name in names:
        name = name.strip().lower()
        chosen = list(QUESTIONS) if name == "all" else [name]
        for q in chosen:
            if q not in QUESTIONS:
                raise PipelineError(f"unknown question {name!r}; allowed: all, {', '.join(QUESTIONS)}")
            if q not in selected:
                selected.append(q)
    if not selected:
        raise PipelineError(f"no question selected; allowed: all, {', '.join(QUESTIONS)}")
    return sorted(selected, key=list(QUESTIONS).index)


def _question_seed(name: str, seed: int) -> int:
    return seed + 1000 * (list(QUESTIONS).index(name) + 1)


def question_cases(name: str, seed: int = SEED) -> list[Case]:
    """Every case of one question, in order (the same list for the same seed)."""
    return list(QUESTIONS[name].cases(random.Random(_question_seed(name, seed))))


def case_generator(name: str, index: int, seed: int = SEED) -> torch.Generator:
    """The generator case ``index`` of question ``name`` draws its tensors from."""
    return torch.Generator().manual_seed(_question_seed(name, seed) * 1000 + index)


def run_case(case: Case, impl: Any, gen: torch.Generator) -> list[str]:
    """The case's mismatches; an exception raised by the layer fails the case, not the grader."""
    try:
        return case.check(impl, gen)
    except Exception as exc:  # noqa: BLE001 - any error of the graded code is a failed case
        return [f"raised {type(exc).__name__}: {exc}"]


def score(passed: int, total: int) -> int:
    """Partial credit: whole points in proportion to the cases passed."""
    return POINTS_PER_QUESTION * passed // total if total else 0
