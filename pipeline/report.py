"""The results report: ``report/README.md`` and a self-contained ``report/index.html``.

Nothing here measures anything. Every number is read from a file another stage wrote
under ``reports/`` (see ``dvc.yaml``) or, for what the assignments' own seeds reported,
from ``references/seed_results.yaml``, which quotes the line each number comes from.
A missing input is never filled in: its place says ``not produced yet (run `dvc repro
<stage>`)``, naming the stage that ``dvc.yaml`` says writes it.

The report lives in its own top-level folder ``report/``, outside the ``reports/``
folder it reads (the report stage depends on the whole of ``reports/``; an output
inside its own dependency would always be stale). It is built once, as Markdown with
links relative to ``report/`` (``../reports/<variant>/eval/confusion_matrix.png``; it
renders on any git host). ``index.html`` is that same Markdown turned into HTML by the
small converter at the end of this module, with every image embedded as a base64
``data:`` URI, inline CSS, no scripts and a Content-Security-Policy that forbids any
fetch, so it opens anywhere, offline. Same inputs -> same bytes: no clock, no
randomness, files read in a fixed order.

Which variants and comparisons appear comes from ``params.yaml`` alone (``variants``,
``analysis.comparisons``), never from code: a variant added to params shows up, with
"not produced yet" where its files are still missing.

Layout: summary table, data, one section per assignment (in the order of
``references/seed_results.yaml``), the params variants no assignment lists,
cross-assignment analysis, time.

Files read under ``reports/`` (paths relative to it; ``<v>`` = every params variant):
``<v>/{metrics,training,timings}.json``, ``<v>/eval/``, ``<v>/analysis/`` (filters.png, loss_curve.png,
shape_trace.md, layer_summary.md, param_counts.json), ``comparisons/<key>.{md,json}``,
``analysis/padding_shapes.md``, ``<classwise variant>/classwise_norms/``, ``data/``,
``autograder.json``, ``cse849/q1_test.txt``, ``benchmarks/``, ``timing.json``.
"""

from __future__ import annotations

import base64
import html
import json
import posixpath
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from pipeline.answers import SEED_STUDY, answers, dotted, has, pct, seed_study_comparisons, seed_study_verdict
from pipeline.config import VariantConfig, build, load_params
from pipeline.deviations import DEVIATIONS, load_deviations
from pipeline.errors import PipelineError
from pipeline.io import write_text

SEED_RESULTS = Path("references/seed_results.yaml")
REPORTS = "reports"  # the folder the report reads: every stage's outputs
OUT = "report"  # the folder README.md / index.html are written to; their links are relative to it

# Who writes what, for files dvc.yaml does not (yet) declare: used only in the
# "not produced yet" hint. dvc.yaml, when it declares the file, always wins. First match wins.
FALLBACK_STAGES: list[tuple[str, str]] = [
    (r"reports/timing\.json", "!make repro-timed"),  # written outside DVC, by the Makefile
    (r"reports/data/provenance\.json", "download"),
    (r"reports/data/.*", "stats"),
    (r"reports/autograder\.json", "autograde"),
    (r"reports/benchmarks/loader\.json", "bench_loader"),
    (r"reports/benchmarks/layers\.json", "bench_layers"),
    (r"reports/comparisons/([^/]+?)\.[^/]*", r"compare@\1"),
    (r"reports/seed_study/runs/([^/]+?)\.json", r"seed_study@\1"),
    (r"reports/seed_study/.*", "seed_study_summary"),
    (r"reports/analysis/padding_shapes\..*", "padding"),
    (r"reports/([^/]+)/(metrics\.json|plots/.*)", r"train@\1"),
    (r"reports/([^/]+)/eval/.*", r"evaluate@\1"),
    (r"reports/([^/]+)/analysis/.*", r"analyze@\1"),
    (r"reports/[^/]+/classwise_norms/.*", "classwise_norms"),
    (r"reports/[^/]+/q1_test\.txt", "predict_cse849"),
]

