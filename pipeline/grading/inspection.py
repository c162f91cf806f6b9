"""The handout's rule on allowed operations, checked on a layers file's source (no import, no execution).

HKU A3: "only basic operations are allowed, including creation, indexing, slicing, and
arithmetic operations, which are very similar to NumPy ... we also allow a few high-level
functions: ``nn.functional.unfold`` and ``torch.einsum`` ... Using any other dependencies
beyond this scope will be discounted." How this project reads that
(``references/deviations.yaml``, "The autograder's allowed operations"):

* **allowed**: tensor creation (``torch.empty``, ``zeros``, ``arange``, ``new_full``, ...),
  indexing and slicing, views and shapes (``view``, ``reshape``, ``permute``, ``expand``,
  ``stack``, ``cat``, ``Tensor.unfold``), elementwise arithmetic and math (``exp``,
  ``log``, ``clamp``, ``where``, ...), reductions (``sum``, ``mean``, ``max``, ``argmax``),
  the matrix product (``@``, ``matmul``, ``mm``, ``bmm``), ``torch.einsum`` and
  ``torch.nn.functional.unfold``; ``torch.nn`` only as ``Module``, ``Parameter``, the
  containers and ``init`` (in ``__init__`` / ``reset_parameters``: parameters are
  initialised, not computed with); the standard modules of :data:`ALLOWED_MODULES`;
* **forbidden**: every other ``torch.nn.functional`` function; torch's layers and losses
  (``nn.Linear``, ``nn.Conv2d``, ...), whether called, subclassed or held as attributes;
  the operations behind them wherever they are reached from (:data:`FORBIDDEN_OPS`:
  ``torch.conv2d``, ``x.log_softmax()``, ``torch.logsumexp``, ``torch.addmm``, ...); the
  backdoors into torch's internals (``torch.ops``, ``torch._C``, ``torch._VF``,
  ``torch.overrides``, ...); any other module (``numpy``, ``os``, ``importlib``, this
  project's ``pipeline``, ...); code built at run time (``eval``, ``exec``,
  ``__import__``, ``getattr`` on torch with a computed name).

Each use is attributed to the questions whose class reaches it (:func:`inspect_source`):
the class's own body and bases, and the module-level functions, classes and names it
refers to, transitively. Code that runs at import (a module-level statement other than a
definition, an import or a name assignment) reaches every question. A use no graded class
reaches is listed but costs nothing; the student's own test code under
``if __name__ == "__main__":`` is not inspected (it never runs on import). What the grader deducts is in
:mod:`pipeline.grading.sandbox`. Calls built from strings are caught at run time
(:mod:`pipeline.grading.monitor`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

ALLOWED_FUNCTIONAL = {"unfold"}
#: torch.nn members a layers file may use (``init`` only to initialise parameters).
ALLOWED_NN = {
    "Module",
    "Parameter",
    "parameter",
    "init",
    "functional",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
}
INIT_METHODS = {"__init__", "reset_parameters"}
#: Modules a layers file may import: torch's allowed parts and standard modules that compute nothing with tensors.
ALLOWED_MODULES = {
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.nn.init",
    "torch.autograd",
    "__future__",
    "math",
    "typing",
    "numbers",
    "collections",
    "collections.abc",
    "dataclasses",
    "functools",
    "itertools",
    "warnings",
    "abc",
}
#: The operations behind torch's layers and losses, forbidden wherever they are reached from
#: (``torch.X``, ``tensor.X()``, ``torch.nn.functional.X``, ``torch.special.X``).
FORBIDDEN_OPS = {
    "logsumexp",
    "special_logsumexp",
    "log_softmax",
    "softmax",
    "cross_entropy",
    "cross_entropy_loss",
    "nll_loss",
    "nll_loss_nd",
    "nll_loss2d",
    "conv1d",
    "conv2d",
    "conv3d",
    "convolution",
    "conv_transpose1d",
    "conv_transpose2d",
    "mkldnn_convolution",
    "slow_conv2d",
    "thnn_conv2d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool2d_with_indices",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "linear",
    "bilinear",
    "addmm",
    "baddbmm",
    "addbmm",
    "fold",
    "im2col",
}
#: torch namespaces that reach around the rule (plus every private ``torch._X``).
BACKDOORS = {"ops", "overrides", "library", "utils", "fx", "jit", "compile", "func", "export"}
DYNAMIC_BUILTINS = {"__import__", "eval", "exec", "compile", "globals", "open", "breakpoint"}
AT_IMPORT = "<import>"  # the owner of module-level code that runs when the file is imported


@dataclass(frozen=True)
class Use:
    line: int
    use: str
    questions: tuple[str, ...]  # the questions it costs (empty: no graded class reaches it)

    def as_dict(self) -> dict:
        return {"line": self.line, "use": self.use, "questions": list(self.questions), "seen": "source"}


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


def check_path(path: str, function: str | None) -> str | None:
    """Why the dotted ``path`` (aliases resolved) breaks the rule inside ``function``, or None."""
    parts = path.split(".")
    ops = [p for p in parts[1:] if p in FORBIDDEN_OPS]
    if parts[0] != "torch" or len(parts) < 2:
        return f"uses {path}" if ops else None
    if parts[1].startswith("_") or parts[1] in BACKDOORS:
        return f"reaches torch.{parts[1]} (torch's internals)"
    if parts[1] == "nn" and len(parts) > 2:
        if parts[2] == "functional":
            return None if len(parts) < 4 or parts[3] in ALLOWED_FUNCTIONAL else f"uses {'.'.join(parts[:4])}"
        if parts[2] not in ALLOWED_NN:
            return f"uses torch.nn.{parts[2]}"
        if parts[2] == "init" and len(parts) > 3 and function not in INIT_METHODS:
            return f"uses {path} outside __init__/reset_parameters"
    return f"uses {path}" if ops else None


class _Scanner(ast.NodeVisitor):
    """Collects (line, message) pairs and the names referred to, for one top-level statement."""

    def __init__(self, aliases: dict[str, str], banned: dict[str, str]) -> None:
        self.aliases, self.banned = aliases, banned
        self.found: list[tuple[int, str]] = []
        self.refs: set[str] = set()
        self.function: str | None = None
        self.chain_inner: set[int] = set()  # Attribute/Name nodes inside a longer chain
        self.bases: set[int] = set()  # nodes inside a class's bases

    def canonical(self, node: ast.AST) -> str | None:
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        return self.aliases.get(head, head) + ("." + rest if rest else "")

    def visit_FunctionDef(self, node) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node) -> None:
        self.bases.update(id(n) for base in node.bases for n in ast.walk(base))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.chain_inner.add(id(node.value))
        if id(node) not in self.chain_inner:  # the whole chain, once
            path = self.canonical(node)
            if path is None:  # (a + b).softmax(1): no name to resolve
                path = f"(...).{node.attr}"
            self._report(node, check_path(path, self.function))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.refs.add(node.id)
        if node.id in self.banned:
            self.found.append((node.lineno, self.banned[node.id]))
        elif id(node) not in self.chain_inner and node.id in self.aliases:
            self._report(node, check_path(self.canonical(node), self.function))

    def _report(self, node: ast.AST, reason: str | None) -> None:
        if reason:
            if id(node) in self.bases and reason.startswith("uses "):
                reason = "subclasses " + reason[len("uses ") :]
            self.found.append((node.lineno, reason))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in DYNAMIC_BUILTINS:
            self.found.append((node.lineno, f"calls {func.id}() (code built at run time)"))
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            self._check_getattr(node)
        self.generic_visit(node)

    def _check_getattr(self, node: ast.Call) -> None:
        target, name = self.canonical(node.args[0]), node.args[1]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            reason = check_path(f"{target or '(...)'}.{name.value}", self.function)
            if reason:
                self.found.append((node.lineno, f"{reason} (through getattr)"))
        elif target and target.split(".")[0] == "torch":
            self.found.append((node.lineno, f"looks up an attribute of {target} by a computed name"))


def _imports(tree: ast.Module) -> tuple[dict[str, str], dict[str, str], list[tuple[ast.stmt, int, str]]]:
    """Aliases (local name -> dotted path), banned names (bound by a forbidden import -> message)
    and the forbidden imports as (statement, line, message)."""
    aliases: dict[str, str] = {}
    banned: dict[str, str] = {}
    bad: list[tuple[ast.AST, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                local = a.asname or a.name.split(".")[0]
                aliases[local] = a.name if a.asname else local
                if a.name not in ALLOWED_MODULES:
                    message = f"imports {a.name} (not torch or an allowed standard module)"
                    bad.append((node, node.lineno, message))
                    banned[local] = f"uses {a.name} (imported on line {node.lineno})"
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for a in node.names:
                local, full = a.asname or a.name, f"{module}.{a.name}"
                aliases[local] = full
                if module not in ALLOWED_MODULES:
                    bad.append((node, node.lineno, f"imports {full} (not torch or an allowed standard module)"))
                    banned[local] = f"uses {full} (imported on line {node.lineno})"
                elif check_path(full, "__init__"):
                    bad.append((node, node.lineno, f"imports {full}"))
    for node in tree.body:  # module-level aliases: `Lin = nn.Linear`, `conv = getattr(F, "conv2d")`
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            dotted = _dotted(node.value)
            if dotted and dotted.split(".")[0] in aliases:
                head, _, rest = dotted.partition(".")
                aliases[node.targets[0].id] = aliases[head] + ("." + rest if rest else "")
    return aliases, banned, bad


def _owners(node: ast.stmt) -> set[str]:
    """The names a top-level statement defines; code that runs at import owns ``AT_IMPORT``."""
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {a.asname or a.name.split(".")[0] for a in node.names}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if all(isinstance(t, ast.Name) for t in targets):
            return {t.id for t in targets}
    return {AT_IMPORT}


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` - the student's own test code, never run by the grader."""
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, ()))
    return seen


