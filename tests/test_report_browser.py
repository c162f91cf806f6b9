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


# Each table's right edge against the page's: what is cut off when the page is printed.
TABLE_FIT = """<script>
window.addEventListener('load', function () {
  var page = document.documentElement.clientWidth;
  var tables = Array.prototype.slice.call(document.querySelectorAll('table'));
  document.body.dataset.tables = tables.length;
  document.body.dataset.cut = tables.filter(function (t) {
    return t.getBoundingClientRect().right > page + 1 || t.scrollWidth > t.clientWidth + 1;
  }).length;
});
</script>"""


def test_a_wide_table_fits_a_printed_page(tmp_path):
    """At a printed page's width (7 in at 96 px/in) every table keeps its last column: cells wrap,
    nothing scrolls (a scroll box is cut at the page edge in print, as the mitigation table was)."""
    from pipeline.report.html import render_html

    browser()
    header = "| row | " + " | ".join(f"measured quantity {i} (unit)" for i in range(9)) + " | last column |"
    cells = " | ".join("reports/cse849/mitigation/some_long_row_name/metrics.json" for _ in range(9))
    markdown = f"# Wide\n\n{header}\n|{'---|' * 11}\n| patch_shuffle | {cells} | LAST |\n"
    page = tmp_path / "wide.html"
    page.write_text(render_html(markdown, ".", tmp_path), encoding="utf-8")
    found, dom = probe(page, tmp_path, script=TABLE_FIT, window=(672, 900))
    assert found["tables"] == "1" and found["cut"] == "0", found
    assert "LAST" in dom