# Figures shown for every variant, in order: (path under reports/, caption, optional). An
# optional figure is one its stage writes only for some models (filters: not for an MLP);
# when absent it is left out rather than reported missing.
VARIANT_FIGURES = [
    ("{v}/analysis/loss_curve.png", "training loss vs examples seen", False),
    ("{v}/analysis/filters.png", "first-layer filters", True),
    ("{v}/eval/confusion_matrix.png", "confusion matrix (test set)", False),
    ("{v}/eval/first20.png", "predictions on the first 20 test images", False),
    ("{v}/eval/misclassified.png", "misclassified test images", False),
]

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#1f2328}
h1,h2,h3,h4{line-height:1.25;margin-top:1.6em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.3em .7em;text-align:left;vertical-align:top}th{background:#f6f8fa}
tr:nth-child(even) td{background:#fbfcfd}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f2f4f6;padding:.1em .3em;border-radius:4px}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;border-radius:6px}pre code{background:none;padding:0}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#59636e;font-size:13px}blockquote{color:#59636e;border-left:.25em solid #d0d7de;margin:0;padding:0 1em}
""".strip()


# --------------------------------------------------------------------------- number formats


def signed(x: float, digits: int) -> str:
    text = f"{x:+.{digits}f}"
    return text.replace("-", "+", 1) if float(text) == 0 else text  # no "-0.00"


def points(diff: float) -> str:
    """A difference of two accuracies in percentage points: -0.0071 -> '-0.71 pp'."""
    return f"{signed(100 * diff, 2)} pp"


def num(x: Any) -> str:
    """Plain numbers for tables: integers with thousands separators, floats to 4 digits."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x.is_integer() and abs(x) >= 1000:
            return f"{int(x):,}"
        return f"{x:,.4f}".rstrip("0").rstrip(".") if abs(x) < 1000 else f"{x:,.1f}"
    return str(x)


def seconds(s: float) -> str:
    """1234.5 -> '1,234.5 s (20.6 min)'."""
    return f"{s:,.1f} s" + (f" ({s / 60:.1f} min)" if s >= 120 else "")


def duration(s: float) -> str:
    """Sub-second timings in milliseconds, longer ones as :func:`seconds`."""
    return f"{s * 1000:.2f} ms" if s < 1 else seconds(s)


def by_name(key: str, value: Any) -> str:
    """Format a scalar read from an unknown metrics file, guided by its key's name."""
    k = key.lower()
    if value is None:
        return "n/a"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and k.endswith("points"):
        return f"{signed(float(value), 2)} pp"  # already in percentage points
    if isinstance(value, float) and not isinstance(value, bool):
        if "accuracy" in k or k.endswith("rate") or k in ("precision", "recall", "f1", "f1_score"):
            return pct(value) if 0.0 <= value <= 1.0 else num(value)
        if k == "gap" or k.endswith("_gap") or k.endswith(".gap"):
            return points(value)
        if "seconds" in k:
            return seconds(value)
    return num(value)


def metric_value(metric: str, value: Any) -> str:
    return pct(value) if "accuracy" in metric else num(value)


def metric_diff(metric: str, ours: float, seed: float) -> str:
    if "accuracy" in metric:
        return points(ours - seed)
    diff = ours - seed
    return signed(diff, 0) if float(diff).is_integer() else signed(diff, 4)


# --------------------------------------------------------------------------- links


def link(rel: str) -> str:
    """The link from ``report/`` to ``reports/<rel>``: ``tdm_max/eval/x.png`` -> ``../reports/tdm_max/eval/x.png``."""
    return posixpath.relpath(posixpath.normpath(posixpath.join(REPORTS, rel)), OUT)


def ref(rel: str) -> str:
    """A Markdown link to ``reports/<rel>`` labelled with its path from the repository root."""
    return f"[`{posixpath.normpath(posixpath.join(REPORTS, rel))}`]({link(rel)})"


# --------------------------------------------------------------------------- inputs


class Inputs:
    """The repository as the report sees it: params, seed results, stage map, report files."""

    def __init__(self, root: str | Path = ".") -> None:
        self.root = Path(root)
        self.params = load_params(self.root / "params.yaml")
        seeds = self.root / SEED_RESULTS
        if not seeds.exists():
            raise FileNotFoundError(f"{seeds}: not found (the seeds' reported numbers)")
        self.seeds: dict[str, Any] = load_params(seeds)
        deviations = self.root / DEVIATIONS
        self.deviations = load_deviations(deviations) if deviations.exists() else []
        self.stages = stage_outputs(self.root / "dvc.yaml", self.params)

    # ---- files under reports/

    def path(self, rel: str) -> Path:
        return self.root / posixpath.normpath(posixpath.join(REPORTS, rel))

    def exists(self, rel: str) -> bool:
        return self.path(rel).is_file()

    def json(self, rel: str) -> Any | None:
        """The parsed file, or None when it does not exist (yet). Broken JSON is an error."""
        file = self.path(rel)
        if not file.is_file():
            return None
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PipelineError(f"{file}: invalid JSON at line {exc.lineno}: {exc.msg}") from None

    def text(self, rel: str) -> str | None:
        file = self.path(rel)
        return file.read_text(encoding="utf-8") if file.is_file() else None

    def metrics(self, variant: str) -> dict | None:
        """What ``train@<variant>`` recorded: ``metrics.json`` with the run's facts
        (``training.json``) and timings (``timings.json``) merged in; None before it ran."""
        metrics = self.json(f"{variant}/metrics.json")
        if metrics is None:
            return None
        for rel in (f"{variant}/training.json", f"{variant}/timings.json"):
            metrics = {**(self.json(rel) or {}), **metrics}
        return metrics

    # ---- provenance of a missing file

    def stage_for(self, rel: str) -> str | None:
        """The stage that writes ``reports/<rel>``: from dvc.yaml, else the expected name."""
        full = posixpath.normpath(posixpath.join(REPORTS, rel))
        for out, stage in self.stages.items():
            if full == out or full.startswith(out.rstrip("/") + "/"):
                return stage
        for pattern, stage in FALLBACK_STAGES:
            match = re.fullmatch(pattern, full)
            if match:
                return match.expand(stage)
        return None

    def missing(self, rel: str) -> str:
        """'not produced yet (run `dvc repro <stage>`)' for ``reports/<rel>``."""
        stage = self.stage_for(rel)
        if stage is None:
            command = "dvc repro"
        elif stage.startswith("!"):
            command = stage[1:]
        else:
            command = f"dvc repro {stage}"
        return f"not produced yet (run `{command}`)"

    # ---- variants from params.yaml

    def variant_names(self) -> list[str]:
        """Every variant of params.yaml, in its order: what the report shows, with no list of its own."""
        return list(self.params.get("variants") or {})

    def comparisons(self) -> dict[str, Mapping[str, Any]]:
        """params.yaml ``analysis.comparisons``, in its order: ``{key: {title, a, b}}``."""
        found = (self.params.get("analysis") or {}).get("comparisons") or {}
        return {str(k): v if isinstance(v, Mapping) else {} for k, v in found.items()}

    def variant(self, name: str) -> VariantConfig | None:
        """The typed config of ``name`` (defaults filled in), or None if params has no such variant."""
        raw = (self.params.get("variants") or {}).get(name)
        if raw is None:
            return None
        return build(VariantConfig, raw, f"variants.{name}", name=name)


_INTERP = re.compile(r"\$\{([^}]+)\}")


def stage_outputs(dvc_yaml: Path, params: Mapping[str, Any]) -> dict[str, str]:
    """``{output path: stage name}`` for every out/metric/plot file declared in dvc.yaml.

    ``foreach`` stages are expanded as DVC names them (``train@prac5``); ``${key}``,
    ``${item}`` and ``${item.a.b}`` are substituted. Only used to name the stage in a
    "not produced yet" hint, so an unreadable dvc.yaml just means no names.
    """
    try:
        doc = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))
        stages = doc.get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}
    mapping: dict[str, str] = {}

    def lookup(expr: str, scope: Mapping[str, Any]) -> Any:
        node: Any = scope
        for part in expr.strip().split("."):
            node = node[part] if isinstance(node, Mapping) else None
            if node is None:
                raise KeyError(expr)
        return node

    def substitute(text: str, scope: Mapping[str, Any]) -> str:
        return _INTERP.sub(lambda m: str(lookup(m.group(1), scope)), text)

    def collect(name: str, body: Mapping[str, Any], scope: Mapping[str, Any]) -> None:
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind) or []:
                path = next(iter(entry)) if isinstance(entry, Mapping) else entry
                try:
                    mapping.setdefault(posixpath.normpath(substitute(str(path), scope)), name)
                except KeyError:
                    continue

    for name, body in stages.items():
        if not isinstance(body, Mapping):
            continue
        if "foreach" in body and isinstance(body.get("do"), Mapping):
            items = body["foreach"]
            if isinstance(items, str):
                try:
                    items = lookup(_INTERP.fullmatch(items.strip()).group(1), params)
                except (AttributeError, KeyError):
                    continue
            pairs = (
                items.items()
                if isinstance(items, Mapping)
                else ((v if isinstance(v, str) else i, v) for i, v in enumerate(items or []))
            )
            for key, item in pairs:
                collect(f"{name}@{key}", body["do"], {**params, "key": key, "item": item})
        else:
            collect(name, body, params)
    return mapping


# --------------------------------------------------------------------------- Markdown builder


