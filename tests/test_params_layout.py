"""params.yaml survives `dvc exp run -S` unchanged but for the overridden values.

DVC applies ``-S`` overrides by loading params.yaml with ruamel.yaml's round-trip loader,
merging the new values and dumping it again; a layout it does not reproduce (flow-style
lists, flow maps past 80 columns, unneeded quotes) would be rewritten on the first
experiment, burying a two-value change in a large diff. The same function DVC calls,
on a copy of the real file.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
from dvc.utils.hydra import apply_overrides

REPO = Path(__file__).resolve().parents[1]


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["variants.prac5.train.epochs=2", "variants.prac5.train.optimizer.lr=0.1"],
            [
                "-      epochs: 10",
                "+      epochs: 2",
                "-      optimizer: {name: sgd, lr: 0.05}     # SGD is the handout's; lr is not given",
                "+      optimizer: {name: sgd, lr: 0.1}      # SGD is the handout's; lr is not given",
            ],
        ),
        (["variants.cse849.train.optimizer.momentum=0.8"], ["-        momentum: 0.9", "+        momentum: 0.8"]),
        (["analysis.padding.kernel_size=5"], ["-    kernel_size: 3", "+    kernel_size: 5"]),
    ],
)
def test_an_override_changes_only_its_own_lines(tmp_path, overrides, expected):
    copy = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", copy)
    before = copy.read_text(encoding="utf-8")
    apply_overrides(copy, overrides)
    assert changed_lines(before, copy.read_text(encoding="utf-8")) == expected


def test_a_no_op_override_leaves_the_file_byte_identical(tmp_path):
    copy = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", copy)
    apply_overrides(copy, ["variants.prac5.train.epochs=10"])  # the value it already has
    assert copy.read_bytes() == (REPO / "params.yaml").read_bytes()
