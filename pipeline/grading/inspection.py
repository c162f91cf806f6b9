"""The seed's rule on allowed operations, checked on a layers file's source (no import, no execution).

HKU A3 allows "only basic operations ... creation, indexing, slicing, and arithmetic" plus
``nn.functional.unfold`` and ``torch.einsum``; "using any other dependencies beyond this
scope will be discounted". :func:`forbidden_uses` lists every use of a higher-level
operation: ``torch.nn.functional`` other than ``unfold``, torch's ready-made layers and
losses (``nn.Linear``, ``nn.Conv2d``, ...), the functions behind them wherever they are
reached from (``torch.logsumexp``, ``x.log_softmax()``, ``torch.addmm``, ...) and
backdoors into ATen (``torch.ops``, ``torch._C``). Inside the layer classes ``torch.nn``
may be used only as ``Module``, ``Parameter`` and ``init`` (``init`` in
``reset_parameters`` only, to initialise parameters as torch does).

The grader reports the uses with their line numbers beside the score; it does not
deduct points for them (the seed leaves the discount to the course).
"""

from __future__ import annotations

import ast

ALLOWED_FUNCTIONAL = {"unfold"}
ALLOWED_NN_IN_LAYERS = {"Module", "Parameter", "init"}  # torch.nn attributes the layer classes may use
# Names that are high-level neural-network operations wherever they come from
# (torch.X, tensor.X(), torch.nn.functional.X); backdoors into ATen are forbidden too.
FORBIDDEN_ATTRIBUTES = {
    "logsumexp",
    "log_softmax",
    "softmax",
    "cross_entropy",
    "nll_loss",
    "conv2d",
    "conv1d",
    "conv3d",
    "convolution",
    "_convolution",
    "conv_transpose2d",
    "max_pool2d",
    "max_pool2d_with_indices",
    "max_pool1d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "linear",
    "bilinear",
    "addmm",
    "baddbmm",
    "addbmm",
    "fold",
    "_C",
    "ops",
    "_refs",
    "_decomp",
    "_prims",
}
FORBIDDEN_NN_CLASSES = {"Linear", "Conv2d", "MaxPool2d", "CrossEntropyLoss", "NLLLoss", "LogSoftmax", "Softmax"}


def _dotted(node: ast.AST) -> str | None:
    """``torch.nn.functional.unfold`` for an Attribute/Name chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def forbidden_uses(source: str) -> list[str]:
    """Every use of a disallowed torch API in ``source`` (a layers module), as ``line N: ...`` messages.

    A file that does not parse is one message naming the syntax error.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: syntax error: {exc.msg}"]
    aliases: dict[str, str] = {}  # local name -> canonical dotted module path
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:  # import torch.nn.functional as F  ->  F = torch.nn.functional
                    aliases[a.asname] = a.name
                else:  # import torch.nn  ->  binds the top-level name torch
                    top = a.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = full
                if node.module == "torch.nn.functional" and a.name not in ALLOWED_FUNCTIONAL:
                    problems.append(f"line {node.lineno}: imports torch.nn.functional.{a.name}")
                if node.module in ("torch", "torch.nn") and a.name in FORBIDDEN_ATTRIBUTES | FORBIDDEN_NN_CLASSES:
                    problems.append(f"line {node.lineno}: imports {full}")

    def canonical(node: ast.AST) -> str | None:
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head in aliases:
            return aliases[head] + ("." + rest if rest else "")
        return dotted

    # Attribute chains anywhere in the module.
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_ATTRIBUTES:
                problems.append(f"line {node.lineno}: uses .{node.attr}")
            name = canonical(node)
            if name and name.startswith("torch.nn.functional."):
                func = name.split(".")[3]
                if func not in ALLOWED_FUNCTIONAL:
                    problems.append(f"line {node.lineno}: uses {name}")
    # Inside the layer classes: torch.nn only as Module / Parameter / init (init only in reset_parameters).
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for func in (n for n in ast.walk(cls) if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(func):
                if not isinstance(node, (ast.Attribute, ast.Name)):
                    continue
                name = canonical(node)
                if not name or not name.startswith("torch.nn."):
                    continue
                member = name.split(".")[2]
                if member == "functional":
                    continue  # checked above (unfold only)
                if member in FORBIDDEN_NN_CLASSES or member not in ALLOWED_NN_IN_LAYERS:
                    problems.append(f"line {node.lineno}: {cls.name}.{func.name} uses {name}")
                elif member == "init" and func.name != "reset_parameters":
                    problems.append(f"line {node.lineno}: torch.nn.init used outside reset_parameters ({func.name})")
    return sorted(set(problems))