def md_escape(text: Any) -> str:
    """Make a value safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


@dataclass
class Markdown:
    """The report under construction: a list of Markdown blocks plus the images it links."""

    inputs: Inputs
    blocks: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # link targets, relative to report/
    anchors: Counter[str] = field(default_factory=Counter)  # heading slugs so far, for unique ids
    answer_links: dict[str, list[str]] = field(default_factory=dict)  # assignment key -> links to its answers

    def heading(self, level: int, text: str) -> str:
        """Add a heading; return its anchor (the id GitHub and :func:`markdown_to_html` give it)."""
        self.blocks.append(f"{'#' * level} {text}")
        return self._anchor(text)

    def _anchor(self, text: str) -> str:
        base = slug(text)
        anchor = base if not self.anchors[base] else f"{base}-{self.anchors[base]}"
        self.anchors[base] += 1
        return anchor

    def para(self, text: str) -> None:
        self.blocks.append(text)

    def bullets(self, items: Iterable[str]) -> None:
        items = list(items)
        if items:
            self.blocks.append("\n".join(f"- {item}" for item in items))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
        self.blocks.append("\n".join(lines))

    def code(self, text: str) -> None:
        self.blocks.append("```\n" + text.rstrip("\n") + "\n```")

    def missing(self, rel: str, what: str | None = None) -> None:
        self.blocks.append(f"> {what or f'`reports/{rel}`'}: {self.inputs.missing(rel)}.")

    def figure(self, rel: str, caption: str) -> None:
        """Link ``reports/<rel>`` if it exists, else say why it is not there."""
        if self.inputs.exists(rel):
            self.images.append(link(rel))
            self.blocks.append(f"![{caption}]({link(rel)})")
            return
        folder = self.inputs.path(rel).parent
        stage = self.inputs.stage_for(rel)
        declared = stage in self.inputs.stages.values()
        if declared and folder.is_dir() and any(p.is_file() for p in folder.iterdir()):
            # The stage dvc.yaml names ran and wrote its other files here, but not this one.
            self.blocks.append(f"> {caption}: `reports/{rel}` is not written by `{stage}` for this variant.")
        else:
            self.missing(rel, caption)

    def include_markdown(self, rel: str, level: int, title: str | None = None) -> None:
        """A Markdown file another stage wrote, its headings shifted, its links rebased onto report/.

        ``title`` (if given) is written at ``level`` and the file's headings are shifted below it,
        unless the file starts with a heading that already names it (contains ``title``): then that
        heading takes its place at ``level``. Without ``title`` the file's top heading goes to
        ``level``. A missing file: ``title`` and why it is missing.
        """
        text = self.inputs.text(rel)
        lines = text.strip("\n").splitlines() if text is not None else []
        named = bool(lines) and bool(_HEADING.match(lines[0])) and _plain(title or "") in _plain(lines[0].lstrip("#"))
        if title is not None and not named:
            self.heading(level, title)
            level += 1
        if text is None:
            self.missing(rel)
            return
        if not lines:
            self.para(f"`{REPORTS}/{rel}` is empty.")
            return
        levels, fenced = [], False
        for line in lines:
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and (heading := _HEADING.match(line)):
                levels.append(len(heading.group(1)))
        shift = level - min(levels) if levels else 0
        base = posixpath.dirname(rel)
        out, fenced = [], False
        for line in lines:
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced:
                heading = _HEADING.match(line)
                if heading:
                    line = "#" * max(1, min(6, len(heading.group(1)) + shift)) + line[len(heading.group(1)) :]
                    self._anchor(line.lstrip("#").strip())  # counted, so later ids stay unique
                line = _LINK.sub(lambda m: _rebase(m, base, self), line)
            out.append(line)
        self.blocks.append("\n".join(out))

    def text(self) -> str:
        return "\n\n".join(self.blocks) + "\n"


_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"(#{1,6}) ")


def _plain(text: str) -> str:
    """Heading text without code / bold marks, for comparing two headings."""
    return re.sub(r"[`*]", "", text).strip().lower()


def _rebase(match: re.Match, base: str, doc: Markdown) -> str:
    """A relative link of a file under ``reports/<base>/``, made relative to report/."""
    bang, label, target = match.groups()
    if re.match(r"[a-z]+:|#|/", target):
        return match.group(0)
    rel = posixpath.normpath(posixpath.join(base, target))
    if bang:
        if not doc.inputs.exists(rel):
            return f"[missing image: {label}]"
        doc.images.append(link(rel))
    return f"{bang}[{label}]({link(rel)})"


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces -> hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


# --------------------------------------------------------------------------- what was run


def describe_model(v: VariantConfig) -> str:
    args = ", ".join(f"{k}={v.model.args[k]}" for k in v.model.args)
    return f"`{v.model.name}`" + (f" ({args})" if args else "")


def describe_data(v: VariantConfig) -> str:
    text = f"{v.data.format} from `{v.data.path}`"
    if v.data.format == "image_folder":
        return text + "; its own val split"
    if v.data.val_fraction:
        return text + f"; {v.data.val_fraction:.0%} of train held out for validation"
    return text


def describe_normalization(v: VariantConfig) -> str:
    n = v.data.normalize
    if n.mode == "none":
        return "none (pixels / 255)"
    if n.mode == "train":
        return "mean/std measured on the training split"
    return f"mean {n.mean}, std {n.std}"


def describe_augmentation(v: VariantConfig) -> str:
    a = v.data.augment
    parts = []
    if a.hflip:
        parts.append(f"horizontal flip p={a.hflip}")
    if a.gaussian_noise_std:
        parts.append(f"Gaussian noise std={a.gaussian_noise_std}")
    if a.random_erasing:
        parts.append(f"random erasing p={a.random_erasing}")
    if a.patch_shuffle:
        parts.append(f"patch shuffle p={a.patch_shuffle} box {a.patch_box}")
    return "; ".join(parts) or "none"


def describe_optimizer(v: VariantConfig) -> str:
    o = v.train.optimizer
    text = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(o.name, o.name)
    if o.momentum:
        text += f", momentum {o.momentum}" + (" (Nesterov)" if o.nesterov else "")
    if o.weight_decay:
        text += f", weight decay {o.weight_decay}"
    return text


def describe_scheduler(v: VariantConfig) -> str:
    s = v.train.scheduler
    return "none (constant lr)" if s.name == "none" else f"{s.name}, down to {s.eta_min} (stepped per epoch)"


RUN_ROWS = [
    ("model", describe_model),
    ("data", describe_data),
    ("normalization", describe_normalization),
    ("augmentation (train only)", describe_augmentation),
    ("optimizer", describe_optimizer),
    ("learning rate", lambda v: num(v.train.optimizer.lr)),
    ("lr schedule", describe_scheduler),
    ("loss", lambda v: v.train.loss),
    ("epochs", lambda v: num(v.train.epochs)),
    ("batch size", lambda v: num(v.train.batch_size)),
    (
        "checkpoint kept",
        lambda v: "best validation accuracy" if v.train.checkpoint == "best_val_accuracy" else "last epoch",
    ),
    ("precision", lambda v: v.train.precision + (", channels-last" if v.train.channels_last else "")),
    ("seed", lambda v: str(v.seed)),
]


def run_table(doc: Markdown, variants: list[str]) -> None:
    configs = {name: doc.inputs.variant(name) for name in variants}
    absent = [name for name, cfg in configs.items() if cfg is None]
    present = [name for name in variants if configs[name] is not None]
    if present:
        rows = [[label] + [describe(configs[name]) for name in present] for label, describe in RUN_ROWS]
        doc.table(["", *(f"`{name}`" for name in present)], rows)
    if absent:
        doc.para("Not in `params.yaml` (nothing to run): " + ", ".join(f"`{name}`" for name in absent) + ".")


# --------------------------------------------------------------------------- results


RESULT_ROWS = [
    ("test accuracy", "test_accuracy", pct),
    ("test loss", "test_loss", num),
    ("validation accuracy", "val_accuracy", pct),
    ("checkpoint epoch / epochs", None, None),
    ("parameters", "parameters", num),
    ("training time", "train_seconds", seconds),
    ("training images / s", "train_images_per_second", num),
]


def results_table(doc: Markdown, variants: list[str]) -> None:
    """This pipeline's numbers, straight from each ``reports/<variant>/metrics.json``."""
    metrics = {name: doc.inputs.metrics(name) for name in variants}
    produced = [name for name in variants if metrics[name] is not None]
    rows = []
    for label, key, fmt in RESULT_ROWS:
        row: list[Any] = [label]
        for name in produced:
            m = metrics[name]
            if key is None:
                row.append(
                    f"{m['checkpoint_epoch']} / {m['epochs']}" if "checkpoint_epoch" in m and "epochs" in m else "-"
                )
            else:
                row.append(fmt(m[key]) if key in m else "-")
        if any(cell != "-" for cell in row[1:]):
            rows.append(row)
    if produced:
        doc.table(["", *(f"`{name}`" for name in produced)], rows)
        doc.para(
            "From "
            + ", ".join(ref(f"{name}/metrics.json") for name in produced)
            + " and each variant's `training.json` and `timings.json` beside it (stage `train`)."
        )
    for name in variants:
        if metrics[name] is None:
            doc.missing(f"{name}/metrics.json", f"results of `{name}`")


def seed_table(doc: Markdown, assignment: Mapping[str, Any]) -> None:
    """This pipeline's numbers next to the seed's own, with the difference."""
    results = assignment.get("results") or []
    seed_file = assignment.get("seed", "?")
    if not results:
        return
    rows, sources = [], []
    for i, r in enumerate(results, start=1):
        variant, metric, value = r["variant"], r["metric"], r["value"]
        m = doc.inputs.metrics(variant)
        if m is None:
            ours, diff = doc.inputs.missing(f"{variant}/metrics.json"), "-"
        elif metric not in m:
            ours, diff = f"not in `{variant}/metrics.json`", "-"
        else:
            ours, diff = metric_value(metric, m[metric]), metric_diff(metric, m[metric], value)
        rows.append([f"`{variant}`", metric, ours, metric_value(metric, value), diff, f"[{i}]"])
        sources.append(f'[{i}] `{seed_file}`, {r.get("section", "")}: "{r["quote"]}"')
    doc.table(["variant", "quantity", "this pipeline", "seed reported", "difference", "seed source"], rows)
    doc.bullets(sources)


