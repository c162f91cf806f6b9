"""The plugin rule: the code a stage runs through the two ``importlib`` registries, which
``ast`` cannot see, chosen from the variants the stage works on (see :func:`plugin_files`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from pipeline.devtools.depgraph.imports import Closure, Origin
from pipeline.devtools.depgraph.paths import norm, py_files
from pipeline.devtools.depgraph.stages import StageSpec

# The two plugin registries that import a sub-module chosen at run time (see plugin_files()).
MODEL_REGISTRY = "pipeline/models/__init__.py"
MODEL_FAMILIES = "pipeline/models"
READER_REGISTRY = "pipeline/data/readers/__init__.py"
READER_MODULES = "pipeline/data/readers"


def touched_variants(stage: StageSpec, variants: Mapping[str, dict]) -> list[str]:
    """The variants a stage works on, by the explicit rule of :func:`plugin_files`."""
    touched: list[str] = []

    def touch(name: str) -> None:
        if name in variants and name not in touched:
            touched.append(name)

    if stage.foreach_key is not None:  # (a) train@tdm_max -> tdm_max
        touch(stage.foreach_key)
    for dep in stage.deps:  # (b) models/<V>.pt declared as a dep
        p = PurePosixPath(dep)
        if len(p.parts) == 2 and p.parts[0] == "models" and p.suffix == ".pt":
            touch(p.stem)
    for key in stage.param_keys:  # (c) params variants.<V> or variants.<V>.<...>
        parts = key.split(".")
        if len(parts) >= 2 and parts[0] == "variants":
            touch(parts[1])
    return touched


def plugin_files(
    stage: StageSpec,
    closure: Closure,
    variants: Mapping[str, dict],
    root: str | os.PathLike,
) -> tuple[dict[str, Origin], dict[str, str]]:
    """Files a stage runs through the two importlib-based registries, which ``ast`` cannot see.

    Why this exists: ``pipeline/models/__init__.py`` imports ``pipeline.models.<model name>``
    (one *family folder* per model name) and ``pipeline/data/readers/__init__.py`` imports
    ``pipeline.data.readers.<format>`` with ``importlib``, the name coming from ``params.yaml``
    at run time. Static analysis only sees the registry, so without this rule a stage could
    omit its model family (editing the model would not retrain) or list every family
    (editing one model would retrain them all). The explicit rule:

    * The variants a stage *touches* (:func:`touched_variants`) are
      (a) its foreach key, when the stage is ``<name>@<key>`` and ``key`` is a variant;
      (b) every variant ``V`` whose checkpoint ``models/V.pt`` the stage declares as a dep;
      (c) every variant ``V`` whose params ``variants.V`` (or a key below it) the stage declares
          (e.g. a benchmark that builds that variant's model).
    * If the closure runs the model registry, each touched variant needs its model family
      folder ``pipeline/models/<variants.V.model.name>``: every ``.py`` file in it.
    * If the closure runs the readers registry **and** the stage declares the variant's data
      (``variants.V.data.path`` or a sub-folder of it) as a dep, it needs
      ``pipeline/data/readers/<variants.V.data.format>.py``. A stage that touches a variant
      only through its checkpoint (e.g. to draw its filters) reads none of its data.

    Returns (files to add with the Origin to report, family folders -> reason). The caller
    adds the files' own imports and applies the rule again until nothing new appears.
    """
    root = Path(root)
    files: dict[str, Origin] = {}
    folders: dict[str, str] = {}
    deps = [norm(d) for d in stage.deps]
    for name in touched_variants(stage, variants):
        variant = variants.get(name) or {}
        model_name = (variant.get("model") or {}).get("name")
        data = variant.get("data") or {}
        if MODEL_REGISTRY in closure and model_name:
            folder = f"{MODEL_FAMILIES}/{model_name}"
            reason = f"plugin rule: variant {name} uses model {model_name}"
            folders[folder] = reason
            for path in py_files(root, folder) or [f"{folder}/__init__.py"]:  # an absent family is reported missing
                files.setdefault(path, Origin(MODEL_REGISTRY, None, reason))
        data_path, fmt = norm(str(data.get("path") or "")), data.get("format")
        reads_data = any(d == data_path or d.startswith(data_path + "/") for d in deps) if data_path else False
        if READER_REGISTRY in closure and fmt and reads_data:
            reason = f"plugin rule: variant {name} reads format {fmt}"
            files.setdefault(f"{READER_MODULES}/{fmt}.py", Origin(READER_REGISTRY, None, reason))
    return files, folders
