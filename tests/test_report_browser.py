"""``report/index.html`` in a real browser: every image decodes and nothing is fetched.

Headless Chromium with a policy that allows no fetch (``tests/browser.py``).
"""

from __future__ import annotations

import re

import pytest

from pipeline.report import write_report
from tests.browser import browser, probe
from tests.fake_reports import build_fake_repo

pytestmark = pytest.mark.slow  # a real browser: `make test` and CI run it, `make test-fast` does not


def test_index_html_images_decode_and_nothing_is_fetched(tmp_path):
    browser()
    root = build_fake_repo(tmp_path / "repo")
    rep = write_report(root)
    found, _ = probe(root / "report" / "index.html", tmp_path)
    assert int(found["images"]) == len(re.findall(r"!\[[^\]]*\]\(", rep.markdown)) >= 12
    assert found["broken"] == "0", found
    assert found["violations"] == "0" and found["fetched"] == "0", found.get("fetched-names")


def test_probe_catches_broken_and_external_images(tmp_path):
    """The probe itself works: a missing file and a remote URL are both reported."""
    browser()
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body>'
        '<img src="missing.png"><img src="https://example.invalid/x.png"></body></html>',
        encoding="utf-8",
    )
    found, _ = probe(page, tmp_path)
    assert found["images"] == "2" and found["broken"] == "2"
    assert int(found["violations"]) >= 2  # both fetches were attempted and blocked
