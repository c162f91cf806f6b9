"""HKU Assignment 3, Questions 1-4: the grading cases (what ``autograder.py -q qN`` checks).

Each question checks one of the handout's classes against its torch reference:

==  ==========================  =====================
q1  ``CustomLinear``            ``nn.Linear``
q2  ``CustomConv2D``            ``nn.Conv2d``
q3  ``CustomMaxPool2D``         ``nn.MaxPool2d``
q4  ``CustomCrossEntropyLoss``  ``nn.CrossEntropyLoss``
==  ==========================  =====================

**The handout's interface, not torch's.** The handout defines no constructor signatures
(its ``layers.py`` skeleton is not public); it describes each layer in words and
formulas. A *base* case calls a class only the way that text does:

* ``CustomLinear(in_features, out_features)`` on a 2-D input ``(N, H)``, with a bias
  (``y = x A^T + b``: ``A`` is ``(out, in)``);
* ``CustomConv2D(in_channels, out_channels, kernel_size, stride=s, padding=p)`` and
  ``CustomMaxPool2D(kernel_size, stride=s, padding=p)`` with int sizes (the handout's
  5x5 and 2x2 kernels) on 4-D ``(N, C, H, W)`` inputs; ``stride`` and ``padding`` are the
  names of its output-size formula, passed by keyword when the constructor has them and
  by position (torch's order) otherwise;
* ``CustomCrossEntropyLoss()`` (no argument) on logits ``(N, C)`` and class indices
  ``(N,)``: the mean over the batch, the handout's ``CE = -1/N sum ...``.

Parameters are found by shape, not by name: the weight is the one parameter shaped like
torch's (``(out, in)``, ``(out, in, k, k)``), the bias the one shaped ``(out,)``.
*Extra* cases test what torch offers beyond that text (``bias=False``, tuple sizes, the
default pooling stride, unbatched or extra leading dimensions, ``reduction=``): each runs
only when the constructor accepts its keyword, and reports pass/fail without touching the
score.

A base case passes when the forward output and the gradients of the input and of every
parameter (for a random upstream gradient) agree with the reference within the tolerance
of its dtype (:data:`TOLERANCES`), and when the layer raises nothing. The submission's
results are computed in the worker process (:func:`run_layer`) and compared **here, in
the grading process**, against the reference computed here (:func:`compare_results`):
nothing the submission does in its own process changes the comparison.

Every case draws its tensors from its own generator, seeded from the base random seed,
the question and the case's index (:func:`case_generator`): a case gives the same tensors
whether it runs alone, after others, or in a fresh process after a crashed one.

Scoring (partial credit): ``score = floor(POINTS_PER_QUESTION * passed / total)`` over the
base cases; a question earns its 20 points only when every base case passes.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pipeline.core.errors import PipelineError

POINTS_PER_QUESTION = 20
SEED = 20240303  # base random seed; each question derives its own so it can run alone
RANDOM_CASES = 40  # randomized base configurations per question (edge cases come on top)


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


def compare_results(actual: dict, expected: dict) -> list[str]:
    """The mismatches between the worker's results for a case and the reference's (empty: passed).

    ``expected`` is :func:`run_layer` on the reference (or ``{"raised": ...}`` for a case that
    must raise); ``actual`` the same from the submission, decoded in the grading process.
    """
    if "expect_error" in expected:
        raised = actual.get("raised") or ""
        if not raised.startswith("ValueError"):
            return [f"{expected['expect_error']} did not raise ValueError" + (f" ({raised})" if raised else "")]
        missing = [name for name in ("mean", "sum", "none") if name not in raised]
        return [f"the ValueError does not name {missing}"] if missing else []
    if actual.get("raised"):
        return [f"raised {actual['raised']}"]
    tensors = actual.get("tensors") or {}
    problem = compare("output", tensors.get("output"), expected["tensors"]["output"])
    if problem:
        return [problem]
    problems = [compare(name, tensors.get(name), value) for name, value in expected["tensors"].items()]
    return [p for p in problems if p]


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One check of one class: build it, set its parameters, run forward and backward.

    ``args``/``kwargs``: the constructor call (``kwargs`` as ``((name, value), ...)``);
    ``positional``: the names of ``kwargs`` in torch's positional order, used when the
    submission's constructor lacks those keywords (base cases only); ``params``: the shapes
    torch's layer has, ``((name, shape), ...)``; ``extra``: empty for a base case, else what
    it tests beyond the handout's text (no points); ``input_kind``: how the input is drawn.
    """

    description: str
    layer: str
    reference: str  # the torch.nn class of the same name and arguments
    args: tuple = ()
    kwargs: tuple = ()
    dtype: torch.dtype = torch.float32
    input_shape: tuple = ()
    params: tuple = ()
    input_kind: str = "normal"
    scale: float = 1.0
    extra: str = ""
    expect_error: bool = False

    def reference_module(self) -> nn.Module:
        return getattr(nn, self.reference)(*self.args, **dict(self.kwargs))


