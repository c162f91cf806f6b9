"""The README a newcomer reads: its first screen, its links, and recipes that are the tested ones."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_experiments import CHANGED_DROP, VARIANT_KEEP

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FIRST_SCREEN = 40  # lines: what a terminal or a browser window shows before any scrolling


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_first_screen_has_the_commands_the_results_one_change_and_the_contents():
    first = "\n".join(README.splitlines()[:FIRST_SCREEN])
    for needed in (
        "make repro",
        "make test",
        "report/README.md",
        "dvc exp run -S variants.",
        "git restore .",
        "Contents:",
    ):
        assert needed in first, f"README.md: {needed!r} not in the first {FIRST_SCREEN} lines"


def test_every_link_to_a_section_or_file_exists():
    anchors = {slug(h) for h in re.findall(r"^#{2,4} (.+)$", README, flags=re.MULTILINE)}
    for target in re.findall(r"\]\(([^)\s]+)\)", README):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, f"README.md: no section for the link {target}"
        else:
            assert (ROOT / target.split("#")[0]).exists(), f"README.md: the link {target} names no file"


def test_the_recipes_are_the_ones_tests_experiments_runs():
    assert f"--drop '{CHANGED_DROP}'" in README
    assert f"--keep '{VARIANT_KEEP.format(v='prac5')}'" in README
    assert "OMP_NUM_THREADS=1 dvc queue start -j 2" in README
    assert "dvc_plots/" in (ROOT / ".gitignore").read_text().splitlines()  # what `dvc plots diff` writes


def test_maintainers_measurements_live_in_their_own_document():
    assert (ROOT / "docs" / "MAINTAINERS.md").is_file()
    for maintainers_only in ("AVX-512", "ONEDNN_MAX_CPU_ISA", "oneDNN", "4,810.8 s"):
        assert maintainers_only not in README, f"README.md: {maintainers_only!r} belongs in docs/MAINTAINERS.md"


def test_no_history_narration():
    for narration in ("moved here", "used to", "dropped from", "before this layout", "no longer"):
        assert narration not in README.lower(), f"README.md narrates history: {narration!r}"
