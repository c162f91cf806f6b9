"""The model registry: one family folder per model name, imported only when it is built.

A variant in ``params.yaml`` names its model (``model.name``) and keyword arguments
(``model.args``); the training engine builds it with :func:`create_model` and never
branches on which assignment it is running.

Each model lives in its own package, ``pipeline/models/<name>/``, whose ``__init__``
defines ``build(**args) -> nn.Module`` (and, optionally, ``LOSSES``: criteria that
belong to that assignment, such as HKU A3's own cross-entropy). The package is imported
by name, on demand, so a stage that trains one variant imports that variant's model
code and nothing else - which is what lets ``dvc.yaml`` declare exactly
``pipeline/models/${item.model.name}`` per variant (one edited model file reruns only
the variants that use it). ``tests/test_depgraph.py`` checks that rule.

``build``'s annotations are the types of its arguments, checked (:func:`check_args`) before
any data is read: an ``int`` argument is a size (a width, a kernel, a stride) and must be at
least 1, a ``Literal[...]`` lists the allowed values, a ``float`` must be finite, and a family's
optional ``ARG_RANGES`` (``{"dropout": (0.0, 1.0)}``) bounds a number.

All models return logits or log-probabilities of shape ``(batch, 10)``. Models that
the class-wise norm analysis inspects also accept ``intermediate_outputs=True`` and
then return ``(output, [feature maps after each convolution block])``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from pipeline.core.errors import PipelineError
from pipeline.core.schemas import SCALAR_NAMES, scalar_matches

_HERE = Path(__file__).resolve().parent


def model_names() -> list[str]:
    """Every model family, from the folders next to this file (nothing is imported)."""
    return sorted(p.name for p in _HERE.iterdir() if (p / "__init__.py").is_file())


def family(name: str) -> ModuleType:
    """The package of model ``name``; an unknown name fails with the allowed ones."""
    if name not in model_names():
        raise PipelineError(f"unknown model {name!r}; allowed: {', '.join(model_names())}")
    return importlib.import_module(f"{__name__}.{name}")


def check_args(name: str, args: Mapping[str, Any], key: str = "model") -> None:
    """Refuse arguments that model ``name``'s ``build`` does not take, and missing ones it needs,
    naming ``key.args.<arg>``.

    Called before any data is loaded, so a typo in params fails in a second, not after
    the dataset has been read.
    """
    signature = inspect.signature(family(name).build)
    named = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    accepted = [p.name for p in named]
    for arg in args:
        if arg not in accepted:
            allowed = ", ".join(accepted) or "none"
            raise PipelineError(f"{key}.args.{arg}: model {name!r} takes no such argument; allowed: {allowed}")
    for p in named:
        if p.default is p.empty and p.name not in args:
            raise PipelineError(f"{key}.args.{p.name}: model {name!r} needs this argument (it has no default)")
    hints = typing.get_type_hints(family(name).build)
    ranges = getattr(family(name), "ARG_RANGES", {})
    for arg, value in args.items():
        _check_value(value, hints.get(arg, Any), ranges.get(arg), f"{key}.args.{arg}")


def _check_value(value: Any, tp: Any, bounds: tuple[float, float] | None, key: str) -> None:
    """One argument against ``build``'s annotation, before torch sees it (torch's own refusal is a
    traceback after the data has loaded, and a width of 0 is not refused at all). An integer argument
    is a size (a width, a kernel, a stride): at least 1. A family's ``ARG_RANGES`` bounds a number."""
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise PipelineError(f"{key}: unknown value {value!r}; allowed: {', '.join(map(str, choices))}")
        return
    if tp in SCALAR_NAMES and not scalar_matches(value, tp):
        raise PipelineError(f"{key}: expected {SCALAR_NAMES[tp]}, got {value!r}")
    if tp is int and value < 1:
        raise PipelineError(f"{key}: a size (width, kernel, stride) must be at least 1, got {value!r}")
    if tp is float and not math.isfinite(value):
        raise PipelineError(f"{key}: must be a finite number, got {value!r}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise PipelineError(f"{key}: must be in [{bounds[0]}, {bounds[1]}], got {value!r}")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build model ``name``; unknown names or arguments fail with the allowed ones."""
    check_args(name, kwargs)
    return family(name).build(**kwargs)


def family_losses(name: str) -> Mapping[str, Callable[..., Callable]]:
    """Loss factories that model ``name``'s assignment brings (``reduction=`` -> criterion)."""
    return getattr(family(name), "LOSSES", {})


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
