"""``python -m pipeline.devtools.depgraph [--root .] [--suggest]``: print the problems (and, with
``--suggest``, each stage's code deps); exit 1 on any problem, 2 when the analysis fails."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.devtools.depgraph.analysis import analyze, problems_of
from pipeline.devtools.depgraph.errors import DepGraphError
from pipeline.devtools.depgraph.stages import load_variants
from pipeline.devtools.depgraph.suggest import format_suggestions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.devtools.depgraph",
        description="Check that every DVC stage declares exactly the project code it imports.",
    )
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    parser.add_argument(
        "--suggest",
        action="store_true",
        help="print each stage's exact code deps for dvc.yaml",
    )
    args = parser.parse_args(argv)

    root = Path(args.root).resolve()
    try:
        analyses = analyze(root)
    except DepGraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = problems_of(root, analyses)
    if args.suggest:
        print("# Code deps per stage (paste into dvc.yaml; data deps not shown)\n")
        print(format_suggestions(analyses, load_variants(root)))
    for problem in problems:
        print(problem)
    summary = (
        f"{len(problems)} problem(s) in {len(analyses)} stage(s)"
        if problems
        else f"ok: {len(analyses)} stage(s) declare exactly the code they import"
    )
    print(summary, file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0