def grading_table(doc: Markdown, assignment: Mapping[str, Any]) -> None:
    """CSE 849: which tier of the seed's test-accuracy rubric this pipeline's model reaches."""
    grading = assignment.get("grading")
    if not grading:
        return
    metric = grading.get("metric", "test_accuracy")
    tiers = sorted(grading["tiers"], key=lambda t: -t["min_accuracy"])
    for variant in assignment.get("variants", []):
        m = doc.inputs.metrics(variant)
        if m is None or metric not in m:
            doc.para(f"Grading tier of `{variant}`: {doc.inputs.missing(f'{variant}/metrics.json')}.")
            continue
        acc = m[metric]
        reached = next(t for t in tiers if acc >= t["min_accuracy"])
        higher = [t for t in tiers if t["min_accuracy"] > acc]
        nxt = f"{100 * (higher[-1]['min_accuracy'] - acc):.2f} pp short of the next tier" if higher else "top tier"
        rows = [
            [
                pct(t["min_accuracy"]) if t["min_accuracy"] > 0 else "below the others",
                f"{t['points']} / {grading['max_points']}",
                "**reached**" if t is reached else "",
                f'"{latex_text(t["quote"])}"',
            ]
            for t in tiers
        ]
        doc.para(
            f"`{variant}` {metric.replace('_', ' ')} **{pct(acc)}** -> **{reached['points']} / "
            f"{grading['max_points']} points** of the seed's rubric ({nxt})."
        )
        doc.table(["test accuracy at least", "points", f"`{variant}`", f"rubric (`{assignment.get('seed')}`)"], rows)
    grade = doc.inputs.json("cse849/grade.json")
    if grade is not None and grade.get("graded"):
        shortcut = grade.get("shortcut") or {}
        rate = shortcut.get("shortcut_rate")
        doc.para(
            f"The TA's grader on the deliverable ({ref('cse849/grade.json')}, stage `grade_cse849`: "
            f"`python -m pipeline grade-cse849 q1_test.txt`): {grade['correct']} / {grade['images']} correct, "
            f"**{grade['points']} / {grade['max_points']} points**"
            + (
                f"; where the digit disagrees with the label, {pct(rate)} of the predictions are the "
                f"digit's class (a model that ignores the digit: about (1 - accuracy) / 9 = "
                f"{pct((1 - grade['accuracy']) / 9)})."
                if rate is not None
                else "."
            )
        )


LATEX = {r"\geq": "≥", r"\leq": "≤", r"\%": "%", "$": ""}


def latex_text(text: str) -> str:
    r"""The little inline LaTeX the seeds' rubric uses (``$\geq 75\%$``), as plain text (``≥ 75%``)."""
    for tex, plain in LATEX.items():
        text = text.replace(tex, plain)
    return re.sub(r"\s+", " ", text).replace(" ,", ",").strip()


