"""Headless Chromium for the browser tests: load a page with no network and probe what it drew.

``probe`` loads a copy of the page with a Content-Security-Policy that allows no fetch at
all (by default only ``data:`` images, inline style and inline scripts)
and a small probe script. The probe counts the ``<img>`` elements whose
``naturalWidth`` is 0 (not decoded), every policy violation (any attempt to fetch
something) and every resource loaded that is not a ``data:`` URI, and writes the counts
into ``<body data-...>``; ``--dump-dom`` prints the DOM after the load event and
``--virtual-time-budget`` lets timers and promises (such as Vega's rendering) finish.

Needs the Debian package ``chromium``; skipped without it, except in CI (``CI=true``),
where its absence is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
PROBE = """<script>
var violations = [];
document.addEventListener('securitypolicyviolation', function (e) { violations.push(e.blockedURI); });
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var fetched = performance.getEntriesByType('resource').filter(function (r) { return r.name.indexOf('data:') !== 0; });
  document.body.dataset.images = images.length;
  document.body.dataset.broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  document.body.dataset.violations = violations.length;
  document.body.dataset.fetched = fetched.length;
  document.body.dataset.fetchedNames = fetched.map(function (r) { return r.name; }).concat(violations).join(' ');
});
</script>"""


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; CI must install it (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); set CI=true to make this a failure")


def probe(
    page: Path, tmp_path: Path, policy: str = POLICY, script: str = "", window: tuple[int, int] | None = None
) -> tuple[dict[str, str], str]:
    """Load ``page`` (with the probe and ``script`` added) in headless Chromium, in a ``window``
    (width, height) if given: the probe's counts (and what ``script`` put in ``<body data-...>``) and the DOM."""
    text = page.read_text(encoding="utf-8")
    text, n = re.subn(
        r'<meta http-equiv="Content-Security-Policy" content="[^"]*">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        text,
    )
    if n == 0:
        text = text.replace("<head>", f'<head>\n<meta http-equiv="Content-Security-Policy" content="{policy}">', 1)
    text = text.replace("</title>", "</title>\n" + PROBE + script, 1)
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(text, encoding="utf-8")
    command = [
        browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--mute-audio",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=5000",
        *([f"--window-size={window[0]},{window[1]}"] if window else []),
        "--dump-dom",
        probed.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    # the page's own <body>, the last one: inline libraries may carry "<body" in their strings
    body = ([None] + list(re.finditer(r"<body([^>]*)>", done.stdout)))[-1]
    assert body, f"no <body> in the dumped DOM: {done.stdout[:500]!r} {done.stderr[-1000:]!r}"
    found = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert "broken" in found, f"the probe did not run: {body.group(0)[:300]}"
    return found, done.stdout
