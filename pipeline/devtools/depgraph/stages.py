"""What the checker reads from DVC's files: the expanded stages of ``dvc.yaml`` and the
``variants`` of ``params.yaml``.

:func:`load_stages` asks DVC itself for the stages, so ``foreach`` expansion and ``${...}``
interpolation are DVC's own; :func:`load_variants` reads ``params.yaml`` with the YAML loader
DVC uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from pipeline.devtools.depgraph.errors import DepGraphError
from pipeline.devtools.depgraph.paths import posix

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class StageSpec:
    """One expanded DVC stage, as DVC sees it.

    ``name`` is DVC's addressing name (``train@tdm_max``; ``sub/dvc.yaml:name`` for a
    ``dvc.yaml`` outside the root). ``deps`` are the declared non-params deps as repo-relative
    POSIX paths; ``param_keys`` the keys of its ``params.yaml`` params deps; ``outs`` every
    output (outs, metrics and plots alike) as a repo-relative POSIX path.
    """

    name: str
    cmd: str
    deps: tuple[str, ...]
    param_keys: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()

    @property
    def foreach_key(self) -> str | None:
        """``tdm_max`` for ``train@tdm_max``; None for a stage that is not a foreach item."""
        return self.name.rpartition("@")[2] if "@" in self.name else None


def load_stages(root: str | os.PathLike) -> list[StageSpec]:
    """Every stage with a command, expanded by DVC itself (foreach, interpolation)."""
    # DVC is slow to import: only here, so the pure-Python parts stay fast.
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    specs: list[StageSpec] = []
    with Repo(os.fspath(root)) as repo:
        root_dir = repo.root_dir
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None):
                continue  # a .dvc file (imported / added data), not a pipeline stage
            cmd = stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd)
            dvcfile_dir = os.path.relpath(os.path.dirname(stage.dvcfile.path), root_dir)
            name = stage.name if dvcfile_dir == "." else f"{posix(dvcfile_dir)}/dvc.yaml:{stage.name}"
            deps: list[str] = []
            keys: list[str] = []
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency):
                    if posix(os.path.relpath(dep.fs_path, root_dir)) == PARAMS_FILE:
                        keys.extend(dep.params or [])
                    continue
                deps.append(_repo_relative(dep, root_dir))
            outs = tuple(_repo_relative(out, root_dir) for out in stage.outs)
            specs.append(StageSpec(name=name, cmd=cmd, deps=tuple(deps), param_keys=tuple(keys), outs=outs))
    return specs


def _repo_relative(dep, root_dir: str) -> str:
    """A dep's or out's path relative to the repo root (POSIX); its text as written when outside the repo."""
    try:
        rel = os.path.relpath(dep.fs_path, root_dir)
    except (TypeError, ValueError):
        return str(dep.def_path)
    if rel.startswith("..") or os.path.isabs(rel):
        return str(dep.def_path)
    return posix(rel)


def load_variants(root: str | os.PathLike) -> dict:
    """``variants`` of ``params.yaml`` (``{}`` when absent), read as DVC reads it (ruamel.yaml, YAML 1.2)."""
    path = Path(root) / PARAMS_FILE
    if not path.is_file():
        return {}
    try:
        params = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    except YAMLError as exc:
        raise DepGraphError(f"cannot read {path}: {exc}") from exc
    variants = params.get("variants") or {}
    return variants if isinstance(variants, dict) else {}
