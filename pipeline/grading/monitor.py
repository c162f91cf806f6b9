"""The allowed-operations rule at run time, inside the worker: what the submission really calls.

The source inspection (:mod:`pipeline.grading.inspection`) reads what is written; a call
built from strings (``getattr(F, "con" + "v2d")``), a module imported by ``importlib`` or
a method inherited from a torch layer is only seen when it runs. :class:`ForbiddenCalls`
is a ``TorchFunctionMode``: while a case builds and runs the submission's layer, every
torch function, ``torch.nn.functional`` function, tensor method and ``torch.ops`` call
passes through it, and the forbidden ones are recorded with the submission's line that
led to them. :func:`structure_uses` checks the built layer itself: a torch layer among its
base classes, or held as an attribute.

What is forbidden here is :data:`pipeline.grading.inspection.FORBIDDEN_OPS` (the operations
behind torch's layers and losses), any ``torch.nn.functional`` function but ``unfold``,
and the ATen backdoors ``torch.ops`` and ``torch._C._nn``. Calls that torch makes inside
an allowed call (``unfold``'s own kernels) are not seen: a mode is switched off while it
handles a call.

This runs in the submission's process: a submission that tampers with torch's dispatch can
hide from it, but doing so needs ``torch._C``, ``torch.overrides`` or similar, which the
source inspection flags.
"""

from __future__ import annotations

import sys

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from pipeline.grading.inspection import ALLOWED_FUNCTIONAL, ALLOWED_NN, FORBIDDEN_OPS

#: torch.nn containers a layer may hold (they compute nothing themselves).
ALLOWED_CONTAINERS = {"ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Sequential"}


def _public_names() -> dict[int, str]:
    """``id(function) -> "torch.nn.functional.max_pool2d"``: names for functions whose own
    ``__name__`` says nothing (``max_pool2d`` is a ``boolean_dispatch`` wrapper called ``fn``)."""
    names = {}
    for name in dir(F):
        names.setdefault(id(getattr(F, name)), f"torch.nn.functional.{name}")
    for name in FORBIDDEN_OPS:
        if hasattr(torch, name):
            names.setdefault(id(getattr(torch, name)), f"torch.{name}")
    return names


_NAMES = _public_names()


def forbidden_name(func) -> str | None:
    """The public name of ``func`` when calling it breaks the rule, else None."""
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__name__", "") or ""
    public = _NAMES.get(id(func))
    if isinstance(func, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)) or module.startswith("torch._ops"):
        return f"torch.ops.{getattr(func, '_qualified_op_name', name)}"
    if module.startswith("torch._C._nn"):
        return f"torch._C._nn.{name}"
    if module == "torch.nn.functional" or (public or "").startswith("torch.nn.functional."):
        short = (public or name).rsplit(".", 1)[-1]
        return None if short in ALLOWED_FUNCTIONAL else f"torch.nn.functional.{short}"
    if name.lstrip("_") in FORBIDDEN_OPS:
        return public or (f"torch.{name}" if module.startswith("torch") else f"Tensor.{name}")
    return None


class ForbiddenCalls(TorchFunctionMode):
    """Records forbidden torch calls (with the submission's line) while it is active."""

    def __init__(self, submission: str) -> None:
        super().__init__()
        self.submission = submission
        self.uses: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = forbidden_name(func)
        if name is not None:
            where = self._where()
            inherited = "" if where else ", from torch's own code: a method the class inherits"
            message = f"{where}calls {name} (seen at run time{inherited})"
            if message not in self.uses:
                self.uses.append(message)
        return func(*args, **(kwargs or {}))

    def _where(self) -> str:
        """``line N: `` of the innermost frame in the submission, or '' (torch's own code, e.g. an inherited forward)."""
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename == self.submission:
                return f"line {frame.f_lineno}: "
            frame = frame.f_back
        return ""


def structure_uses(layer) -> list[str]:
    """Torch layers among the built layer's base classes or held as its attributes."""
    uses = []
    for klass in type(layer).__mro__:
        if klass.__module__.startswith("torch.nn.modules") and klass.__name__ not in ALLOWED_NN:
            uses.append(f"subclasses torch.nn.{klass.__name__} (seen at run time)")
            break  # the one it names; its own bases (torch.nn._Loss, ...) say nothing more
    if isinstance(layer, nn.Module):
        for name, module in layer.named_modules():
            kind = type(module)
            if module is not layer and kind.__module__.startswith("torch.nn.modules"):
                if kind.__name__ not in ALLOWED_CONTAINERS:
                    uses.append(f"holds a torch.nn.{kind.__name__} as self.{name} (seen at run time)")
    return uses