def _randn(gen: torch.Generator, shape, dtype, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64).mul_(scale).to(dtype)


def _draw_input(case: Case, gen: torch.Generator) -> torch.Tensor:
    shape, dtype, kind = case.input_shape, case.dtype, case.input_kind
    if kind == "relu":  # many exact ties at 0, as after ReLU in SimpleCNN
        return _randn(gen, shape, dtype).clamp_(min=0)
    if kind == "integers":  # ties between equal positive values
        return torch.randint(0, 3, shape, generator=gen).to(dtype)
    if kind == "zeros":
        return torch.zeros(shape, dtype=dtype)
    if kind == "negative":  # every value < 0: zero padding would win, -inf must not
        return -_randn(gen, shape, dtype).abs_() - 0.5
    x = _randn(gen, shape, dtype, case.scale)
    if kind == "mixed_signs":  # every row has one logit of +scale and one of -scale
        x[:, 0], x[:, -1] = case.scale, -case.scale
    return x


def case_tensors(case: Case, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The parameters (``param <name>``), the input ``x`` and, for the loss, ``target``: drawn in that order."""
    tensors = {}
    for name, shape in case.params:
        bound = max(1, math.prod(shape[1:])) ** -0.5  # torch's scale: uniform(+-1/sqrt(fan_in))
        uniform = torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1
        tensors[f"param {name}"] = uniform.mul_(bound).to(case.dtype)
    tensors["x"] = _draw_input(case, gen)
    if case.layer == "CustomCrossEntropyLoss":
        n, classes = case.input_shape
        tensors["target"] = torch.randint(0, classes, (n,), generator=gen)
    return tensors


def missing_keywords(cls: Any, names) -> list[str]:
    """The keywords of ``names`` that ``cls(...)`` does not take (none when it takes ``**kwargs``).

    A class that inherits ``nn.Module.__init__`` (``*args, **kwargs``, which refuses every
    argument) takes none.
    """
    init = next((k.__dict__["__init__"] for k in getattr(cls, "__mro__", ()) if "__init__" in k.__dict__), None)
    if init is None or init in (nn.Module.__init__, object.__init__):
        return list(names)
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return list(names)
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    keywords = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return [name for name in names if name not in keywords]


def construct(cls: Any, case: Case):
    """``cls`` called as the case says: keywords when the constructor has them, else (base
    cases) the same values by position in torch's order."""
    kwargs = dict(case.kwargs)
    if not missing_keywords(cls, kwargs):
        return cls(*case.args, **kwargs)
    return cls(*case.args, *kwargs.values())


def _find_parameter(module: Any, name: str, shape: tuple) -> torch.Tensor:
    """The parameter named ``name`` with ``shape``, else the only parameter of that shape."""
    params = dict(module.named_parameters())
    if name in params and tuple(params[name].shape) == tuple(shape):
        return params[name]
    same = [p for p in params.values() if tuple(p.shape) == tuple(shape)]
    if len(same) != 1:
        found = [tuple(p.shape) for p in params.values()]
        raise ValueError(f"expected one parameter of shape {tuple(shape)} ({name}); the layer's parameters: {found}")
    return same[0]


def run_layer(module: Any, case: Case, gen: torch.Generator) -> dict[str, torch.Tensor | None]:
    """Forward + backward of ``module`` (the submission's or torch's) on the case's tensors.

    Returns ``output``, ``grad input`` and ``grad <parameter>``: the same code runs on both
    sides, so they differ only by what the module computes.
    """
    tensors = case_tensors(case, gen)
    found = {}
    for name, shape in case.params:
        found[name] = _find_parameter(module, name, shape)
        found[name].data = tensors[f"param {name}"].clone()
        found[name].grad = None
    x = tensors["x"].clone().requires_grad_(True)
    out = module(x, tensors["target"].clone()) if "target" in tensors else module(x)
    results = {"output": out}
    if isinstance(out, torch.Tensor) and out.requires_grad:
        upstream = _randn(gen, out.shape, out.dtype) if out.dim() else torch.ones((), dtype=out.dtype)
        out.backward(upstream)
    results["grad input"] = x.grad
    results.update({f"grad {name}": p.grad for name, p in found.items()})
    return results


def reference_results(case: Case, gen: torch.Generator) -> dict:
    """What :func:`compare_results` compares the submission's results with (in the grading process)."""
    if case.expect_error:
        arguments = ", ".join(f"{k}={v!r}" for k, v in case.kwargs)
        return {"expect_error": f"{case.layer}({arguments})"}
    results = run_layer(case.reference_module(), case, gen)
    return {"tensors": {k: v.detach() for k, v in results.items()}}


def _kw(**kwargs) -> tuple:
    return tuple(kwargs.items())


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --------------------------------------------------------------------------- q1 linear


def _linear(n, in_f, out_f, dtype, scale=1.0, bias=True, lead=(), extra="") -> Case:
    kwargs = _kw() if bias else _kw(bias=False)
    params = (("weight", (out_f, in_f)),) + ((("bias", (out_f,)),) if bias else ())
    desc = f"Linear({in_f}, {out_f}{'' if bias else ', bias=False'}) x={(*lead, n, in_f)} {_dt(dtype)}"
    shape = (*lead, n, in_f)
    return Case(desc, "CustomLinear", "Linear", (in_f, out_f), kwargs, dtype, shape, params, scale=scale, extra=extra)


def linear_cases(rng: random.Random) -> Iterator[Case]:
    for _ in range(RANDOM_CASES):
        yield _linear(rng.randint(1, 8), rng.randint(1, 24), rng.randint(1, 24), rng.choice(DTYPES))
    for dtype in DTYPES:  # edge cases
        yield _linear(1, 1, 1, dtype)  # a single weight
        yield _linear(64, 1024, 512, dtype)  # SimpleCNN's fc1
        yield _linear(64, 512, 10, dtype)  # SimpleCNN's fc2
        yield _linear(3, 5, 4, dtype, scale=1e3)  # large inputs
    for dtype in DTYPES:  # beyond the handout: no bias; leading dimensions (torch's (*, H_in))
        yield _linear(4, 6, 3, dtype, bias=False, extra="bias=False")
        yield _linear(3, 5, 4, dtype, lead=(2,), extra="input with extra leading dimensions")


# --------------------------------------------------------------------------- q2 conv


def _conv(n, c_in, c_out, hw, kernel, stride, padding, dtype, bias=True, unbatched=False, extra="") -> Case:
    kwargs = _kw(stride=stride, padding=padding) + (() if bias else _kw(bias=False))
    k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    params = (("weight", (c_out, c_in, *k)),) + ((("bias", (c_out,)),) if bias else ())
    shape = (c_in, *hw) if unbatched else (n, c_in, *hw)
    desc = (
        f"Conv2d({c_in}, {c_out}, k={kernel}, s={stride}, p={padding}{'' if bias else ', bias=False'}) "
        f"x={'x'.join(map(str, shape))} {_dt(dtype)}"
    )
    return Case(desc, "CustomConv2D", "Conv2d", (c_in, c_out, kernel), kwargs, dtype, shape, params, extra=extra)


def _random_conv(rng: random.Random, pairs: bool) -> Case:
    def size(low, high):
        return (rng.randint(low, high), rng.randint(low, high)) if pairs else rng.randint(low, high)

    kernel, stride, padding = size(1, 5), size(1, 3), size(0, 2)
    (kh, kw), (ph, pw) = (_pair(kernel), _pair(padding))
    hw = (rng.randint(max(1, kh - 2 * ph), 12), rng.randint(max(1, kw - 2 * pw), 12))
    # up to 8 input channels: both of the project's CustomConv2D layouts occur
    n, c_in, c_out, dtype = rng.randint(1, 4), rng.randint(1, 8), rng.randint(1, 5), rng.choice(DTYPES)
    return _conv(n, c_in, c_out, hw, kernel, stride, padding, dtype, extra="tuple sizes" if pairs else "")


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_cases(rng: random.Random) -> Iterator[Case]:
    for _ in range(RANDOM_CASES):
        yield _random_conv(rng, pairs=False)
    for dtype in DTYPES:  # edge cases
        yield _conv(2, 3, 4, (5, 7), 1, 1, 0, dtype)  # 1x1 kernel
        yield _conv(2, 3, 2, (5, 5), 5, 1, 0, dtype)  # kernel == input: 1x1 output
        yield _conv(2, 2, 3, (4, 4), 6, 1, 1, dtype)  # kernel == padded input
        yield _conv(2, 2, 3, (9, 8), 2, 4, 0, dtype)  # stride > kernel (skipped pixels)
        yield _conv(1, 2, 3, (6, 9), 3, 2, 1, dtype)  # non-square input, stride and padding
        yield _conv(2, 1, 32, (28, 28), 5, 1, 0, dtype)  # SimpleCNN conv1
        yield _conv(2, 32, 64, (12, 12), 5, 1, 0, dtype)  # SimpleCNN conv2
    for _ in range(4):  # beyond the handout: torch's (h, w) pairs
        yield _random_conv(rng, pairs=True)
    for dtype in DTYPES:
        yield _conv(2, 3, 2, (5, 7), (5, 7), 1, 0, dtype, extra="tuple sizes")
        yield _conv(1, 2, 3, (6, 5), 3, 1, 1, dtype, bias=False, extra="bias=False")
        yield _conv(1, 3, 2, (6, 6), 3, 1, 1, dtype, unbatched=True, extra="unbatched (C, H, W) input")


# --------------------------------------------------------------------------- q3 max-pool


_POOL_INPUTS = ("normal", "relu", "integers", "zeros", "negative")


def _pool(n, c, hw, kernel, stride, padding, dtype, kind, unbatched=False, extra="") -> Case:
    kwargs = (() if stride is None else _kw(stride=stride)) + (_kw(padding=padding) if padding else ())
    shape = (c, *hw) if unbatched else (n, c, *hw)
    desc = f"MaxPool2d(k={kernel}, s={stride}, p={padding}) x={'x'.join(map(str, shape))} {kind} {_dt(dtype)}"
    return Case(desc, "CustomMaxPool2D", "MaxPool2d", (kernel,), kwargs, dtype, shape, (), kind, extra=extra)


def _random_pool(rng: random.Random, pairs: bool) -> Case:
    def size(low, high):
        return (rng.randint(low, high), rng.randint(low, high)) if pairs else rng.randint(low, high)

    kernel = size(1, 4)
    kh, kw = _pair(kernel)
    stride = size(1, 3)
    padding = 0 if rng.random() < 0.5 else (rng.randint(0, min(kh, kw) // 2))
    hw = (rng.randint(max(1, kh - 2 * padding), 13), rng.randint(max(1, kw - 2 * padding), 13))
    n, c, dtype, kind = rng.randint(1, 4), rng.randint(1, 4), rng.choice(DTYPES), rng.choice(_POOL_INPUTS)
    return _pool(n, c, hw, kernel, stride, padding, dtype, kind, extra="tuple sizes" if pairs else "")


def pool_cases(rng: random.Random) -> Iterator[Case]:
    for _ in range(RANDOM_CASES):
        yield _random_pool(rng, pairs=False)
    for dtype in DTYPES:  # edge cases
        yield _pool(2, 3, (8, 8), 2, 2, 0, dtype, "zeros")  # every window a 4-way tie
        yield _pool(2, 3, (8, 6), 2, 2, 0, dtype, "relu")  # SimpleCNN's pooling, ties at 0
        yield _pool(2, 3, (7, 9), 2, 2, 0, dtype, "integers")  # odd sizes: last row/column dropped
        yield _pool(2, 2, (6, 6), 3, 1, 1, dtype, "negative")  # padding must never win
        yield _pool(2, 2, (5, 4), 3, 2, 1, dtype, "zeros")  # ties and padding
        yield _pool(2, 2, (5, 5), 5, 5, 0, dtype, "relu")  # kernel == input: global max
        yield _pool(2, 2, (5, 7), 1, 1, 0, dtype, "normal")  # 1x1 kernel: identity
    for _ in range(4):  # beyond the handout: pairs, torch's default stride, unbatched input
        yield _random_pool(rng, pairs=True)
    for dtype in DTYPES:
        yield _pool(2, 3, (8, 6), 2, None, 0, dtype, "relu", extra="default stride (= kernel_size)")
        yield _pool(1, 3, (6, 6), 2, 1, 1, dtype, "integers", unbatched=True, extra="unbatched (C, H, W) input")


# --------------------------------------------------------------------------- q4 loss


def _loss(n, classes, dtype, scale=1.0, reduction=None, kind="normal") -> Case:
    kwargs = () if reduction is None else _kw(reduction=reduction)
    extra = "" if reduction is None else f"reduction={reduction!r}"
    desc = f"CrossEntropy({extra}) logits={n}x{classes} scale={scale:g}{' +-' if kind != 'normal' else ''} {_dt(dtype)}"
    return Case(
        desc, "CustomCrossEntropyLoss", "CrossEntropyLoss", (), kwargs, dtype, (n, classes), (), kind, scale, extra
    )


def loss_cases(rng: random.Random) -> Iterator[Case]:
    for _ in range(RANDOM_CASES):
        n, classes = rng.randint(1, 16), rng.randint(2, 12)
        yield _loss(n, classes, rng.choice(DTYPES), scale=rng.choice((0.1, 1.0, 5.0, 30.0)))
    for dtype in DTYPES:  # edge cases: stability at extreme logits
        yield _loss(8, 10, dtype, scale=1e4)
        yield _loss(8, 10, dtype, scale=1e4, kind="mixed_signs")
        yield _loss(64, 10, dtype)  # SimpleCNN's batch
        yield _loss(1, 2, dtype)  # smallest problem
    for dtype in DTYPES:  # beyond the handout: torch's reduction argument
        for reduction in ("mean", "sum", "none"):
            yield _loss(8, 10, dtype, scale=1e4 if reduction == "none" else 3.0, reduction=reduction)
    yield Case(
        "CrossEntropy(reduction='average') raises ValueError naming the allowed values",
        "CustomCrossEntropyLoss",
        "CrossEntropyLoss",
        kwargs=_kw(reduction="average"),
        extra="reduction='average' refused",
        expect_error=True,
    )


# --------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    title: str
    layer: str  # the class of the submission the question grades
    cases: Any  # Callable[[random.Random], Iterator[Case]]


QUESTIONS: dict[str, Question] = {
    "q1": Question("Fully-connected layer (CustomLinear)", "CustomLinear", linear_cases),
    "q2": Question("Convolutional layer (CustomConv2D)", "CustomConv2D", conv_cases),
    "q3": Question("Pooling layer (CustomMaxPool2D)", "CustomMaxPool2D", pool_cases),
    "q4": Question("Cross-entropy loss (CustomCrossEntropyLoss)", "CustomCrossEntropyLoss", loss_cases),
}


def select_questions(names: list[str]) -> list[str]:
    """``["q3", "all", ...]`` -> the distinct question ids in the handout's order; an error naming the allowed ones."""
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
    """Every case of one question, base cases first, then extras (the same list for the same seed)."""
    cases = list(QUESTIONS[name].cases(random.Random(_question_seed(name, seed))))
    return [c for c in cases if not c.extra] + [c for c in cases if c.extra]


def case_generator(name: str, index: int, seed: int = SEED) -> torch.Generator:
    """The generator case ``index`` of question ``name`` draws its tensors from."""
    return torch.Generator().manual_seed(_question_seed(name, seed) * 1000 + index)


def score(passed: int, total: int) -> int:
    """Partial credit: whole points in proportion to the base cases passed."""
    return POINTS_PER_QUESTION * passed // total if total else 0