def flat_scalars(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Scalar leaves of nested dicts as (dotted key, value), in the file's key order."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out += flat_scalars(v, f"{prefix}.{k}" if prefix else str(k))
    elif obj is None or isinstance(obj, (int, float, str, bool)):
        out.append((prefix, obj))
    return out


def scalar_table(doc: Markdown, obj: Any, header: tuple[str, str] = ("quantity", "value"), limit: int = 40) -> bool:
    items = flat_scalars(obj)
    if not items or len(items) > limit:
        return False
    doc.table(list(header), [[k, by_name(k.rsplit(".", 1)[-1] if "." in k else k, v)] for k, v in items])
    return True


_PER_CLASS_KEYS = ("precision", "recall")


def per_class(eval_metrics: Mapping[str, Any]) -> tuple[str, list[tuple[str, Mapping[str, Any]]]] | None:
    """Find the per-class table in an evaluate metrics file: (key, [(class, {precision, recall, ...})])."""
    for key, value in eval_metrics.items():
        if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
            if all(all(k in v for k in _PER_CLASS_KEYS) for v in value.values()):
                return key, [(str(c), v) for c, v in value.items()]
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            if all(all(k in v for k in _PER_CLASS_KEYS) for v in value):
                label = next((k for k in ("class", "label", "name") if k in value[0]), None)
                return key, [(str(v[label]) if label else str(i), v) for i, v in enumerate(value)]
    return None


def eval_section(doc: Markdown, variant: str) -> None:
    rel = f"{variant}/eval/metrics.json"
    ev = doc.inputs.json(rel)
    if ev is None:
        doc.missing(rel, f"evaluation of `{variant}`")
        return
    found = per_class(ev)
    # Everything but the per-class table and the CSE 849 blocks (shown in their own section).
    rest = {k: v for k, v in ev.items() if k not in ("shortcut", "occlusion") and (not found or k != found[0])}
    top = flat_scalars(rest)
    if top:
        doc.table(["quantity", "value"], [[k.replace(".", " "), by_name(k.rsplit(".", 1)[-1], v)] for k, v in top])
    if found:
        key, rows = found
        cols = [c for c in ("precision", "recall", "f1", "f1_score", "support") if c in rows[0][1]]
        doc.table(["class", *cols], [[c, *(by_name(col, r[col]) for col in cols)] for c, r in rows])
    doc.para(f"From {ref(rel)}.")


# --------------------------------------------------------------------------- sections


def summary(doc: Markdown) -> None:
    """One row per variant: test accuracy, and the seed's where it reported one."""
    doc.heading(2, "Summary")
    seeds = doc.inputs.seeds
    rows = []
    for a in seeds.values():
        seed_acc = {r["variant"]: r["value"] for r in a.get("results") or [] if r["metric"] == "test_accuracy"}
        for variant in a.get("variants") or []:
            m = doc.inputs.metrics(variant)
            ours = (
                pct(m["test_accuracy"]) if m and "test_accuracy" in m else doc.inputs.missing(f"{variant}/metrics.json")
            )
            if variant in seed_acc:
                seed, diff = (
                    pct(seed_acc[variant]),
                    (points(m["test_accuracy"] - seed_acc[variant]) if m and "test_accuracy" in m else "-"),
                )
            else:
                seed, diff = "not reported", "-"
            rows.append([f"[{a['title'].split(' - ')[0]}](#{slug(a['title'])})", f"`{variant}`", ours, seed, diff])
    for variant in other_variants(doc.inputs):
        m = doc.inputs.metrics(variant)
        ours = pct(m["test_accuracy"]) if m and "test_accuracy" in m else doc.inputs.missing(f"{variant}/metrics.json")
        rows.append([f"[{OTHER_TITLE}](#{slug(OTHER_TITLE)})", f"`{variant}`", ours, "no seed", "-"])
    doc.table(["assignment", "variant", "test accuracy", "seed reported", "difference"], rows)
    seeds_link = posixpath.relpath(SEED_RESULTS.as_posix(), OUT)
    doc.para(
        "Accuracies are on each assignment's test split; differences are this pipeline minus the seed, in "
        f"percentage points (pp). Seed numbers: [`{SEED_RESULTS.as_posix()}`]({seeds_link}), "
        "each with the line it quotes."
    )


def data_section(doc: Markdown) -> None:
    inputs = doc.inputs
    doc.heading(2, "Data")
    stats = inputs.json("data/stats.json")
    if stats is None:
        doc.missing("data/stats.json", "dataset statistics")
    else:
        mnist = stats.get("mnist") or {}
        if mnist:
            doc.table(
                ["MNIST split", "images", "pixel mean", "pixel std"],
                [
                    [s, num(e.get("count", "-")), num(e.get("mean", "-")), num(e.get("std", "-"))]
                    for s, e in mnist.items()
                ],
            )
        comp = stats.get("composite") or {}
        if comp:

            def chans(d: Any) -> str:
                """Channel statistics in image order (R, G, B), whatever order the file keeps its keys in."""
                if not isinstance(d, Mapping):
                    return "-"
                order = {"r": 0, "g": 1, "b": 2}
                keys = sorted(d, key=lambda k: (order.get(k, 3), k))
                return ", ".join(f"{k.upper() if k in order else k} {num(d[k])}" for k in keys)

            doc.table(
                ["composite split", "images", "digit = label", "mean", "std"],
                [
                    [
                        s,
                        num(e.get("count", "-")),
                        pct(e["label_agreement"]) if "label_agreement" in e else "-",
                        chans(e.get("mean")),
                        chans(e.get("std")),
                    ]
                    for s, e in comp.items()
                ],
            )
        doc.para(
            f'From {ref("data/stats.json")} (stage `stats`). "digit = label": the fraction of '
            "composite images whose pasted MNIST digit equals the CIFAR-10 label (the CSE 849 shortcut)."
        )
    composite = inputs.params.get("composite")
    if isinstance(composite, Mapping):
        doc.para(
            "Composite set-up (`params.yaml` `composite`): "
            + ", ".join(f"{k} = {num(v)}" for k, v in composite.items())
            + "."
        )
    prov = inputs.json("data/provenance.json")
    if prov is None:
        doc.missing("data/provenance.json", "data provenance")
    else:
        doc.table(["file", "origin", "md5", "images / shape"], provenance_rows(prov))
        extra = [f"{k} = {v}" for k, v in prov.items() if not isinstance(v, (Mapping, list))]
        doc.para(
            f"From {ref('data/provenance.json')} (stage `download`)" + (f"; {', '.join(extra)}" if extra else "") + "."
        )
    head = inputs.text("data/mnist_head.txt")
    if head is None:
        doc.missing("data/mnist_head.txt")
    else:
        doc.para(f"First rows of the MNIST CSV ({ref('data/mnist_head.txt')}):")
        doc.code(head)
    for rel, caption in [
        ("data/mnist_class_distribution.png", "MNIST class distribution"),
        ("data/mnist_first5.png", "the first five MNIST training images"),
        ("data/mnist_random20.png", "twenty random MNIST training images"),
        ("data/composite_samples.png", "composite samples (CIFAR-10 image + MNIST digit)"),
    ]:
        doc.figure(rel, caption)


def provenance_rows(prov: Mapping[str, Any]) -> list[list[str]]:
    """One row per downloaded file (or per dataset when it lists no files)."""

    def size(entry: Mapping[str, Any]) -> str:
        if isinstance(entry.get("counts"), Mapping):
            return ", ".join(f"{k} {num(v)}" for k, v in entry["counts"].items())
        if isinstance(entry.get("shape"), list):
            return " x ".join(str(n) for n in entry["shape"])
        return "-"

    rows = []
    for name, entry in prov.items():
        if not isinstance(entry, Mapping):
            continue
        files = entry.get("files")
        if isinstance(files, Mapping) and files:
            rows += [
                [f"{name}: {f}", f"`{e.get('origin', '-')}`", f"`{e['md5']}`" if "md5" in e else "-", size(e)]
                for f, e in files.items()
                if isinstance(e, Mapping)
            ]
        else:
            rows.append(
                [name, f"`{entry.get('origin', '-')}`", f"`{entry['md5']}`" if "md5" in entry else "-", size(entry)]
            )
    return rows


def variant_figures(doc: Markdown, variant: str) -> None:
    doc.heading(4, f"Figures: `{variant}`")
    for pattern, caption, optional in VARIANT_FIGURES:
        rel = pattern.format(v=variant)
        if optional and not doc.inputs.exists(rel) and doc.inputs.path(rel).parent.is_dir():
            continue  # its stage ran and, by design, wrote no such figure for this model
        doc.figure(rel, f"{variant}: {caption}")


OTHER_TITLE = "Other variants"


def other_variants(inputs: Inputs) -> list[str]:
    """The params.yaml variants that no assignment of seed_results.yaml lists, in params order."""
    listed = {v for a in inputs.seeds.values() for v in a.get("variants") or []}
    return [v for v in inputs.variant_names() if v not in listed]


def other_variants_section(doc: Markdown, variants: list[str]) -> None:
    """Variants that are in params.yaml only: the same tables and figures, without a seed to compare with."""
    doc.heading(2, OTHER_TITLE)
    doc.para(
        "In `params.yaml` `variants` but in no assignment of "
        f"`{SEED_RESULTS.as_posix()}` (no seed numbers to compare with): " + ", ".join(f"`{v}`" for v in variants) + "."
    )
    doc.heading(3, "What was run")
    run_table(doc, variants)
    doc.heading(3, "Results")
    results_table(doc, variants)
    doc.heading(3, "Evaluation")
    for variant in variants:
        doc.heading(4, f"`{variant}`")
        eval_section(doc, variant)
        ev = doc.inputs.json(f"{variant}/eval/metrics.json")
        if isinstance(ev, Mapping) and (ev.get("shortcut") is not None or ev.get("occlusion") is not None):
            shortcut_occlusion(doc, variant, ev)
    for variant in variants:
        variant_figures(doc, variant)


def assignment_section(doc: Markdown, key: str, a: Mapping[str, Any]) -> None:
    variants = list(a.get("variants") or [])
    doc.heading(2, a["title"])
    doc.para(f"Seed: `{a.get('seed', '?')}`. Variants in `params.yaml`: " + ", ".join(f"`{v}`" for v in variants) + ".")
    doc.heading(3, "What was run")
    run_table(doc, variants)
    doc.heading(3, "Results")
    results_table(doc, variants)
    if a.get("results"):
        doc.heading(3, "Compared with the seed")
        seed_table(doc, a)
    if a.get("grading"):
        doc.heading(3, "Grading tier (seed's rubric)")
        grading_table(doc, a)
    doc.bullets(f"Note: {n}" for n in a.get("notes") or [])
    answers_section(doc, key)
    if key in EXTRAS:
        EXTRAS[key](doc, a)
    doc.heading(3, "Evaluation")
    for variant in variants:
        doc.heading(4, f"`{variant}`")
        eval_section(doc, variant)
    for variant in variants:
        variant_figures(doc, variant)


def answers_section(doc: Markdown, key: str) -> None:
    """The seed's written questions this pipeline's outputs answer (pipeline/answers.py)."""
    found = answers(key, doc.inputs)
    if not found:
        return
    doc.heading(3, "Answers to the seed's questions, from our measurements")
    index = len(doc.blocks)  # the list of links to every answer goes here, once their ids are known
    links = []
    for a in found:
        anchor = doc.heading(4, f"{a.question}. {md_escape(a.asked)}")
        links.append(f"[{a.question}](#{anchor})")
        doc.para(a.text[:1].upper() + a.text[1:])
        if a.sources:
            doc.para(f"From {', '.join(ref(rel) for rel in a.sources)}.")
    doc.blocks.insert(index, "Questions: " + " · ".join(links))
    doc.answer_links[key] = links


DEVIATIONS_TITLE = "Where this pipeline departs from the seeds"


def deviations_section(doc: Markdown) -> None:
    """``references/deviations.yaml``, grouped by assignment, with the measured figures it names."""
    doc.heading(2, DEVIATIONS_TITLE)
    doc.para(
        "From `references/deviations.yaml` (each entry pins the `params.yaml` values it describes; a test "
        "fails when they change). Measured figures are read from the stages' outputs."
    )
    titles = {key: a["title"] for key, a in doc.inputs.seeds.items()}
    for key in titles:
        entries = [d for d in doc.inputs.deviations if d.seed == key]
        if not entries:
            continue
        doc.heading(3, titles[key])
        for d in entries:
            figures = []
            for m in d.measured:
                data = doc.inputs.json(m.file)
                try:
                    value = dotted(data, m.key)
                except KeyError:
                    figures.append(f"{m.label}: {doc.inputs.missing(m.file)}")
                    continue
                figures.append(f"{m.label} {by_name(m.key.rsplit('.', 1)[-1], value)} ({ref(m.file)})")
            doc.bullets(
                [
                    f"**{md_escape(d.topic)}.** Seed: {md_escape(d.seed_says)} Ours: {md_escape(d.ours)} "
                    f"Why: {md_escape(d.why)}" + (f" Measured: {'; '.join(figures)}." if figures else "")
                ]
            )


def tdm_extras(doc: Markdown, a: Mapping[str, Any]) -> None:
    doc.heading(3, "Output shapes with and without padding")
    doc.include_markdown("analysis/padding_shapes.md", level=4)


def hku_extras(doc: Markdown, a: Mapping[str, Any]) -> None:
    doc.heading(3, "Autograder (Questions 1-4: custom layers against torch)")
    grades = doc.inputs.json("autograder.json")
    if grades is None:
        doc.missing("autograder.json", "autograder scores")
        return
    rows = [
        [q, f"{g['score']} / {g['max']}", f"{g['passed']} / {g['total']}"]
        for q, g in grades.items()
        if isinstance(g, Mapping)
    ]
    if "total" in grades:
        rows.append(["**total**", f"**{grades['total']} / {grades.get('max_total', '?')}**", ""])
    doc.table(["question", "score", "checks passed"], rows)
    uses = grades.get("forbidden_uses")
    allowed = (
        ""
        if uses is None
        else " Uses of operations the seed does not allow: "
        + (f"**{uses}** (reported, not deducted)." if uses else "none.")
    )
    doc.para(
        f"From {ref('autograder.json')} (stage `autograde`: this project's `layers.py` graded as a student's "
        f"submission is, in a separate process; `python -m pipeline autograde --submissions DIR` grades a class).{allowed}"
    )


def cse849_extras(doc: Markdown, a: Mapping[str, Any]) -> None:
    inputs = doc.inputs
    doc.heading(3, "Shortcut and occlusion tests")
    doc.para(
        "On the composite test set: accuracy where the pasted digit agrees with the label vs where it "
        "disagrees (the gap is what a model using the digit shortcut loses), the share of disagreeing "
        "images predicted as the digit's class, and the accuracy with one region blanked out "
        "(`params.yaml` `variants.<variant>.data.occlusion`)."
    )
    for variant in a.get("variants") or []:
        rel = f"{variant}/eval/metrics.json"
        ev = inputs.json(rel)
        if ev is None:
            doc.missing(rel, f"shortcut / occlusion metrics of `{variant}`")
            continue
        if ev.get("shortcut") is None and ev.get("occlusion") is None:
            doc.para(f"`{REPORTS}/{rel}` has no `shortcut` / `occlusion` block (not composite data).")
            continue
        shortcut_occlusion(doc, variant, ev)
    doc.heading(3, "Deliverables: `q1_model.pt` and `q1_test.txt`")
    weights = "cse849/q1_model.pt"
    if inputs.exists(weights):
        variant = inputs.variant("cse849")
        built = describe_model(variant) if variant else "the network"
        doc.para(
            f"{ref(weights)} ({inputs.path(weights).stat().st_size / 1024:,.0f} KB, stage `export_cse849`): the kept "
            f"model's weights alone, loadable the seed's way into {built}: "
            f'`model.load_state_dict(torch.load("{REPORTS}/{weights}"))`. The input normalization is not in it '
            "(the seed's notebook applies its own); `models/cse849.pt` carries it."
        )
    else:
        doc.missing(weights)
    preds = inputs.text("cse849/q1_test.txt")
    if preds is None:
        doc.missing("cse849/q1_test.txt")
    else:
        lines = preds.splitlines()
        doc.para(f"{ref('cse849/q1_test.txt')}: {len(lines):,} lines, first ones:")
        doc.code("\n".join(lines[:5]))
    doc.heading(3, "Filters and class-wise feature-map norms (first and last conv layer)")
    variant = ((inputs.params.get("analysis") or {}).get("classwise_norms") or {}).get("variant", "cse849")
    folder = f"{variant}/classwise_norms"
    doc.figure(f"{variant}/analysis/filters.png", f"{variant}: all first-layer filters")
    doc.figure(
        f"{folder}/classwise_norms_conv1.png",
        f"{variant}: class-wise mean feature-map norm per filter, first conv layer",
    )
    doc.figure(
        f"{folder}/classwise_norms_conv5.png",
        f"{variant}: class-wise mean feature-map norm per filter, last conv layer",
    )
    doc.figure(f"{folder}/classwise_norms_heatmap.png", f"{variant}: class-wise norms, all filters")
    norms = inputs.json(f"{folder}/classwise_norms.json")
    if norms is None:
        doc.missing(f"{folder}/classwise_norms.json", "class-wise norm summary")
    else:
        summaries = {
            layer: v["summary"]
            for layer, v in norms.items()
            if isinstance(v, Mapping) and isinstance(v.get("summary"), Mapping)
        }
        if summaries:
            generic_results_table(doc, summaries)
        elif not scalar_table(doc, norms):
            doc.para("(structure not recognised; see the file)")
        doc.para(
            f"From {ref(f'{folder}/classwise_norms.json')}"
            + (
                f"; every value: {ref(f'{folder}/classwise_norms.csv')}"
                if inputs.exists(f"{folder}/classwise_norms.csv")
                else ""
            )
            + " (stage `classwise_norms`)."
        )


def shortcut_occlusion(doc: Markdown, variant: str, ev: Mapping[str, Any]) -> None:
    """The ``shortcut`` / ``occlusion`` blocks of an evaluate metrics file (composite data)."""
    rel = f"{variant}/eval/metrics.json"
    shortcut, occlusion = ev.get("shortcut"), ev.get("occlusion")
    if isinstance(shortcut, Mapping) and not scalar_table(doc, shortcut, (f"`{variant}` shortcut", "value")):
        doc.para(f"(see `{REPORTS}/{rel}`, key `shortcut`)")
    if isinstance(occlusion, Mapping) and occlusion:
        if all(isinstance(v, Mapping) for v in occlusion.values()):
            generic_results_table(doc, occlusion, f"`{variant}` occluded region")
        elif not scalar_table(doc, occlusion, (f"`{variant}` occlusion", "value")):
            doc.para(f"(see `{REPORTS}/{rel}`, key `occlusion`)")
    doc.para(f"From {ref(rel)} (stage `evaluate`).")


EXTRAS = {"tdm": tdm_extras, "hku": hku_extras, "cse849": cse849_extras}


def analysis_section(doc: Markdown) -> None:
    """Comparisons (params ``analysis.comparisons``, in order), then each params variant's analysis files."""
    inputs = doc.inputs
    variants = inputs.variant_names()
    doc.heading(2, "Analysis across assignments")
    doc.heading(3, "Comparisons")
    comparisons = inputs.comparisons()
    if not comparisons:
        doc.para("`params.yaml` `analysis.comparisons` lists none.")
    for key, spec in comparisons.items():
        doc.include_markdown(f"comparisons/{key}.md", level=4, title=str(spec.get("title") or key))
        if inputs.exists(f"comparisons/{key}.json"):
            doc.para(f"From {ref(f'comparisons/{key}.json')} (stage `{inputs.stage_for(f'comparisons/{key}.json')}`).")
        verdict = seed_study_verdict(inputs, key)
        if verdict:
            doc.para(f"Seed study: {verdict} From {ref(SEED_STUDY)} (stage `seed_study_summary`).")
    seed_study_section(doc)
    for file, title in [
        ("shape_trace.md", "Shape traces through each network"),
        ("layer_summary.md", "Layer summaries"),
    ]:
        doc.heading(3, title)
        for variant in variants:
            doc.include_markdown(f"{variant}/analysis/{file}", level=4, title=f"`{variant}`")
    doc.heading(3, "Parameter counts")
    rows = []
    for variant in variants:
        rel = f"{variant}/analysis/param_counts.json"
        counts = inputs.json(rel)
        if not isinstance(counts, Mapping):
            rows.append([f"`{variant}`", inputs.missing(rel), "", ""])
            continue
        rows.append(
            [
                f"[`{variant}`]({link(rel)})",
                *(num(counts[k]) if k in counts else "-" for k in ("total", "trainable", "non_trainable")),
            ]
        )
    if rows:
        doc.table(["variant", "parameters", "trainable", "non-trainable"], rows)
        doc.para(
            "From each `reports/<variant>/analysis/param_counts.json` (stage `analyze@<variant>`); "
            "the variant names link to the files."
        )


def seed_study_section(doc: Markdown) -> None:
    """Each studied variant's accuracy over N seeds, each studied comparison's paired
    difference with its interval, and the figure with the error bars."""
    inputs = doc.inputs
    doc.heading(3, "Seed study: every comparison over several seeds")
    summary = inputs.json(SEED_STUDY)
    if not isinstance(summary, Mapping) or not has(summary, "seeds", "confidence", "variants", "comparisons"):
        doc.missing(SEED_STUDY, "seed study")
        return
    n, level = summary["seeds"], round(100 * summary["confidence"])
    doc.para(
        f"Each variant of a studied comparison trained with {n} seeds (its own seed, whose run is the one reported "
        f"above, and the next {n - 1}), each with the variant's own set-up; the two variants of a comparison share "
        f"their seeds, so the differences are paired by seed. Interval: two-sided {level}% t-interval of the mean "
        f"paired difference ({n - 1} degrees of freedom)."
    )
    rows = []
    for name, v in summary["variants"].items():
        acc = v.get("test_accuracy") or {}
        if not has(acc, "mean", "std", "min", "max", "n"):
            continue
        rows.append(
            [
                f"[`{name}`]({link(f'seed_study/runs/{name}.json')})",
                acc["n"],
                pct(acc["mean"]),
                f"{100 * acc['std']:.2f} points",
                pct(acc["min"]),
                pct(acc["max"]),
            ]
        )
    doc.table(["variant", "seeds", "mean test accuracy", "std", "min", "max"], rows)
    rows = [
        [
            str(c.get("title") or c["key"]),
            f"`{c['a']}` - `{c['b']}`",
            f"{c['mean_points']:+.2f}",
            f"{c['ci_low_points']:+.2f} to {c['ci_high_points']:+.2f}",
            f"{c['a_ahead']} / {c['b_ahead']}" + (f" ({c['ties']} tied)" if c.get("ties") else ""),
            "yes" if c["distinguishable"] else "**no**",
        ]
        for c in seed_study_comparisons(inputs)
        if has(c, "a", "b", "mean_points", "ci_low_points", "ci_high_points", "a_ahead", "b_ahead", "distinguishable")
    ]
    doc.table(
        ["comparison", "a - b", "mean (points)", f"{level}% CI (points)", "seeds a ahead / b ahead", "distinguishable"],
        rows,
    )
    doc.figure(
        "seed_study/differences.png", f"Test accuracy per seed and paired differences with their {level}% intervals"
    )
    doc.para(
        f"From {ref(SEED_STUDY)} (stage `seed_study_summary`) and `reports/seed_study/runs/` (stages `seed_study@<variant>`)."
    )


def generic_results_table(doc: Markdown, results: Mapping[str, Any], corner: str = "") -> None:
    """``{name: {key: scalar}}`` -> one row per name, one column per key (first-seen order)."""
    cols: list[str] = []
    for entry in results.values():
        if isinstance(entry, Mapping):
            cols += [k for k, v in entry.items() if k not in cols and not isinstance(v, (Mapping, list))]
    rows = [
        [f"`{name}`", *(by_name(c, entry[c]) if c in entry else "-" for c in cols)]
        for name, entry in results.items()
        if isinstance(entry, Mapping)
    ]
    doc.table([corner, *cols], rows)


def time_section(doc: Markdown, variants: list[str]) -> None:
    inputs = doc.inputs
    doc.heading(2, "Time")
    rows, total = [], 0.0
    for name in variants:
        m = inputs.metrics(name)
        if m is None:
            rows.append([f"`{name}`", inputs.missing(f"{name}/metrics.json"), "", "", ""])
            continue
        total += m.get("train_seconds", 0.0)
        per_epoch = m["train_seconds"] / m["epochs"] if m.get("epochs") and "train_seconds" in m else None
        rows.append(
            [
                f"`{name}`",
                num(m.get("epochs", "-")),
                seconds(m["train_seconds"]) if "train_seconds" in m else "-",
                seconds(per_epoch) if per_epoch is not None else "-",
                num(m.get("train_images_per_second", "-")),
            ]
        )
    have = sum(inputs.metrics(name) is not None for name in variants)
    if have:
        label = (
            "**all variants**"
            if have == len(variants)
            else f"**the {have} of {len(variants)} variants trained so far**"
        )
        rows.append([label, "", f"**{seconds(total)}**", "", ""])
    doc.heading(3, "Training, per variant")
    doc.table(["variant", "epochs", "training time", "per epoch", "images / s"], rows)
    doc.para(
        "Training time counts the training passes only (not evaluation); from each `reports/<variant>/timings.json`."
    )

    doc.heading(3, "Whole pipeline")
    timing = inputs.json("timing.json")
    if timing is None:
        doc.missing("timing.json", "wall time of `dvc repro`")
    else:
        rows = [
            ["`dvc repro` wall time", seconds(timing["dvc_repro_seconds"]) if "dvc_repro_seconds" in timing else "-"]
        ]
        rows += [
            [k, f"`{v}`" if k == "command" else num(v)]
            for k, v in timing.items()
            if k not in ("dvc_repro_seconds", "stages")
        ]
        doc.table(["", "value"], rows)
        doc.para(f"From {ref('timing.json')} (`make repro-timed`, `pipeline/timing.py`).")
        stage_seconds = timing.get("stages") or {}
        if stage_seconds:
            doc.heading(3, "Where the time of that run went, per stage")
            total = sum(stage_seconds.values())
            rows = []
            for stage, secs in sorted(stage_seconds.items(), key=lambda item: -item[1]):
                variant = stage.split("@", 1)[1] if stage.startswith("train@") else None
                metrics = inputs.metrics(variant) if variant else None
                speed = (
                    num(metrics["train_images_per_second"]) if metrics and "train_images_per_second" in metrics else ""
                )
                rows.append([f"`{stage}`", seconds(secs), f"{100 * secs / total:.1f}%" if total else "-", speed])
            doc.table(["stage", "wall time", "share", "training images / s"], rows)
            doc.para(
                "Each stage from DVC's `Running stage` line to the next one, so it includes DVC's hashing "
                "and lock-file update; images / s from the variant's `timings.json` (training passes only)."
            )

    doc.heading(3, "Engine vs the seed-style data loader")
    loader = inputs.json("benchmarks/loader.json")
    if loader is None:
        doc.missing("benchmarks/loader.json", "loader benchmark")
    else:
        results = loader.get("results") or {}
        rows = [
            [
                f"`{label}`",
                seconds(r["seconds"]) if "seconds" in r else "-",
                f"{r['speedup_vs_seed_style']:.2f}x" if "speedup_vs_seed_style" in r else "-",
                f"{r['speedup_vs_seed_style_median']:.2f}x" if "speedup_vs_seed_style_median" in r else "-",
                pct(r["test_accuracy"]) if "test_accuracy" in r else "-",
            ]
            for label, r in results.items()
        ]
        doc.table(
            [
                "loop (one epoch, DS 5220 CNN)",
                "time (min)",
                "speed-up vs seed style (min)",
                "(median)",
                "test accuracy",
            ],
            rows,
        )
        benchmark_footer(
            doc,
            "benchmarks/loader.json",
            loader,
            "`benchmarks/bench_loader.py`; the loops interleaved, each repeated, the minimum and median of each kept",
        )

    doc.heading(3, "Custom layers vs torch")
    layers = inputs.json("benchmarks/layers.json")
    if layers is None:
        doc.missing("benchmarks/layers.json", "layer benchmark")
    else:
        # bench_layers.py writes one row per measurement: custom_s / torch_s / ratio are the
        # minimums over interleaved repeats (ratio_median: of the medians), target, pass
        rows = [
            [
                r["name"],
                duration(r["custom_s"]),
                duration(r["torch_s"]),
                f"{r['ratio']:.2f}x",
                f"{r['ratio_median']:.2f}x" if "ratio_median" in r else "-",
                f"<= {r['target']:g}x",
                "met" if r["pass"] else "**missed**",
            ]
            for r in layers.get("results", [])
        ]
        doc.table(
            [
                "forward + backward (batch 64, float32)",
                "custom (min)",
                "torch.nn (min)",
                "custom / torch (min)",
                "(median)",
                "target",
                "",
            ],
            rows,
        )
        memory = [r for r in layers.get("results", []) if r.get("custom_working_mb") is not None]
        if memory:
            doc.para(
                "Peak memory of one forward + backward (a fresh process per side; working memory = the peak "
                "minus the output and gradients every implementation holds; target: at most one unfolded input)."
            )
            doc.table(
                [
                    "convolution",
                    "custom peak",
                    "torch.nn peak",
                    "custom working",
                    "torch.nn working",
                    "one unfolded input",
                    "custom working / unfolded",
                    "",
                ],
                [
                    [
                        r["name"],
                        f"{r['custom_peak_mb']:.1f} MB",
                        f"{r['torch_peak_mb']:.1f} MB",
                        f"{r['custom_working_mb']:.1f} MB",
                        f"{r['torch_working_mb']:.1f} MB",
                        f"{r['unfolded_input_mb']:.1f} MB",
                        f"{r['working_per_unfolded_input']:.2f} (<= {r['peak_target']:g})",
                        "met" if r["peak_pass"] else "**missed**",
                    ]
                    for r in memory
                ],
            )
        benchmark_footer(
            doc,
            "benchmarks/layers.json",
            layers,
            "`benchmarks/bench_layers.py`; custom and torch interleaved, targets judged on the ratio of the minimums",
        )


def benchmark_footer(doc: Markdown, rel: str, bench: Mapping[str, Any], how: str) -> None:
    """Below a benchmark's table: its verdict on the machine, then where the numbers come from
    and the benchmark's scalar settings (cores, repeats, ...)."""
    benchmark_reliability(doc, bench)
    extra = {
        k: v
        for k, v in bench.items()
        if k not in ("results", "reliable", "reliability_note") and not isinstance(v, (Mapping, list))
    }
    settings = "; " + ", ".join(f"{k} = {num(v)}" for k, v in extra.items()) if extra else ""
    doc.para(f"From {ref(rel)} ({how}){settings}.")


def benchmark_reliability(doc: Markdown, bench: Mapping[str, Any]) -> None:
    """The benchmark's own verdict on the machine it ran on: quote the ratios only when calm."""
    if "reliable" not in bench:
        return
    if bench["reliable"]:
        doc.para("The machine was calm during this benchmark (its `reliable` check passed).")
    else:
        note = bench.get("reliability_note") or "no reason recorded"
        doc.para(
            f"**Unreliable measurement**: the machine was busy during this benchmark ({note}); "
            "treat these times and ratios as rough."
        )


def build_markdown(inputs: Inputs) -> Markdown:
    doc = Markdown(inputs)
    doc.heading(1, "Results: five CNN assignments, regenerated")
    doc.para(
        "Written by the `report` stage (`python -m pipeline.stages.report`, see `dvc.yaml`) from the files under "
        "`reports/`; every number links to the file it comes from, and every file to the stage that writes it. "
        "A self-contained copy with the images embedded: [`index.html`](index.html)."
    )
    others = other_variants(inputs)
    sections = [
        "Summary",
        "Data",
        *(a["title"] for a in inputs.seeds.values()),
        *([OTHER_TITLE] if others else []),
        *([DEVIATIONS_TITLE] if inputs.deviations else []),
        "Analysis across assignments",
        "Time",
    ]
    contents = len(doc.blocks)  # filled in last: it links every answer, whose ids exist once written
    summary(doc)
    data_section(doc)
    listed: list[str] = []
    for key, a in inputs.seeds.items():
        assignment_section(doc, key, a)
        listed += [v for v in a.get("variants") or [] if v not in listed]
    if others:
        other_variants_section(doc, others)
    if inputs.deviations:
        deviations_section(doc)
    analysis_section(doc)
    time_section(doc, [*listed, *others])
    answers_by_title = {a["title"]: doc.answer_links.get(key) for key, a in inputs.seeds.items()}
    lines = []
    for title in sections:
        lines.append(f"- [{title}](#{slug(title)})")
        if answers_by_title.get(title):
            lines.append("  - Answers: " + " · ".join(answers_by_title[title]))
    doc.blocks.insert(contents, "\n".join(lines))
    return doc


# --------------------------------------------------------------------------- Markdown -> HTML


def _plain_text(inline: Token) -> str:
    """The text of an inline token without its markup (for heading ids)."""
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))


