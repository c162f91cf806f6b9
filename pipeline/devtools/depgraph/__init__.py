"""Dependency-graph checker: every DVC stage declares exactly the project code it runs.

The rule, for every stage of ``dvc.yaml``:

* **missing** -- every project file the stage's entry point imports (transitively, including
  imports inside functions, ``try``/``except`` and ``if TYPE_CHECKING`` blocks) must be covered
  by a declared dep (the file itself, or a folder that contains it); otherwise editing that file
  would not rerun the stage. A package marker (an ``__init__.py`` holding only a docstring)
  runs no code and is not a dep: it is neither required nor accepted.
* **extra** -- every declared dep that is code (a ``.py`` file, or a folder holding ``.py``
  files, under ``pipeline/`` or ``benchmarks/``) must be imported by the stage; otherwise
  editing it would rerun the stage for nothing. A leaf package (a folder without
  sub-packages, such as a model family or ``pipeline/data/common``) counts as one unit:
  it is declared rightly when the stage imports any file of it.
* **orphan** -- every ``.py`` file under ``pipeline/`` must be imported by at least one stage,
  or be listed in :data:`ORPHAN_ALLOWLIST` (tools run outside DVC).
* **entry** -- a stage whose command names a module or script that does not exist.

Usage::

    python -m pipeline.devtools.depgraph [--root .] [--suggest]

prints the problems (and, with ``--suggest``, each stage's exact list of code deps, ready to
paste into ``dvc.yaml``) and exits with status 1 when there is any problem.

Everything here is plain static analysis (``ast``) except :func:`load_stages`, which asks DVC
itself for the stages, so ``foreach`` expansion and ``${...}`` interpolation are DVC's own.
Nothing is imported or executed from the analysed code.

One module per step: ``stages`` (what DVC's files declare), ``entries`` (a command -> the
files it runs first), ``imports`` (the import closure, by ``ast``), ``plugins`` (the code the
``importlib`` registries pick per variant), ``analysis`` (declared against imported, the
leaf-package rule, orphans), ``suggest`` (``--suggest``), ``cli``; ``paths`` and ``errors``
are shared by all of them.
"""

from pipeline.devtools.depgraph.analysis import (
    CODE_ROOTS,
    ORPHAN_ALLOWLIST,
    Problem,
    StageAnalysis,
    analyze,
    analyze_stage,
    check,
    find_orphans,
    problems_of,
)
from pipeline.devtools.depgraph.cli import main
from pipeline.devtools.depgraph.entries import entry_files, missing_entries
from pipeline.devtools.depgraph.errors import DepGraphError
from pipeline.devtools.depgraph.imports import Closure, ImportCache, Origin, import_chain, import_closure
from pipeline.devtools.depgraph.plugins import (
    MODEL_FAMILIES,
    MODEL_REGISTRY,
    READER_MODULES,
    READER_REGISTRY,
    plugin_files,
    touched_variants,
)
from pipeline.devtools.depgraph.stages import StageSpec, load_stages, load_variants
from pipeline.devtools.depgraph.suggest import format_suggestions, suggested_deps

__all__ = [
    "CODE_ROOTS",
    "MODEL_FAMILIES",
    "MODEL_REGISTRY",
    "ORPHAN_ALLOWLIST",
    "READER_MODULES",
    "READER_REGISTRY",
    "Closure",
    "DepGraphError",
    "ImportCache",
    "Origin",
    "Problem",
    "StageAnalysis",
    "StageSpec",
    "analyze",
    "analyze_stage",
    "check",
    "entry_files",
    "find_orphans",
    "format_suggestions",
    "import_chain",
    "import_closure",
    "load_stages",
    "load_variants",
    "main",
    "missing_entries",
    "plugin_files",
    "problems_of",
    "suggested_deps",
    "touched_variants",
]
