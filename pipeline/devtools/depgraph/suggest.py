"""``--suggest``: each stage's exact code deps as YAML lists, ready to paste into ``dvc.yaml``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pipeline.devtools.depgraph.analysis import StageAnalysis
from pipeline.devtools.depgraph.plugins import MODEL_FAMILIES, READER_MODULES


def suggested_deps(analysis: StageAnalysis) -> list[str]:
    """The stage's exact code deps: the command's module or script first, then the rest
    sorted; plugin family folders as folders (the rule asks for the whole folder); package
    markers left out (they are not deps)."""
    folders = sorted(analysis.plugin_dirs)
    first = [e for e in analysis.entries if not e.endswith("/__init__.py")]
    out: list[str] = []
    for path in [*first, *sorted(analysis.closure)]:
        if path in analysis.markers:
            continue
        folder = next((f for f in folders if path.startswith(f + "/")), None)
        item = folder or path
        if item not in out:
            out.append(item)
    return out


def _templated(analysis: StageAnalysis, variants: Mapping[str, dict]) -> list[str] | None:
    """The suggestion with its own variant's plugin paths written as ``${item...}``."""
    key = analysis.stage.foreach_key
    if key is None or key not in variants:
        return None
    variant = variants[key] or {}
    model = (variant.get("model") or {}).get("name")
    fmt = (variant.get("data") or {}).get("format")
    subs = {}
    if model:
        subs[f"{MODEL_FAMILIES}/{model}"] = MODEL_FAMILIES + "/${item.model.name}"
    if fmt:
        subs[f"{READER_MODULES}/{fmt}.py"] = READER_MODULES + "/${item.data.format}.py"
    return [subs.get(d, d) for d in suggested_deps(analysis)]


def format_suggestions(analyses: Sequence[StageAnalysis], variants: Mapping[str, dict]) -> str:
    """YAML-ready dep lists: one per stage, or one ``${item...}`` template per foreach group
    when every item of the group needs the same list after substitution."""
    lines: list[str] = []
    done: set[str] = set()
    for a in analyses:
        name = a.stage.name
        if name in done:
            continue
        group_name = name.rpartition("@")[0] if "@" in name else None
        if group_name:
            group = [b for b in analyses if b.stage.name.rpartition("@")[0] == group_name and "@" in b.stage.name]
            templates = [_templated(b, variants) for b in group]
            template = templates[0]  # the group holds ``a`` itself, so it is never empty
            if template is not None and all(t == template for t in templates):
                done.update(b.stage.name for b in group)
                lines.append(f"{group_name}:  # foreach template, same for all {len(group)} items")
                lines.extend(f"  - {d}" for d in template)
                lines.append("")
                continue
        done.add(name)
        lines.append(f"{name}:")
        lines.extend(f"  - {d}" for d in suggested_deps(a))
        lines.append("")
    return "\n".join(lines)
