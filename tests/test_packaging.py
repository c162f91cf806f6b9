"""What a fresh clone installs: every import declared, every declared package pinned, every
transitive one held by constraints.txt at the version the committed results were made with."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file (comments and blank lines skipped)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{path.name}: {line!r} is not pinned with =="
            found[canonical(name)] = version.strip()
    return found


def third_party_imports(folder: Path) -> set[str]:
    """Top-level modules the package imports that are neither its own nor the standard library's."""
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n != "pipeline" and n not in sys.stdlib_module_names}


def test_every_imported_package_is_declared_and_pinned():
    declared = {
        canonical(re.split(r"[<>=!~ ;\[]", d)[0])
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    pinned = pins(ROOT / "requirements.txt")
    providers = packages_distributions()
    for module in sorted(third_party_imports(ROOT / "pipeline")):
        dists = {canonical(d) for d in providers.get(module, [])}
        assert dists & declared, f"pipeline imports {module} ({dists or 'not installed'}): not in pyproject.toml"
        assert dists & set(pinned), f"pipeline imports {module} ({dists}): not pinned in requirements.txt"


def test_constraints_hold_every_pin_at_the_same_version():
    constraints = pins(ROOT / "constraints.txt")
    for file in ("requirements.txt", "requirements-dev.txt"):
        for name, version in pins(ROOT / file).items():
            assert constraints.get(name) == version, (
                f"{file}: {name}=={version}, constraints.txt: {constraints.get(name)}"
            )
    assert "cnn-pipeline" not in constraints  # the project itself is installed editable, not pinned
    makefile = (ROOT / "Makefile").read_text()
    assert "-r requirements.txt -r requirements-dev.txt -c constraints.txt" in makefile  # `make setup` uses it