def inspect_source(source: str, classes: dict[str, str]) -> list[Use]:
    """Every forbidden use in ``source``, with the questions it costs (``classes``: class name -> question).

    A file that does not parse is one use naming the syntax error (it costs nothing here: it
    does not import either, so every case fails).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [Use(exc.lineno or 0, f"syntax error: {exc.msg}", ())]
    aliases, banned, bad_imports = _imports(tree)
    regions: list[tuple[set[str], list[tuple[int, str]]]] = []
    edges: dict[str, set[str]] = {}
    for node in tree.body:
        if _is_main_guard(node):
            continue
        owners, scanner = _owners(node), _Scanner(aliases, banned)
        scanner.visit(node)
        found = [(line, msg) for line, msg in scanner.found if not isinstance(node, (ast.Import, ast.ImportFrom))]
        found += [(line, msg) for stmt, line, msg in bad_imports if stmt is node or _inside(stmt, node)]
        regions.append((owners, found))
        for owner in owners:
            edges.setdefault(owner, set()).update(scanner.refs - {owner})
    reach = {q: _closure(cls, edges) for cls, q in classes.items()}
    at_import = _closure(AT_IMPORT, edges)
    uses = []
    for owners, found in regions:
        if owners & at_import:
            questions = tuple(sorted(set(classes.values())))
        else:
            questions = tuple(sorted(q for q, names in reach.items() if owners & names))
        uses.extend(Use(line, msg, questions) for line, msg in found)
    return sorted(set(uses), key=lambda u: (u.line, u.use))


def _inside(inner: ast.AST, outer: ast.AST) -> bool:
    return inner is not outer and any(n is inner for n in ast.walk(outer))


def forbidden_uses(source: str) -> list[str]:
    """Every forbidden use in ``source`` as ``line N: ...`` (whichever class it is in, reached or not)."""
    return [f"line {u.line}: {u.use}" for u in inspect_source(source, {})]