def markdown_to_html(text: str, image_src) -> str:
    """Markdown -> HTML with markdown-it-py (CommonMark plus tables; raw HTML is escaped).

    Two things on top: every image's ``src`` goes through ``image_src`` (a data URI; None
    leaves the text ``[missing image: <alt>]`` instead), and every heading gets an id,
    :func:`slug` of its text, made unique with ``-1``, ``-2`` ... as GitHub does, so the
    page's navigation reaches the same anchors as the Markdown file's.
    """
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    seen: Counter[str] = Counter()
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            base = slug(_plain_text(tokens[i + 1]))
            token.attrSet("id", base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
        if token.type != "inline" or not token.children:
            continue
        for j, child in enumerate(token.children):
            if child.type != "image":
                continue
            src = image_src(str(child.attrGet("src")))
            if src:
                child.attrSet("src", src)
            else:
                missing = Token("text", "", 0)
                missing.content = f"[missing image: {child.content}]"
                token.children[j] = missing
    return md.renderer.render(tokens, md.options, {})


MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml"}


def render_html(markdown: str, out_dir: str, root: Path, title: str = "cnn-pipeline results") -> str:
    """``markdown`` (links relative to ``<root>/<out_dir>``) as one HTML file: images inlined as data URIs."""

    def image_src(target: str) -> str | None:
        if re.match(r"[a-z]+:", target):
            return None
        # normalised before touching the disk: <out_dir> itself need not exist yet
        file = root / posixpath.normpath(posixpath.join(out_dir, target))
        if not file.is_file() or file.suffix.lower() not in MIME:
            return None
        return f"data:{MIME[file.suffix.lower()]};base64," + base64.b64encode(file.read_bytes()).decode("ascii")

    body = markdown_to_html(markdown, image_src)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        # Nothing may be fetched: images are data: URIs, the style is inline, there is no script.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- entry point


@dataclass
class Report:
    markdown: str
    html: str
    images: list[str]  # link targets relative to report/ (``../reports/...``), in order of appearance


def build_report(root: str | Path = ".") -> Report:
    inputs = Inputs(root)
    doc = build_markdown(inputs)
    text = doc.text()
    return Report(markdown=text, html=render_html(text, OUT, inputs.root), images=list(dict.fromkeys(doc.images)))


def write_report(root: str | Path = ".") -> Report:
    """Write ``<root>/report/README.md`` and ``<root>/report/index.html`` (each atomically)."""
    report = build_report(root)
    out = Path(root) / OUT
    write_text(out / "README.md", report.markdown)
    write_text(out / "index.html", report.html)
    return report
